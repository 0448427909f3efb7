"""Per-request phases from one clock, and the ``Server-Timing`` header that carries them.

The worker marks, with ``time.perf_counter``, when a batch starts, when profkit's ranges open and close (text
encoders, denoise steps, VAE decode) and when the response bodies are ready. The phases partition the time from a
request's arrival to its body being ready, so they add up to ``total``:

``queue`` arrival -> batch start; ``preprocess`` batch start -> denoise loop, less text encoding (input checks,
prompt handling, latents); ``text_encode`` the text-encoder calls; ``denoise`` first step -> last step;
``vae_decode`` last step -> VAE decode returns; ``encode_image`` -> PNG/base64 bodies ready (post-processing too).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

PHASES: tuple[str, ...] = ("queue", "preprocess", "text_encode", "denoise", "vae_decode", "encode_image")
TOTAL = "total"
STEP = "step"


@dataclass
class BatchClock:
    """Marks of one pipeline call (a batch), taken by the worker thread; ``sync`` waits for the GPU first."""

    sync: Callable[[], None] | None = None
    clock: Callable[[], float] = time.perf_counter
    started: float = 0.0
    text_encode_s: float = 0.0
    denoise_open: float | None = None
    denoise_close: float | None = None
    vae_close: float | None = None
    finished: float = 0.0
    steps_s: list[float] = field(default_factory=list)
    _open: dict[str, float] = field(default_factory=dict)

    def now(self) -> float:
        if self.sync is not None:
            self.sync()
        return self.clock()

    def start(self) -> None:
        self.started = self.now()

    def finish(self) -> None:
        self.finished = self.clock()  # after host-side encoding: nothing left on the GPU

    def on_range(self, name: str, opened: bool) -> None:
        """The :class:`~profkit.capture.instrument.Instrumentation` hook: marks the ranges that bound phases."""
        parts = name.split("/")
        if len(parts) < 2 or (parts[1] == "denoise" and len(parts) != 3):
            return  # the pipeline range, or a denoiser/scheduler call inside a step
        kind = parts[1]
        if kind not in ("text_encoder", "denoise", "vae") or (kind == "vae" and parts[-1] != "decode"):
            return
        at = self.now()
        if opened:
            self._open[name] = at
            if kind == "denoise" and self.denoise_open is None:
                self.denoise_open = at
            return
        began = self._open.pop(name, at)
        if kind == "text_encoder":
            self.text_encode_s += at - began
        elif kind == "denoise":
            self.steps_s.append(at - began)
            self.denoise_close = at
        else:
            self.vae_close = at

    def phases_ms(self, received: float) -> dict[str, float]:
        """The phases of a request that arrived at ``received`` (perf_counter) and ran in this batch, plus total."""
        denoise_open = self.denoise_open if self.denoise_open is not None else self.started
        denoise_close = self.denoise_close if self.denoise_close is not None else denoise_open
        vae_close = self.vae_close if self.vae_close is not None else denoise_close
        text_encode = min(self.text_encode_s, denoise_open - self.started)
        seconds = {
            "queue": self.started - received,
            "preprocess": denoise_open - self.started - text_encode,
            "text_encode": text_encode,
            "denoise": denoise_close - denoise_open,
            "vae_decode": vae_close - denoise_close,
            "encode_image": self.finished - vae_close,
        }
        phases = {name: max(value, 0.0) * 1000.0 for name, value in seconds.items()}
        phases[TOTAL] = (self.finished - received) * 1000.0
        return phases

    def step_mean_ms(self) -> float | None:
        return sum(self.steps_s) / len(self.steps_s) * 1000.0 if self.steps_s else None


def server_timing(phases_ms: dict[str, float], step_mean_ms: float | None = None, steps: int = 0) -> str:
    """``queue;dur=1.234, preprocess;dur=..., total;dur=...`` and, when known, ``step;dur=<mean>;desc="mean of N"``."""
    entries = [f"{name};dur={phases_ms[name]:.3f}" for name in (*PHASES, TOTAL) if name in phases_ms]
    if step_mean_ms is not None:
        entries.append(f'{STEP};dur={step_mean_ms:.3f};desc="mean of {steps}"')
    return ", ".join(entries)
