"""`profkit doctor`: what works on this machine for capture and bench, and what to do about the rest.

Each :class:`Check` is one line: ok, missing, warning or none (not on this machine, e.g. GPU lines on a CPU host),
what was found and what to do. Capture and bench can run when every *needed* check is ok (torch, diffusers,
transformers); the rest (GPU, NVML, CUPTI, nsys, nvtx, torchao, compile toolchain) unlock more. Nothing here
raises: a probe that fails is a check that says so.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import platform
import re
import shutil
from collections.abc import Callable
from typing import Any

import msgspec

from profkit import __version__

OK, MISSING, WARN, NONE = "ok", "missing", "warning", "none"
#: The first nsys release that records the ranges of nvtx 0.2.12 and newer (nsys 2022.4 drops them).
NSYS_FOR_NEW_NVTX = (2023, 1)
NVTX_NEW_RANGES = (0, 2, 12)


class Check(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    status: str  # ok | missing | warning | none
    detail: str
    fix: str = ""  # what to do (empty when ok)
    needed: bool = False  # capture and bench cannot run without it


class Diagnosis(msgspec.Struct, frozen=True, kw_only=True):
    profkit: str
    checks: tuple[Check, ...]

    @property
    def can_run(self) -> bool:
        """Capture and bench can run here: every needed check is ok."""
        return all(c.status == OK for c in self.checks if c.needed)

    @property
    def blockers(self) -> list[Check]:
        return [c for c in self.checks if c.needed and c.status != OK]

    def to_dict(self) -> dict[str, Any]:
        return {**msgspec.to_builtins(self), "can_run": self.can_run}


def _version(module: Any) -> str:
    return str(getattr(module, "__version__", "unknown"))


def _import(name: str) -> Any | None:
    try:
        return importlib.import_module(name)
    except Exception:  # missing, or broken (a failing import is as good as missing here)
        return None


def _package(name: str, needed: bool, fix: str, what: str) -> Check:
    """An installed package, by its metadata (importing torchao or transformers costs seconds and prints)."""
    version = _distribution_version(name)
    if version is None or importlib.util.find_spec(name) is None:
        return Check(name=name, status=MISSING, detail=f"not installed ({what})", fix=fix, needed=needed)
    return Check(name=name, status=OK, detail=f"{version} ({what})", needed=needed)


def check_torch(torch: Any) -> list[Check]:
    """torch's build (CUDA or CPU-only) and the GPUs it sees."""
    if torch is None:
        missing = Check(
            name="torch", status=MISSING, detail="not importable", fix="pip install torch (pytorch.org)", needed=True
        )
        return [missing, Check(name="GPUs", status=NONE, detail="unknown without torch")]
    cuda = getattr(torch.version, "cuda", None)
    build = f"CUDA {cuda} build" if cuda else "CPU-only build"
    checks = [Check(name="torch", status=OK, detail=f"{_version(torch)}, {build}", needed=True)]
    available = bool(cuda) and torch.cuda.is_available()
    if not available:
        fix = (
            "a CUDA build sees no GPU: check the NVIDIA driver (nvidia-smi) and CUDA_VISIBLE_DEVICES"
            if cuda
            else "for GPU runs install a CUDA build of torch (pytorch.org); capture and bench run on the CPU here"
        )
        checks.append(Check(name="GPUs", status=NONE, detail="no CUDA GPU: runs use the CPU", fix=fix))
        return checks
    names = []
    for index in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(index)
        names.append(f"{index}: {props.name} (sm {props.major}.{props.minor}, {props.total_memory / 2**30:.0f} GB)")
    checks.append(Check(name="GPUs", status=OK, detail="; ".join(names)))
    return checks


def check_nvml(nvml: Any, gpu: bool) -> Check:
    """NVML: utilization and power sampling and the total-energy counter of bench."""
    if nvml is None:
        status = MISSING if gpu else NONE
        return Check(
            name="NVML",
            status=status,
            detail="bindings not importable: no GPU utilization, power or energy in bench",
            fix="pip install nvidia-ml-py",
        )
    try:
        nvml.nvmlInit()
    except Exception as error:
        detail = f"not available ({error}): no GPU utilization, power or energy in bench"
        fix = "install the NVIDIA driver (NVML comes with it)" if gpu else ""
        return Check(name="NVML", status=WARN if gpu else NONE, detail=detail, fix=fix)
    try:
        driver = nvml.nvmlSystemGetDriverVersion()
        driver = driver.decode() if isinstance(driver, bytes) else driver
        count = nvml.nvmlDeviceGetCount()
        energy = "energy counter ok"
        try:
            if count:
                nvml.nvmlDeviceGetTotalEnergyConsumption(nvml.nvmlDeviceGetHandleByIndex(0))
        except Exception:
            energy = "no total-energy counter on GPU 0 (before Volta): energy not captured"
        return Check(name="NVML", status=OK, detail=f"driver {driver}, {count} device(s), {energy}")
    except Exception as error:
        return Check(name="NVML", status=WARN, detail=f"initialized but a query failed ({error})")
    finally:
        with contextlib.suppress(Exception):
            nvml.nvmlShutdown()


def check_cupti(torch: Any, gpu: bool) -> Check:
    """CUPTI: a tiny torch.profiler CUDA activity trace must record GPU kernels (the permission to profile)."""
    if not gpu:
        return Check(name="CUPTI", status=NONE, detail="no GPU: torch.profiler records CPU activity only")
    try:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            x = torch.ones((64, 64), device="cuda")
            (x @ x).sum().item()
            torch.cuda.synchronize()
        kernels = [e for e in prof.events() if str(getattr(e, "device_type", "")).endswith("CUDA")]
    except Exception as error:
        kernels, problem = [], f"the trace failed ({type(error).__name__}: {error})"
    else:
        problem = "the trace recorded no GPU kernel"
    if kernels:
        return Check(name="CUPTI", status=OK, detail=f"torch.profiler recorded {len(kernels)} GPU event(s)")
    return Check(
        name="CUPTI",
        status=WARN,
        detail=f"{problem}: capture would have no GPU kernels",
        fix="profiling permission: run as root, or set the driver option NVreg_RestrictProfilingToAdminUsers=0; "
        "check that libcupti of the CUDA runtime is installed",
    )


def _nsys_version(text: str) -> tuple[int, int] | None:
    match = re.search(r"(\d{4})\.(\d+)", text)
    return (int(match.group(1)), int(match.group(2))) if match else None


def _nvtx_version(text: str) -> tuple[int, ...] | None:
    match = re.match(r"(\d+)\.(\d+)\.(\d+)", text)
    return tuple(int(part) for part in match.groups()) if match else None


def check_nsys(find: Callable[[], Any]) -> tuple[Check, str | None]:
    """nsys found and its version (the check, and the version text for the nvtx check)."""
    from profkit.capture.nsys.tool import INSTALL_HINT

    try:
        tool = find()
    except Exception:
        detail = "not found (only Nsight Systems captures need it)"
        return Check(name="nsys", status=MISSING, detail=detail, fix=INSTALL_HINT), None
    version = tool.version()
    return Check(name="nsys", status=OK, detail=f"{version} at {tool.nsys}"), version


def check_nvtx(nvtx_version: str | None, nsys_version: str | None) -> Check:
    """The ``nvtx`` package against nsys: nsys before 2023.1 drops the ranges of nvtx 0.2.12 and newer."""
    if nvtx_version is None:
        return Check(
            name="nvtx",
            status=MISSING,
            detail="not installed (Nsight Systems captures mark their ranges with it)",
            fix="pip install 'nvtx>=0.2.10'",
        )
    nvtx = _nvtx_version(nvtx_version)
    nsys = _nsys_version(nsys_version or "")
    if nvtx is not None and nsys is not None and nvtx >= NVTX_NEW_RANGES and nsys < NSYS_FOR_NEW_NVTX:
        return Check(
            name="nvtx",
            status=WARN,
            detail=f"{nvtx_version}: nsys {nsys[0]}.{nsys[1]} drops the ranges of nvtx 0.2.12 and newer",
            fix="pip install 'nvtx>=0.2.10,<0.2.12', or a newer nsys",
        )
    against = f", works with nsys {nsys[0]}.{nsys[1]}" if nsys else ""
    return Check(name="nvtx", status=OK, detail=f"{nvtx_version}{against}")


def check_compiler(which: Callable[[str], str | None] = shutil.which) -> Check:
    """A C compiler: torch.compile's inductor builds C++ on the CPU and its Triton launchers on a GPU."""
    names = [os.environ["CC"]] if os.environ.get("CC") else []
    found = next((path for path in map(which, [*names, "cc", "gcc", "clang"]) if path), None)
    if found is None:
        return Check(
            name="C compiler",
            status=MISSING,
            detail="none found: torch.compile cannot build kernels",
            fix="install gcc (apt-get install build-essential)",
        )
    return Check(name="C compiler", status=OK, detail=f"{found} (torch.compile / inductor)")


def check_triton(triton: Any, gpu: bool) -> Check:
    if not gpu:
        return Check(name="triton", status=NONE, detail="only torch.compile on a GPU needs it")
    if triton is None:
        return Check(
            name="triton",
            status=MISSING,
            detail="not importable: torch.compile on the GPU fails",
            fix="pip install triton",
        )
    return Check(name="triton", status=OK, detail=f"{_version(triton)} (torch.compile on the GPU)")


def _distribution_version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


def diagnose(probe_gpu: bool = True) -> Diagnosis:
    """Every check, on this machine; ``probe_gpu`` runs the tiny CUPTI trace where a GPU exists."""
    from profkit.capture.nsys.tool import find_nsys

    torch = _import("torch")
    checks = [
        Check(
            name="python", status=OK, detail=f"{platform.python_version()} ({platform.system()} {platform.machine()})"
        )
    ]
    checks += check_torch(torch)
    gpu = checks[-1].name == "GPUs" and checks[-1].status == OK
    checks.append(check_nvml(_import("pynvml"), gpu))
    if probe_gpu:
        checks.append(check_cupti(torch, gpu))
    nsys, nsys_version = check_nsys(find_nsys)
    checks += [nsys, check_nvtx(_distribution_version("nvtx"), nsys_version)]
    checks.append(_package("torchao", False, "pip install torchao", "int8 / fp8 quantization"))
    checks += [check_compiler(), check_triton(_import("triton") if gpu else None, gpu)]
    checks.append(_package("diffusers", True, "pip install diffusers", "pipelines"))
    checks.append(_package("transformers", True, "pip install transformers", "text encoders"))
    return Diagnosis(profkit=__version__, checks=tuple(checks))
