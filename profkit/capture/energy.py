"""Energy of measured calls from NVML's total-energy counter (not from sampled power).

``nvmlDeviceGetTotalEnergyConsumption`` counts millijoules since the driver was loaded (Volta and newer). The
benchmark reads it right before and right after each measured call: the difference is that call's energy.
The counter reader is injected (:class:`EnergyMeter`), so the arithmetic is tested with a stand-in counter.
A CPU run, missing NVML bindings, a GPU without the counter, a failed read or a counter that went backwards
(wrap, driver reload) give ``None`` ("not captured"), and :attr:`EnergyMeter.source` says why.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

#: Reads the counter in millijoules.
CounterReader = Callable[[], int]
NOT_CAPTURED = "not captured"


class EnergyMeter:
    """``start = meter.read()`` before a call, ``meter.since(start)`` after it: the call's mJ, or ``None``."""

    def __init__(self, read: CounterReader | None, source: str, close: Callable[[], Any] | None = None) -> None:
        self._read = read
        self._close = close
        self.source = source
        self.lost = 0  # spans (calls) a failed read or a backwards counter lost
        self.problem: str | None = None  # the first reason a span was lost

    @property
    def available(self) -> bool:
        return self._read is not None

    def read(self) -> int | None:
        """The counter now (mJ), or ``None`` when it cannot be read."""
        if self._read is None:
            return None
        try:
            value = self._read()
        except Exception as error:  # a read that fails mid-run loses this span only
            self.problem = self.problem or f"a counter read failed ({type(error).__name__}: {error})"
            return None
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            self.problem = self.problem or f"the counter read {value!r}"
            return None
        return value

    def since(self, start: int | None) -> float | None:
        """Millijoules since ``start`` (a :meth:`read`), or ``None``: not captured, a failed read, a counter that went
        backwards (wrapped or reset)."""
        end = self.read() if start is not None else None
        if end is None:
            self.lost += self._read is not None  # a failed read of a counter that exists loses this span
            return None
        if end < start:
            self._lose("the counter went backwards (wrapped, or the driver was reloaded)")
            return None
        return float(end - start)

    def _lose(self, why: str) -> None:
        self.lost += 1
        self.problem = self.problem or why

    def close(self) -> None:
        if self._close is not None:
            with contextlib.suppress(Exception):  # shutting NVML down is best effort
                self._close()
            self._close = None

    def describe(self) -> str:
        """Where the energy numbers come from, and what was lost (stored as the result's ``energy_source``)."""
        if self.lost and self.problem:
            return f"{self.source}; {self.lost} measurement(s) not captured: {self.problem}"
        return self.source

    def __enter__(self) -> EnergyMeter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def not_captured(why: str) -> EnergyMeter:
    return EnergyMeter(None, f"{NOT_CAPTURED}: {why}")


def nvml_meter(device: str, nvml: Any = None) -> EnergyMeter:
    """The meter of a CUDA ``device`` through NVML (``pynvml``, package nvidia-ml-py), or one that says why not."""
    if not device.startswith("cuda"):
        return not_captured("CPU run")
    if nvml is None:
        try:
            import pynvml as nvml  # type: ignore[import-not-found]
        except ImportError:
            return not_captured("NVML bindings missing (pip install nvidia-ml-py)")
    try:
        nvml.nvmlInit()
    except Exception as error:
        return not_captured(f"NVML failed ({error})")
    try:
        index = int(device.split(":")[1]) if ":" in device else 0
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
        name = nvml.nvmlDeviceGetName(handle)
        name = name.decode() if isinstance(name, bytes) else name
        nvml.nvmlDeviceGetTotalEnergyConsumption(handle)  # the counter exists (Volta and newer)
    except Exception as error:
        with contextlib.suppress(Exception):
            nvml.nvmlShutdown()
        return not_captured(f"no NVML total-energy counter on {device} ({error})")
    return EnergyMeter(
        lambda: int(nvml.nvmlDeviceGetTotalEnergyConsumption(handle)),
        f"NVML total-energy counter, device {index} ({name})",
        nvml.nvmlShutdown,
    )


def open_meter(device: str) -> EnergyMeter:
    """:func:`nvml_meter` of ``device`` (never raises: an unusable counter is "not captured")."""
    try:
        return nvml_meter(device)
    except Exception as error:
        return not_captured(f"NVML failed ({error})")
