"""The capture metadata document (``metadata.json`` of a capture folder, kind ``profkit.capture``).

One per captured run: software versions, the device, the settings of the experiment, the precision and
attention switches that change what an FP32/FP16 number means, timings of the calls, what the profiler was and
which files the run wrote. Nested parts whose keys are known are small Structs; open-ended ones are dicts.
Optional keys of a nested part are left out of the JSON when unset, so version-1 files keep their exact shape.
Every field is typed down to its leaves (a precision switch is a scalar, never a list or an object), so a
hand-edited file with a wrong type is refused on load with its field named, and no report sees one.
"""

from __future__ import annotations

import itertools
from typing import Any

import msgspec

from profkit.model.base import Document

#: File names inside a capture folder (the torch and nsys captures and the readers share them).
TRACE_FILE = "trace.json.gz"
METADATA_FILE = "metadata.json"
IMAGES_DIR = "images"

#: The value of a precision switch: a flag, a mode name ("highest") or a number.
Switch = bool | int | float | str | None


class Environment(msgspec.Struct, frozen=True, kw_only=True):
    """Software versions (``None``: not installed)."""

    profkit: str | None = None
    python: str | None = None
    python_implementation: str | None = None
    platform: str | None = None
    torch: str | None = None
    diffusers: str | None = None
    transformers: str | None = None
    nvtx: str | None = None
    executable: str | None = None


class DeviceInfo(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """The device a run used: ``type`` and ``name`` always; CUDA and CPU details where they apply."""

    type: str
    name: str | None = None
    threads: int | None = None  # cpu
    index: int | None = None  # cuda
    count: int | None = None
    compute_capability: str | None = None
    total_memory_bytes: int | None = None
    cuda_runtime: str | None = None
    cudnn: int | None = None


#: The values each knob takes (the first is the default: the pipeline as loaded).
COMPILE_MODES = ("off", "default", "reduce-overhead", "max-autotune")
ATTENTION_BACKENDS = ("auto", "flash", "efficient", "cudnn", "math")
QUANTIZE_MODES = ("off", "int8-weight", "int8-dynamic", "fp8")
#: Short names of the knobs in run and configuration names.
_KNOB_TAGS = {
    "compile": "compile",
    "attention": "attn",
    "channels_last": "cl",
    "tf32": "tf32",
    "scheduler": "sched",
    "quantize": "q",
    "vae_tiling": "vaetile",
    "cpu_offload": "offload",
}


class Knobs(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """The optimizations of one configuration (capture, bench, serve); defaults are the pipeline as loaded.

    Only knobs that differ from their default are written, so a run without knobs keeps its version-1 shape.
    """

    compile: str = "off"  # torch.compile mode of the denoiser, or "off"
    attention: str = "auto"  # SDPA backend forced around each call
    channels_last: bool = False
    tf32: bool = False
    scheduler: str | None = None  # a diffusers scheduler class name (None: the pipeline's own)
    quantize: str = "off"  # torchao quantization of the denoiser
    vae_tiling: bool = False
    cpu_offload: bool = False

    def changed(self) -> dict[str, Any]:
        """The knobs that differ from their defaults, by name."""
        defaults = Knobs()
        return {
            key: getattr(self, key) for key in self.__struct_fields__ if getattr(self, key) != getattr(defaults, key)
        }

    @property
    def tag(self) -> str:
        """``"compile-default_attn-math"``: the changed knobs as one name part ("" when none changed)."""
        parts = []
        for key, value in self.changed().items():
            tag = _KNOB_TAGS[key]
            parts.append(tag if value is True else f"{tag}-{value}")
        return "_".join(parts)


class KnobGrid(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """The values asked for each knob (each a non-empty tuple; one value = not varied)."""

    compile: tuple[str, ...] = ("off",)
    attention: tuple[str, ...] = ("auto",)
    channels_last: tuple[bool, ...] = (False,)
    tf32: tuple[bool, ...] = (False,)
    scheduler: tuple[str | None, ...] = (None,)
    quantize: tuple[str, ...] = ("off",)
    vae_tiling: tuple[bool, ...] = (False,)
    cpu_offload: tuple[bool, ...] = (False,)

    def combinations(self) -> list[Knobs]:
        """Every combination, the first knob varying slowest."""
        names = list(self.__struct_fields__)
        values = [getattr(self, name) for name in names]
        default = Knobs()
        return [  # only the changed knobs are passed, so the defaults stay the very default values (omitted in JSON)
            Knobs(**{name: value for name, value in zip(names, combo, strict=True) if value != getattr(default, name)})
            for combo in itertools.product(*values)
        ]

    def validate(self) -> KnobGrid:
        """The grid when every value is one the knob takes; else a :class:`SettingError` naming the knob."""
        from profkit.errors import SettingError

        for name, allowed in (
            ("compile", COMPILE_MODES),
            ("attention", ATTENTION_BACKENDS),
            ("quantize", QUANTIZE_MODES),
        ):
            for value in getattr(self, name):
                if value not in allowed:
                    raise SettingError(name, f"takes {', '.join(allowed)} (got {value!r})")
        for name in self.__struct_fields__:
            values = getattr(self, name)
            if not values:
                raise SettingError(name, "needs at least one value")
            if len(set(values)) != len(values):
                raise SettingError(name, "lists a value twice")
        return self

    def by_knob(self) -> dict[str, tuple[Any, ...]]:
        """Knob name -> the values asked for."""
        return {name: getattr(self, name) for name in self.__struct_fields__}

    @property
    def varied(self) -> list[str]:
        """The knobs given more than one value."""
        return [name for name in self.__struct_fields__ if len(getattr(self, name)) > 1]


class RunSettings(msgspec.Struct, frozen=True, kw_only=True):
    """The capture settings of one run (:class:`~profkit.capture.settings.CaptureSettings` less its dtype list)."""

    model: str
    steps: int
    height: int
    width: int
    batch: int = 1
    prompts: list[str] = msgspec.field(default_factory=list)
    seed: int = 0
    warmup: int = 0
    device: str = "auto"
    out: str = ""
    force: bool = False
    guidance_scale: float | None = None
    nsys: bool = False
    nsys_path: str | None = None
    nsys_args: list[str] = msgspec.field(default_factory=list)
    knobs: Knobs = msgspec.field(default_factory=Knobs)


class Timing(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Wall seconds: loading, each warm-up call, and the recorded call under the profiler that ran."""

    load: float | None = None
    warmup_calls: list[float]  # required, so an empty list is written too
    recorded_call_under_profiler: float | None = None
    recorded_call_under_nsys: float | None = None
    unprofiled_call: float | None = None  # the same call right after, without the profiler (its distortion)

    @property
    def profiler_overhead(self) -> float | None:
        """How much slower the profiled call was than the unprofiled one (+0.12 = 12% slower)."""
        profiled = self.recorded_call_under_profiler
        if profiled is None or not self.unprofiled_call:
            return None
        return profiled / self.unprofiled_call - 1

    compile_seconds: float | None = None  # the first warm-up call, which compiled (--compile)


class ProfilerInfo(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Which profiler recorded the run (``torch.profiler`` or ``nsys``) and how."""

    tool: str
    torch_version: str | None = None
    record_shapes: bool | None = None
    nsys_version: str | None = None
    nsys_args: list[str] | None = None
    profkit_ranges_recorded: int | None = None


#: What the memory fields say where no device memory counter was read.
NOT_CAPTURED = "not captured"
NOT_CAPTURED_CPU = "not captured (a CPU has no device memory counter)"
CUDA_MEMORY_SOURCE = "torch.cuda.max_memory_allocated (reset at profkit range boundaries)"


class StageMemory(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Peak device memory per stage of one call (text encoders, denoise, VAE, other), read at range boundaries."""

    source: str = NOT_CAPTURED  # "torch.cuda.max_memory_allocated" or why not captured
    peak_allocated_mb: dict[str, float] = msgspec.field(default_factory=dict)  # stage -> MiB


class RunFiles(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Files of the run, relative to its folder."""

    trace: str | None = None
    images: list[str]  # required, so an empty list is written too
    nsys_report: str | None = None


class CaptureMetadata(Document, frozen=True, kw_only=True):
    """What one capture run was: environment, device, settings, switches, timings, profiler, files."""

    KIND = "profkit.capture"

    environment: Environment = msgspec.field(default_factory=Environment)
    device: DeviceInfo
    dtype: str
    model: str | None = None
    model_source: str | None = None
    weights: str | None = None  # "random" (built-ins: timings real, images noise) or "pretrained"
    pipeline_class: str | None = None
    components: dict[str, str] = msgspec.field(default_factory=dict)  # pipeline attribute -> profkit role
    settings: RunSettings | None = None
    seed: int | None = None
    precision: dict[str, Switch] = msgspec.field(default_factory=dict)  # TF32 / SDPA switches (vary by torch)
    attention_processors: dict[str, int] = msgspec.field(default_factory=dict)  # "unet:AttnProcessor2_0" -> layers
    timing_seconds: Timing = msgspec.field(default_factory=lambda: Timing(warmup_calls=[]))
    profiler: ProfilerInfo | None = None
    files: RunFiles = msgspec.field(default_factory=lambda: RunFiles(images=[]))
    notes: list[str] = msgspec.field(default_factory=list)
    memory: StageMemory | None = None  # peak device memory per stage of the recorded call
    #: "complete"; "running" while the run goes on (left so by a killed process), "interrupted" (SIGINT/SIGTERM: what
    #: was measured is kept), "failed" (the run crashed). Written only when not complete, so complete files keep
    #: the version-1 shape (and files without it are complete).
    status: str = "complete"

    def body(self) -> dict[str, Any]:
        body = super().body()
        if self.status == "complete":
            del body["status"]
        if self.memory is None:
            del body["memory"]
        if self.weights is None:
            del body["weights"]
        return body

    @property
    def trace_file(self) -> str:
        """The trace file name inside the capture folder."""
        return self.files.trace or TRACE_FILE

    @property
    def label(self) -> str:
        """``"tiny-sd fp16"``, then the changed knobs (``"compile-default"``); ``" (nsys)"`` for an nsys capture."""
        label = f"{self.model or '?'} {self.dtype}"
        if self.settings is not None and self.settings.knobs.tag:
            label += f" {self.settings.knobs.tag}"
        return label + " (nsys)" if self.profiler is not None and self.profiler.tool == "nsys" else label
