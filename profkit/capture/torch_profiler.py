"""Capture one run under torch.profiler (CPU + CUDA activities, record_shapes) with profkit's ranges."""

from __future__ import annotations

from profkit.capture.instrument import instrument
from profkit.capture.progress import Progress
from profkit.capture.run import (
    RunRecord,
    native_stdout_to_stderr,
    platform_notes,
    prepare_run_folder,
    run_folder,
    run_metadata,
    save_images,
    timed_call,
)
from profkit.capture.settings import CaptureSettings
from profkit.model.capture import METADATA_FILE, TRACE_FILE, ProfilerInfo, RunFiles, Timing
from profkit.pipelines.loading import load_pipeline


def capture_one(settings: CaptureSettings, dtype: str, device: str, progress: Progress) -> RunRecord:
    """Load, warm up, and record one pipeline call of ``dtype`` under torch.profiler."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    folder = run_folder(settings, dtype)
    prepare_run_folder(folder, settings.force)
    progress.start(folder.name, settings.steps * (settings.warmup + 1))
    progress.phase("loading pipeline")
    loaded = load_pipeline(settings.model, dtype, device)
    pipeline = loaded.pipeline
    instrumentation = instrument(pipeline, on_step=lambda _n: progress.advance())
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
        timing=Timing(
            load=loaded.load_seconds, warmup_calls=warmup_seconds, recorded_call_under_profiler=recorded_seconds
        ),
        profiler=ProfilerInfo(tool="torch.profiler", torch_version=str(torch.__version__), record_shapes=True),
        files=RunFiles(trace=TRACE_FILE, images=[str(p.relative_to(folder)) for p in images]),
        notes=notes,
    )
    metadata_path = metadata.write(folder / METADATA_FILE)
    return RunRecord(dtype, folder, trace_path, metadata_path, images, notes)
