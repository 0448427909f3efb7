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
from typing import Any

import psutil

from profkit.model.bench import Samples

#: The series a sampler records, in the order of :class:`~profkit.model.bench.Samples`.
SERIES = ("t", "label", "cpu_percent", "rss_mb", "gpu_util", "gpu_mem_mb", "gpu_power_w", "gpu_sm_clock_mhz")


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
        self.hz = hz
        self.series: dict[str, list[Any]] = {name: [] for name in SERIES}
        self.gpu_source = "not captured"
        self.label = ""
        self._device = device
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._process = psutil.Process()

    def __enter__(self) -> Sampler:
        self._nvml, self._handle, self.gpu_source = _nvml_handle(self._device)
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

    @property
    def samples(self) -> Samples:
        """What was sampled so far, as the document's frozen :class:`Samples`."""
        series = {name: tuple(values) for name, values in self.series.items()}
        return Samples(hz=self.hz, gpu_source=self.gpu_source, **series)

    def _run(self) -> None:
        period = 1.0 / self.hz
        next_tick = time.perf_counter()
        while not self._stop.is_set():
            self._sample()
            next_tick += period
            self._stop.wait(max(0.0, next_tick - time.perf_counter()))

    def _sample(self) -> None:
        row: dict[str, Any] = {
            "t": time.perf_counter() - self._started,
            "label": self.label,
            "cpu_percent": self._process.cpu_percent(None),
            "rss_mb": self._process.memory_info().rss / 2**20,
        }
        if self._nvml is not None:
            nvml, handle = self._nvml, self._handle
            try:
                row["gpu_util"] = float(nvml.nvmlDeviceGetUtilizationRates(handle).gpu)
                row["gpu_mem_mb"] = nvml.nvmlDeviceGetMemoryInfo(handle).used / 2**20
                row["gpu_power_w"] = nvml.nvmlDeviceGetPowerUsage(handle) / 1000.0
                row["gpu_sm_clock_mhz"] = float(nvml.nvmlDeviceGetClockInfo(handle, nvml.NVML_CLOCK_SM))
            except Exception:
                row.update(dict.fromkeys(("gpu_util", "gpu_mem_mb", "gpu_power_w", "gpu_sm_clock_mhz"), None))
        for name, value in row.items():  # all series of one sample, so they stay the same length
            self.series[name].append(value)
