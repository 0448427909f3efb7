"""A background thread that samples utilization and memory while a benchmark runs.

On a CUDA device it reads NVML (``pynvml``, from the ``nvidia-ml-py`` package): GPU utilization %,
memory used, power draw and SM clock. It always reads the process through psutil: CPU % (of one
core; 200% = two cores busy) and resident memory. Each sample carries the label of what was running
(the benchmark configuration), so per-configuration summaries can be cut from one series.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import psutil


@dataclass
class Samples:
    hz: float
    t: list[float] = field(default_factory=list)  # seconds since the sampler started
    label: list[str] = field(default_factory=list)
    cpu_percent: list[float] = field(default_factory=list)
    rss_mb: list[float] = field(default_factory=list)
    gpu_util: list[float] = field(default_factory=list)  # empty when NVML is not available
    gpu_mem_mb: list[float] = field(default_factory=list)
    gpu_power_w: list[float] = field(default_factory=list)
    gpu_sm_clock_mhz: list[float] = field(default_factory=list)
    gpu_source: str = "not captured"  # "NVML device N (name)" or why not

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _nvml_handle(device: str) -> tuple[Any, Any, str]:
    """(pynvml module, handle, description) or (None, None, why not)."""
    if not device.startswith("cuda"):
        return None, None, "not captured: CPU run"
    try:
        import pynvml  # type: ignore[import-not-found]
    except ImportError:
        return None, None, "not captured: NVML bindings missing (pip install nvidia-ml-py)"
    try:
        pynvml.nvmlInit()
        index = int(device.split(":")[1]) if ":" in device else 0
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        name = pynvml.nvmlDeviceGetName(handle)
        name = name.decode() if isinstance(name, bytes) else name
        return pynvml, handle, f"NVML device {index} ({name})"
    except Exception as error:
        return None, None, f"not captured: NVML failed ({error})"


class Sampler:
    """``with Sampler(device, hz) as sampler: ... sampler.label = "fp16 b1"``; then ``sampler.samples``."""

    def __init__(self, device: str, hz: float = 20.0) -> None:
        self.samples = Samples(hz=hz)
        self.label = ""
        self._device = device
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._process = psutil.Process()

    def __enter__(self) -> Sampler:
        self._nvml, self._handle, self.samples.gpu_source = _nvml_handle(self._device)
        self._process.cpu_percent(None)  # the first call only starts the measurement
        self._started = time.perf_counter()
        self._thread = threading.Thread(target=self._run, name="profkit-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._nvml is not None:
            with contextlib.suppress(Exception):  # shutting NVML down is best effort
                self._nvml.nvmlShutdown()

    def _run(self) -> None:
        period = 1.0 / self.samples.hz
        next_tick = time.perf_counter()
        while not self._stop.is_set():
            self._sample()
            next_tick += period
            self._stop.wait(max(0.0, next_tick - time.perf_counter()))

    def _sample(self) -> None:
        s = self.samples
        s.t.append(time.perf_counter() - self._started)
        s.label.append(self.label)
        s.cpu_percent.append(self._process.cpu_percent(None))
        s.rss_mb.append(self._process.memory_info().rss / 2**20)
        if self._nvml is not None:
            nvml, handle = self._nvml, self._handle
            try:
                s.gpu_util.append(float(nvml.nvmlDeviceGetUtilizationRates(handle).gpu))
                s.gpu_mem_mb.append(nvml.nvmlDeviceGetMemoryInfo(handle).used / 2**20)
                s.gpu_power_w.append(nvml.nvmlDeviceGetPowerUsage(handle) / 1000.0)
                s.gpu_sm_clock_mhz.append(float(nvml.nvmlDeviceGetClockInfo(handle, nvml.NVML_CLOCK_SM)))
            except Exception:
                for series in (s.gpu_util, s.gpu_mem_mb, s.gpu_power_w, s.gpu_sm_clock_mhz):
                    series.append(float("nan"))
