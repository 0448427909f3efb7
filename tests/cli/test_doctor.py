"""`profkit doctor`: its output on this machine (a CPU: GPU lines say none, exit 0), --json, each check with
stand-ins for what this machine lacks (GPUs, NVML, an nsys that drops new nvtx ranges), and the exit when a needed
package is missing."""

from __future__ import annotations

import io
from types import SimpleNamespace

import orjson
import pytest
from rich.console import Console

from profkit.app import doctor as doctor_app
from profkit.app.doctor import (
    Check,
    Diagnosis,
    check_compiler,
    check_cupti,
    check_nsys,
    check_nvml,
    check_nvtx,
    check_torch,
    check_triton,
)
from profkit.errors import EXIT_RUN_FAILED, ProfkitError
from profkit.report.doctor import print_doctor
from tests.conftest import run_cli

NAMES = ["python", "torch", "GPUs", "NVML", "CUPTI", "nsys", "nvtx", "torchao", "C compiler", "triton"]


@pytest.fixture(scope="module")
def here() -> Diagnosis:
    return doctor_app.diagnose()


def test_this_machine_can_run_capture_and_bench_on_its_cpu(here: Diagnosis) -> None:
    checks = {c.name: c for c in here.checks}
    assert [c.name for c in here.checks] == [*NAMES, "diffusers", "transformers"]
    assert here.can_run and checks["torch"].status == "ok" and checks["torch"].needed
    assert {"diffusers", "transformers", "torch"} == {c.name for c in here.checks if c.needed}
    import torch

    if not torch.cuda.is_available():  # this machine: GPU lines say none
        assert checks["GPUs"].status == "none" and "no CUDA GPU" in checks["GPUs"].detail
        assert checks["CUPTI"].status == "none" and checks["triton"].status == "none"
        assert checks["NVML"].status in ("none", "missing")
    assert all(c.status in ("ok", "missing", "warning", "none") for c in here.checks)
    assert all(c.fix for c in here.checks if c.status in ("missing", "warning"))


def test_the_terminal_output_is_one_line_per_check_and_markup_safe(here: Diagnosis) -> None:
    buffer = io.StringIO()
    odd = Check(name="[bold]x[/bold]", status="warning", detail="[red]as written[/red]", fix="do [this]")
    print_doctor(Diagnosis(profkit="0", checks=(*here.checks, odd)), Console(file=buffer, width=200, markup=False))
    text = buffer.getvalue()
    assert "[bold]x[/bold]" in text and "[red]as written[/red]" in text and "to do: do [this]" in text
    assert text.strip().splitlines()[-1] == "capture and bench can run here"
    for check in here.checks:
        assert any(line.startswith(f"{check.status:<8} {check.name}") for line in text.splitlines())


@pytest.mark.filterwarnings("ignore:CUDA is not available")
def test_torch_gpus_nvml_and_cupti_with_stand_ins() -> None:
    cpu_build = SimpleNamespace(__version__="2.13.0+cpu", version=SimpleNamespace(cuda=None))
    torch_line, gpus = check_torch(cpu_build)
    assert "CPU-only build" in torch_line.detail and gpus.status == "none" and "CUDA build" in gpus.fix
    props = SimpleNamespace(name="NVIDIA H100 80GB HBM3", major=9, minor=0, total_memory=80 * 2**30)
    cuda = SimpleNamespace(is_available=lambda: True, device_count=lambda: 1, get_device_properties=lambda i: props)
    gpu_build = SimpleNamespace(__version__="2.13.0", version=SimpleNamespace(cuda="13.0"), cuda=cuda)
    torch_line, gpus = check_torch(gpu_build)
    assert torch_line.detail == "2.13.0, CUDA 13.0 build" and gpus.status == "ok"
    assert gpus.detail == "0: NVIDIA H100 80GB HBM3 (sm 9.0, 80 GB)"
    no_gpu = SimpleNamespace(**{**vars(gpu_build), "cuda": SimpleNamespace(is_available=lambda: False)})
    assert "nvidia-smi" in check_torch(no_gpu)[1].fix
    assert check_torch(None)[0].status == "missing"
    assert not Diagnosis(profkit="0", checks=tuple(check_torch(None))).can_run

    class Nvml:
        def nvmlInit(self) -> None:
            pass

        def nvmlShutdown(self) -> None:
            pass

        def nvmlSystemGetDriverVersion(self) -> bytes:
            return b"580.1"

        def nvmlDeviceGetCount(self) -> int:
            return 1

        def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
            return index

        def nvmlDeviceGetTotalEnergyConsumption(self, handle: int) -> int:
            return 123

    nvml = check_nvml(Nvml(), gpu=True)
    assert nvml.status == "ok" and nvml.detail == "driver 580.1, 1 device(s), energy counter ok"
    assert check_nvml(None, gpu=True).status == "missing" and check_nvml(None, gpu=False).status == "none"

    class NoDriver(Nvml):
        def nvmlInit(self) -> None:
            raise RuntimeError("NVML Shared Library Not Found")

    assert check_nvml(NoDriver(), gpu=False).status == "none" and check_nvml(NoDriver(), gpu=True).status == "warning"
    assert check_cupti(None, gpu=False).status == "none"
    broken = SimpleNamespace(ones=lambda *a, **k: (_ for _ in ()).throw(RuntimeError("CUPTI_ERROR_INSUFFICIENT")))
    refused = check_cupti(broken, gpu=True)  # the trace fails: the permission to profile is named
    assert refused.status == "warning" and "NVreg_RestrictProfilingToAdminUsers" in refused.fix


def test_nsys_and_the_nvtx_package_against_it() -> None:
    def missing():
        raise ProfkitError("Nsight Systems (nsys) not found")

    line, version = check_nsys(missing)
    assert line.status == "missing" and version is None and "install-nsys.sh" in line.fix
    tool = SimpleNamespace(nsys="/opt/nsys", version=lambda: "NVIDIA Nsight Systems version 2022.4.2.1-df9881f")
    line, version = check_nsys(lambda: tool)
    assert line.status == "ok" and "2022.4.2.1" in line.detail
    dropped = check_nvtx("0.2.12", version)  # nsys 2022.4 drops the ranges of nvtx 0.2.12+
    assert dropped.status == "warning" and "<0.2.12" in dropped.fix
    assert check_nvtx("0.2.11", version).status == "ok"
    assert check_nvtx("0.2.13", "NVIDIA Nsight Systems version 2024.5.1.113-245").status == "ok"
    assert check_nvtx("0.2.12", None).status == "ok"  # no nsys: nothing to drop them
    assert check_nvtx(None, version).status == "missing"


def test_compile_toolchain(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CC", raising=False)
    assert check_compiler(lambda name: None).status == "missing"
    assert check_compiler(lambda name: "/usr/bin/gcc" if name == "gcc" else None).detail.startswith("/usr/bin/gcc")
    assert check_triton(None, gpu=False).status == "none" and check_triton(None, gpu=True).status == "missing"
    assert check_triton(SimpleNamespace(__version__="3.5.0"), gpu=True).status == "ok"


def test_a_missing_needed_package_exits_non_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    from profkit.cli.doctor import doctor

    missing = Check(name="diffusers", status="missing", detail="absent", fix="pip install diffusers", needed=True)
    monkeypatch.setattr(doctor_app, "diagnose", lambda: Diagnosis(profkit="0", checks=(missing,)))
    with pytest.raises(ProfkitError, match=r"cannot run here: diffusers \(pip install diffusers\)") as error:
        doctor(json=False)
    assert error.value.exit_code == EXIT_RUN_FAILED


@pytest.mark.slow
def test_profkit_doctor_on_the_command_line() -> None:
    plain = run_cli("doctor")
    assert plain.returncode == 0, plain.stderr
    assert "capture and bench can run here" in plain.stdout and "Traceback" not in plain.stderr
    as_json = run_cli("doctor", "--json")
    assert as_json.returncode == 0, as_json.stderr
    document = orjson.loads(as_json.stdout)
    assert document["can_run"] is True and [c["name"] for c in document["checks"]][: len(NAMES)] == NAMES
