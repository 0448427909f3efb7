"""The capture metadata document (``metadata.json`` of a capture folder, kind ``profkit.capture``).

One per captured run: software versions, the device, the settings of the experiment, the precision and
attention switches that change what an FP32/FP16 number means, timings of the calls, what the profiler was and
which files the run wrote. Nested parts whose keys are known are small Structs; open-ended ones are dicts.
Optional keys of a nested part are left out of the JSON when unset, so version-1 files keep their exact shape.
Every field is typed down to its leaves (a precision switch is a scalar, never a list or an object), so a
hand-edited file with a wrong type is refused on load with its field named, and no report sees one.
"""

from __future__ import annotations

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


class ProfilerInfo(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Which profiler recorded the run (``torch.profiler`` or ``nsys``) and how."""

    tool: str
    torch_version: str | None = None
    record_shapes: bool | None = None
    nsys_version: str | None = None
    nsys_args: list[str] | None = None
    profkit_ranges_recorded: int | None = None


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
    #: "complete"; "running" while the run goes on (left so by a killed process), "interrupted" (SIGINT/SIGTERM: what
    #: was measured is kept), "failed" (the run crashed). Written only when not complete, so complete files keep
    #: the version-1 shape (and files without it are complete).
    status: str = "complete"

    def body(self) -> dict[str, Any]:
        body = super().body()
        if self.status == "complete":
            del body["status"]
        return body

    @property
    def trace_file(self) -> str:
        """The trace file name inside the capture folder."""
        return self.files.trace or TRACE_FILE

    @property
    def label(self) -> str:
        """``"tiny-sd fp16"``, with ``" (nsys)"`` for an Nsight Systems capture."""
        label = f"{self.model or '?'} {self.dtype}"
        return label + " (nsys)" if self.profiler is not None and self.profiler.tool == "nsys" else label
