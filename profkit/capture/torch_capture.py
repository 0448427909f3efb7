"""Run the instrumented pipeline under ``torch.profiler`` and write trace, metadata and images."""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from profkit.capture.instrument import instrument
from profkit.capture.settings import CaptureSettings
from profkit.environment import device_info, document_header, environment, precision_settings
from profkit.errors import EXIT_RUN_FAILED, ProfkitError
from profkit.jsonio import write_json
from profkit.pipelines.loading import load_pipeline, resolve_device

TRACE_FILE = "trace.json.gz"
METADATA_FILE = "metadata.json"
IMAGES_DIR = "images"


class CaptureProgress(Protocol):
    def start_run(self, name: str, total_steps: int) -> None: ...
    def phase(self, text: str) -> None: ...
    def step(self) -> None: ...


class _NoProgress:
    def start_run(self, name: str, total_steps: int) -> None:
        pass

    def phase(self, text: str) -> None:
        pass

    def step(self) -> None:
        pass


@dataclass
class RunRecord:
    """What one capture run (one dtype) wrote."""

    dtype: str
    folder: Path
    trace: Path
    metadata: Path
    images: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def run_folder(settings: CaptureSettings, dtype: str) -> Path:
    return settings.out / settings.run_name(dtype)


def prepare_run_folder(folder: Path, force: bool) -> None:
    if folder.exists():
        if not force:
            raise ProfkitError(f"{folder} already exists: pass --force to overwrite it, or choose --out")
        shutil.rmtree(folder)
    folder.mkdir(parents=True)


def attention_processors(pipeline: Any) -> dict[str, int]:
    """Attention processor class names of every denoiser, with how many layers use each."""
    counts: dict[str, int] = {}
    for attr, component in (getattr(pipeline, "components", {}) or {}).items():
        processors = getattr(component, "attn_processors", None)
        if not isinstance(processors, dict):
            continue
        for processor in processors.values():
            key = f"{attr}:{type(processor).__name__}"
            counts[key] = counts.get(key, 0) + 1
    return counts


def platform_notes(device: str, dtype: str) -> list[str]:
    notes = []
    if device == "cpu" and dtype in ("fp16", "bf16"):
        notes.append(
            f"{dtype} on CPU: this CPU build has no fast half-precision kernels, so {dtype} usually runs "
            "several times slower than fp32 here; GPU results differ"
        )
    if device == "cpu":
        notes.append("CPU run: the trace has no GPU activity, so the kernel view lists CPU operators")
    return notes


def call_kwargs(settings: CaptureSettings, device: str, seed: int) -> dict[str, Any]:
    import torch

    generator_device = "cpu" if device == "cpu" else device
    kwargs: dict[str, Any] = {
        "prompt": settings.batch_prompts(),
        "num_inference_steps": settings.steps,
        "height": settings.height,
        "width": settings.width,
        "generator": torch.Generator(device=generator_device).manual_seed(seed),
    }
    if settings.guidance_scale is not None:
        kwargs["guidance_scale"] = settings.guidance_scale
    return kwargs


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def timed_call(pipeline: Any, settings: CaptureSettings, device: str) -> tuple[Any, float]:
    """One pipeline call with the capture's prompts and seed; its output and wall seconds (device synchronized)."""
    started = time.perf_counter()
    output = pipeline(**call_kwargs(settings, device, settings.seed))
    synchronize(device)
    return output, time.perf_counter() - started


@contextmanager
def native_stdout_to_stderr() -> Iterator[None]:
    """Send what native code writes to stdout (Kineto prints ``USDT: profiler_start``) to stderr."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def save_images(output: Any, folder: Path) -> list[Path]:
    images = []
    for index, image in enumerate(getattr(output, "images", []) or []):
        if hasattr(image, "save"):
            path = folder / IMAGES_DIR / f"image_{index:03d}.png"
            path.parent.mkdir(exist_ok=True)
            image.save(path)
            images.append(path)
    return images


def run_metadata(
    settings: CaptureSettings,
    dtype: str,
    device: str,
    loaded: Any,
    pipeline: Any,
    components: dict[str, str],
    timing: dict[str, Any],
    profiler: dict[str, Any],
    files: dict[str, Any],
    notes: list[str],
) -> dict[str, Any]:
    """The metadata.json of a run: versions, device, settings, switches, timings, files."""
    return {
        **document_header("profkit.capture"),
        "environment": environment(),
        "device": device_info(device),
        "dtype": dtype,
        "model": settings.model,
        "model_source": loaded.source,
        "pipeline_class": type(pipeline).__name__,
        "components": components,
        "settings": {key: value for key, value in settings.as_dict().items() if key != "dtypes"},
        "seed": settings.seed,
        "precision": precision_settings(),
        "attention_processors": attention_processors(pipeline),
        "timing_seconds": timing,
        "profiler": profiler,
        "files": files,
        "notes": notes,
    }


def capture_one(settings: CaptureSettings, dtype: str, device: str, progress: CaptureProgress) -> RunRecord:
    """Load, warm up, and record one pipeline call of ``dtype`` under torch.profiler."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    folder = run_folder(settings, dtype)
    prepare_run_folder(folder, settings.force)
    progress.start_run(folder.name, settings.steps * (settings.warmup + 1))
    progress.phase("loading pipeline")
    loaded = load_pipeline(settings.model, dtype, device)
    pipeline = loaded.pipeline
    instrumentation = instrument(pipeline, on_step=lambda _n: progress.step())
    warmup_seconds: list[float] = []
    with instrumentation:
        for index in range(settings.warmup):
            progress.phase(f"warm-up {index + 1}/{settings.warmup}")
            warmup_seconds.append(timed_call(pipeline, settings, device)[1])
        activities = [ProfilerActivity.CPU]
        if device.startswith("cuda"):
            activities.append(ProfilerActivity.CUDA)
        progress.phase("recording")
        with native_stdout_to_stderr(), profile(activities=activities, record_shapes=True) as profiler:
            output, recorded_seconds = timed_call(pipeline, settings, device)
        progress.phase("writing trace")
        trace_path = folder / TRACE_FILE
        profiler.export_chrome_trace(str(trace_path))
    images = save_images(output, folder)
    notes = platform_notes(device, dtype)
    metadata = run_metadata(
        settings,
        dtype,
        device,
        loaded,
        pipeline,
        instrumentation.components,
        timing={
            "load": loaded.load_seconds,
            "warmup_calls": warmup_seconds,
            "recorded_call_under_profiler": recorded_seconds,
        },
        profiler={"tool": "torch.profiler", "torch_version": torch.__version__, "record_shapes": True},
        files={"trace": TRACE_FILE, "images": [str(p.relative_to(folder)) for p in images]},
        notes=notes,
    )
    metadata_path = write_json(folder / METADATA_FILE, metadata)
    return RunRecord(dtype, folder, trace_path, metadata_path, images, notes)


def run_capture(settings: CaptureSettings, progress: CaptureProgress | None = None) -> list[RunRecord]:
    """Capture every dtype of ``settings`` with identical prompts, seed, sizes and steps."""
    settings.validate()
    device = resolve_device(settings.device)
    for dtype in settings.dtypes:  # refuse before any work rather than half-way through
        folder = run_folder(settings, dtype)
        if folder.exists() and not settings.force:
            raise ProfkitError(f"{folder} already exists: pass --force to overwrite it, or choose --out")
    progress = progress or _NoProgress()
    tool = None
    if settings.nsys:
        from profkit.capture.nsys_capture import capture_one_nsys
        from profkit.nsys_tool import find_nsys

        tool = find_nsys(settings.nsys_path)
    records = []
    for dtype in settings.dtypes:
        try:
            if tool is not None:
                records.append(capture_one_nsys(settings, dtype, device, progress, tool, list(settings.nsys_args)))
            else:
                records.append(capture_one(settings, dtype, device, progress))
        except ProfkitError:
            raise
        except Exception as error:  # a crash inside the model: keep what earlier runs wrote
            done = ", ".join(str(r.folder) for r in records) or "nothing"
            raise ProfkitError(
                f"capture of {dtype} failed: {type(error).__name__}: {error} (kept: {done})",
                EXIT_RUN_FAILED,
            ) from error
    return records
