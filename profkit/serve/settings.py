"""What ``profkit serve`` is asked to do, validated once; the optimization knobs are capture's and bench's."""

from __future__ import annotations

from dataclasses import dataclass, field

from profkit.errors import ProfkitError, SettingError
from profkit.model.capture import Knobs
from profkit.pipelines.loading import DTYPES


@dataclass(frozen=True)
class ServeSettings:
    model: str = "tiny-sd"
    dtype: str = "fp32"
    device: str = "auto"
    knobs: Knobs = field(default_factory=Knobs)  # compile, attention, scheduler ... as for capture and bench
    guidance_scale: float | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    # request defaults and limits
    steps: int = 10  # default steps of a request that names none
    max_steps: int = 50
    height: int = 64  # default size
    width: int = 64
    min_side: int = 8
    max_side: int = 1024
    max_n: int = 4  # images per request
    max_body_bytes: int = 64 * 1024
    # queueing
    queue_size: int = 16  # requests waiting (not running); more are answered 503
    max_batch: int = 1  # images per pipeline call; 1 turns batching off
    max_wait_ms: float = 0.0  # how long the first request of a batch waits for compatible ones
    deadline_s: float = 120.0  # a request not answered by then gets 504
    warmup: int = 1  # pipeline calls before /healthz says ready
    graceful_s: float = 60.0  # how long shutdown waits for accepted requests

    def validate(self) -> ServeSettings:
        if self.dtype not in DTYPES:
            raise ProfkitError(f"unknown dtype {self.dtype!r}: use one of {', '.join(DTYPES)}")
        for name in ("steps", "max_steps", "max_n", "max_batch", "queue_size", "max_body_bytes"):
            if getattr(self, name) < 1:
                raise SettingError(name, f"must be at least 1 (got {getattr(self, name)})")
        if self.steps > self.max_steps:
            raise SettingError("steps", f"is above max_steps ({self.steps} > {self.max_steps})")
        if self.min_side < 8 or self.min_side % 8 or self.max_side % 8 or self.max_side < self.min_side:
            raise SettingError("max_side", f"must be a multiple of 8, at least {self.min_side} (got {self.max_side})")
        for side in (self.height, self.width):
            if side % 8 or not self.min_side <= side <= self.max_side:
                raise SettingError("height/width", f"must be multiples of 8 in {self.min_side}..{self.max_side}")
        if not 0 < self.port < 65536:
            raise SettingError("port", f"must be in 1..65535 (got {self.port})")
        for name in ("max_wait_ms", "warmup"):
            if getattr(self, name) < 0:
                raise SettingError(name, f"cannot be negative (got {getattr(self, name)})")
        for name in ("deadline_s", "graceful_s"):
            if getattr(self, name) <= 0:
                raise SettingError(name, f"must be positive (got {getattr(self, name)})")
        return self
