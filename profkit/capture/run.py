"""What every capture run shares: run records and folders, timed calls, images, and its metadata document."""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from profkit.capture.environment import device_info, environment, precision_settings
from profkit.capture.settings import CaptureSettings
from profkit.errors import OutputExists, ProfkitError
from profkit.jsonio import write_bytes
from profkit.model.capture import (
    IMAGES_DIR,
    CaptureMetadata,
    DeviceInfo,
    Environment,
    Knobs,
    ProfilerInfo,
    RunFiles,
    RunSettings,
    StageMemory,
    Timing,
)
from profkit.naming import safe_component


@dataclass
class RunRecord:
    """What one capture run (one dtype) wrote."""

    dtype: str
    folder: Path
    trace: Path
    metadata: Path
    images: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    knobs: Knobs = field(default_factory=Knobs)
    steps: int | None = None

    @property
    def label(self) -> str:
        """``"fp16"``, ``"fp16 20 steps compile-default"``: the dtype, then what else names this run."""
        parts = [self.dtype]
        if self.steps is not None:
            parts.append(f"{self.steps} steps")
        return " ".join([*parts, self.knobs.tag] if self.knobs.tag else parts)


def run_folder(settings: CaptureSettings, dtype: str) -> Path:
    """``out/<model>_<dtype>_...``: the run name as one safe folder name (it holds names taken from data)."""
    return settings.out / safe_component(settings.run_name(dtype), max_len=120)


def prepare_run_folder(folder: Path, force: bool) -> None:
    """An empty run folder: an existing one is refused, or removed with ``force``."""
    if folder.exists():
        if not force:
            raise OutputExists(folder)
        shutil.rmtree(folder)
    try:
        folder.mkdir(parents=True)
    except FileExistsError:  # another run made it meanwhile
        raise OutputExists(folder) from None
    except OSError as error:
        raise ProfkitError(f"cannot write {folder}: {error.strerror or error}") from error


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
    from profkit.analysis.findings.facts import HALF_PRECISION_ON_CPU_NOTE, half_precision_is_slow

    notes = []
    if half_precision_is_slow(device, dtype):
        notes.append(HALF_PRECISION_ON_CPU_NOTE.format(dtype=dtype))
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


def load_prepared(settings: CaptureSettings, dtype: str, device: str, load: Any = None) -> Any:
    """The run's pipeline loaded (by ``load``, default :func:`~profkit.pipelines.loading.load_pipeline`) with its
    load-time knobs applied; a :class:`~profkit.pipelines.loading.LoadedPipeline`."""
    from profkit.capture.knobs import prepare
    from profkit.pipelines.loading import load_pipeline

    loaded = (load or load_pipeline)(settings.model, dtype, device)
    if settings.knobs != Knobs():
        prepare(loaded.pipeline, settings.knobs, device)
    return loaded


def timed_call(pipeline: Any, settings: CaptureSettings, device: str) -> tuple[Any, float]:
    """One pipeline call with the capture's prompts, seed and per-call knobs; its output and wall seconds (device
    synchronized)."""
    from profkit.capture.knobs import call_context

    with call_context(settings.knobs):
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
    """The pipeline's images as ``images/image_000.png`` ..., each written atomically."""
    import io

    images = []
    for index, image in enumerate(getattr(output, "images", []) or []):
        if hasattr(image, "save"):
            buffer = io.BytesIO()
            image.save(buffer, format="PNG")
            images.append(write_bytes(folder / IMAGES_DIR / f"image_{index:03d}.png", buffer.getvalue()))
    return images


def run_metadata(
    settings: CaptureSettings,
    dtype: str,
    device: str,
    loaded: Any,
    pipeline: Any,
    components: dict[str, str],
    timing: Timing,
    profiler: ProfilerInfo | None,
    files: RunFiles,
    notes: list[str],
    status: str = "complete",
    memory: StageMemory | None = None,
) -> CaptureMetadata:
    """The metadata document of a run: versions, device, settings, knobs, switches, timings, memory, files.

    ``loaded`` and ``pipeline`` may be ``None`` for a run that stopped before its pipeline was loaded. With
    ``--compile`` the first warm-up call (which compiled) is also recorded as ``compile_seconds``.
    """
    from profkit.pipelines.builtin import RANDOM_WEIGHTS_NOTE

    if settings.knobs.compile != "off" and timing.warmup_calls and timing.compile_seconds is None:
        timing = msgspec.structs.replace(timing, compile_seconds=timing.warmup_calls[0])
    return CaptureMetadata(
        environment=msgspec.convert(environment(), Environment),
        device=msgspec.convert(device_info(device), DeviceInfo),
        dtype=dtype,
        model=settings.model,
        model_source=loaded.source if loaded is not None else None,
        weights=getattr(loaded, "weights", None),
        pipeline_class=type(pipeline).__name__ if pipeline is not None else None,
        components=components,
        settings=msgspec.convert(
            {key: value for key, value in settings.as_dict().items() if key != "dtypes"}, RunSettings
        ),
        seed=settings.seed,
        precision=precision_settings(),
        attention_processors=attention_processors(pipeline) if pipeline is not None else {},
        timing_seconds=timing,
        profiler=profiler,
        files=files,
        notes=[*notes, RANDOM_WEIGHTS_NOTE] if getattr(loaded, "weights", None) == "random" else notes,
        status=status,
        memory=memory,
    )
