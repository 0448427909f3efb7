"""Collect the environment recorded with every result file: versions, device, precision switches."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib import metadata as importlib_metadata
from typing import Any

from profkit import __version__


def _version(package: str) -> str | None:
    try:
        return importlib_metadata.version(package)
    except importlib_metadata.PackageNotFoundError:
        return None


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_info(device: str) -> dict[str, Any]:
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        index = torch.device(device).index or 0
        props = torch.cuda.get_device_properties(index)
        return {
            "type": "cuda",
            "name": props.name,
            "index": index,
            "count": torch.cuda.device_count(),
            "compute_capability": f"{props.major}.{props.minor}",
            "total_memory_bytes": int(props.total_memory),
            "cuda_runtime": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version(),
        }
    return {"type": "cpu", "name": cpu_name(), "threads": torch.get_num_threads()}


def precision_settings() -> dict[str, Any]:
    """TF32 and SDPA backend switches: an FP32 number is ambiguous without them."""
    import torch

    settings: dict[str, Any] = {
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "cuda_matmul_allow_tf32": bool(torch.backends.cuda.matmul.allow_tf32),
        "cudnn_allow_tf32": bool(torch.backends.cudnn.allow_tf32),
    }
    for backend in ("flash", "mem_efficient", "math", "cudnn"):
        query = getattr(torch.backends.cuda, f"{backend}_sdp_enabled", None)
        if query is not None:
            settings[f"sdpa_{backend}_enabled"] = bool(query())
    return settings


def git_commit() -> str | None:
    """The commit being measured: the CI's variable when set, else ``git rev-parse`` in the current folder."""
    for variable in ("PROFKIT_COMMIT", "GITHUB_SHA", "CI_COMMIT_SHA", "BUILD_SOURCEVERSION"):
        if os.environ.get(variable, "").strip():
            return os.environ[variable].strip()[:40]
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = done.stdout.strip()
    return commit if done.returncode == 0 and commit else None


def environment() -> dict[str, Any]:
    return {
        "git_commit": git_commit(),
        "profkit": __version__,
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "torch": _version("torch"),
        "diffusers": _version("diffusers"),
        "transformers": _version("transformers"),
        "nvtx": _version("nvtx"),
        "executable": sys.executable,
    }
