"""What a capture run is asked to do, validated once."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import msgspec

from profkit.capture.knobs import KnobGrid
from profkit.errors import ProfkitError, SettingError
from profkit.model.bench import DEFAULT_PROMPT  # one default prompt for captures and benchmarks
from profkit.model.capture import Knobs
from profkit.pipelines.loading import DTYPES


@dataclass(frozen=True)
class CaptureSettings:
    model: str = "tiny-sd"
    dtypes: tuple[str, ...] = ("fp32",)
    steps: int = 10
    height: int = 64
    width: int = 64
    batch: int = 1
    prompts: tuple[str, ...] = (DEFAULT_PROMPT,)
    seed: int = 0
    warmup: int = 1
    device: str = "auto"
    out: Path = Path("runs")
    force: bool = False
    guidance_scale: float | None = None
    nsys: bool = False  # capture under Nsight Systems instead of torch.profiler
    nsys_path: str | None = None
    nsys_args: tuple[str, ...] = ()
    knobs: Knobs = field(default_factory=Knobs)  # the optimizations of one run
    #: What the whole A/B/C run varies besides the dtype: steps (empty: ``steps`` alone) and each knob's values.
    steps_list: tuple[int, ...] = ()
    grid: KnobGrid = field(default_factory=KnobGrid)

    def __post_init__(self) -> None:
        if isinstance(self.knobs, dict):  # from as_dict() (the nsys child's request)
            object.__setattr__(self, "knobs", msgspec.convert(self.knobs, Knobs))

    def all_steps(self) -> tuple[int, ...]:
        return self.steps_list or (self.steps,)

    def variants(self) -> list[tuple[str, CaptureSettings]]:
        """``(dtype, settings of that run)`` of every run: dtypes x steps x knob combinations, dtype slowest."""
        return [
            (dtype, replace(self, steps=steps, knobs=knobs, steps_list=(), grid=KnobGrid()))
            for dtype in self.dtypes
            for steps in self.all_steps()
            for knobs in self.grid.combinations()
        ]

    record_latents: bool = False  # one extra, untimed call records each step's latents (latents.npz)

    def validate(self) -> CaptureSettings:
        if not self.dtypes:
            raise SettingError("dtypes", "needs at least one of fp32, fp16, bf16")
        for dtype in self.dtypes:
            if dtype not in DTYPES:
                raise ProfkitError(f"unknown dtype {dtype!r}: use one of {', '.join(DTYPES)}")
        if len(set(self.dtypes)) != len(self.dtypes):
            raise SettingError("dtypes", f"lists a dtype twice: {','.join(self.dtypes)}")
        for steps in self.all_steps():
            if steps < 1:
                raise SettingError("steps", f"must be at least 1 (got {steps})")
        if len(set(self.all_steps())) != len(self.all_steps()):
            raise SettingError("steps", f"lists a number twice: {','.join(map(str, self.all_steps()))}")
        self.grid.validate()
        if self.height < 8 or self.width < 8 or self.height % 8 or self.width % 8:
            raise SettingError("height/width", f"must be positive multiples of 8 (got {self.height}x{self.width})")
        if self.batch < 1:
            raise SettingError("batch", f"must be at least 1 (got {self.batch})")
        if self.warmup < 0:
            raise SettingError("warmup", f"cannot be negative (got {self.warmup})")
        if not self.prompts or not any(p.strip() for p in self.prompts):
            raise ProfkitError(
                "no prompt given: {prompt} is empty or {prompts_file} has no lines", settings=("prompt", "prompts_file")
            )
        return self

    def batch_prompts(self) -> list[str]:
        """The prompts of one pipeline call: ``batch`` of them, cycling through the list."""
        prompts = [p for p in self.prompts if p.strip()]
        return [prompts[i % len(prompts)] for i in range(self.batch)]

    def run_name(self, dtype: str) -> str:
        return run_name(self.model, dtype, self.steps, self.height, self.width, self.batch, self.knobs.tag)

    def as_dict(self) -> dict[str, Any]:
        """The settings of one run as JSON builtins (the grid and steps list, which made it, are left out)."""
        data = asdict(replace(self, grid=KnobGrid(), knobs=Knobs()))
        del data["grid"], data["steps_list"]
        data["knobs"] = self.knobs.changed()
        data["out"] = str(self.out)
        data["dtypes"] = list(self.dtypes)
        data["prompts"] = list(self.prompts)
        data["nsys_args"] = list(self.nsys_args)
        return data


def run_name(model: str, dtype: str, steps: int, height: int, width: int, batch: int, knobs_tag: str = "") -> str:
    """``<model>_<dtype>_<steps>steps_<H>x<W>_b<batch>[_<knobs>]``: what names a run (its folder, its reports)."""
    model_slug = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(model).name or model).strip("-")
    name = f"{model_slug}_{dtype}_{steps}steps_{height}x{width}_b{batch}"
    return f"{name}_{knobs_tag}" if knobs_tag else name


def read_prompts_file(path: Path) -> tuple[str, ...]:
    if not path.is_file():
        raise SettingError("prompts_file", f"{path}: no such file")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise SettingError("prompts_file", f"{path}: cannot read it ({error})") from error
    prompts = tuple(line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#"))
    if not prompts:
        raise SettingError("prompts_file", f"{path} has no prompts (one per line)")
    return prompts
