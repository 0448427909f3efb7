"""Capture one run under torch.profiler (CPU + CUDA activities, record_shapes) with profkit's ranges.

Ctrl-C or SIGTERM keeps what was measured (:mod:`profkit.capture.partial`): the metadata marked interrupted
and, when the recorded call had started, the trace of the steps the profiler saw.
"""

from __future__ import annotations

from typing import Any

from profkit.capture.instrument import StageMemoryTracker, instrument
from profkit.capture.native_output import profiler_chatter_dropped
from profkit.capture.partial import RunState
from profkit.capture.progress import Progress
from profkit.capture.run import (
    RunRecord,
    load_prepared,
    native_stdout_to_stderr,
    platform_notes,
    prepare_run_folder,
    run_folder,
    run_metadata,
    save_images,
    timed_call,
)
from profkit.capture.settings import CaptureSettings
from profkit.model.capture import (
    METADATA_FILE,
    NOT_CAPTURED_CPU,
    TRACE_FILE,
    ProfilerInfo,
    RunFiles,
    StageMemory,
    Timing,
)


def capture_one(settings: CaptureSettings, dtype: str, device: str, progress: Progress) -> RunRecord:
    """Load, warm up, and record one pipeline call of ``dtype`` under torch.profiler.

    Interrupted: raises :class:`~profkit.errors.Interrupted` after keeping what was measured; a crash marks the
    run folder failed and goes up.
    """
    folder = run_folder(settings, dtype)
    prepare_run_folder(folder, settings.force)
    state = RunState(settings, dtype, device, folder).start()
    try:
        return _capture(state, progress)
    except KeyboardInterrupt as interrupt:
        raise state.interrupted(interrupt) from None
    except Exception as error:
        state.failed(error)
        raise


def _capture(state: RunState, progress: Progress) -> RunRecord:
    import torch
    from torch.profiler import ProfilerActivity, profile

    settings, dtype, device, folder = state.settings, state.dtype, state.device, state.folder
    progress.start(folder.name, settings.steps)  # the steps of the recorded call; warm-up calls are phases
    progress.phase("loading pipeline")
    loaded = state.loaded = load_prepared(settings, dtype, device)
    pipeline = loaded.pipeline
    recording = [False]
    warmup_label = [""]

    def on_step(done: int) -> None:  # the bar counts the recorded call; a warm-up call shows its steps in its phase
        if recording[0]:
            progress.advance()
        elif warmup_label[0]:
            progress.phase(f"{warmup_label[0]} · step {done}/{settings.steps}")

    memory = StageMemoryTracker.for_device(device)  # the latest call's peaks (the unprofiled twin of the recorded one)
    instrumentation = instrument(pipeline, on_step=on_step, on_range=memory)
    state.components = instrumentation.components
    warmup_seconds = state.warmup_seconds
    with instrumentation:
        for index in range(settings.warmup):
            warmup_label[0] = f"warm-up {index + 1}/{settings.warmup}"
            progress.phase(warmup_label[0])
            state.phase = f"warm-up call {index + 1} of {settings.warmup}"
            warmup_seconds.append(timed_call(pipeline, settings, device)[1])
        activities = [ProfilerActivity.CPU]
        if device.startswith("cuda"):
            activities.append(ProfilerActivity.CUDA)
        progress.phase("recording")
        state.phase = "the recorded call"
        profiler_info = ProfilerInfo(tool="torch.profiler", torch_version=str(torch.__version__), record_shapes=True)
        state.profiler = profiler_info
        profiler = profile(activities=activities, record_shapes=True)
        recording[0], warmup_label[0] = True, ""
        try:
            with profiler_chatter_dropped():
                profiler.start()
            try:
                with native_stdout_to_stderr():
                    output, recorded_seconds = timed_call(pipeline, settings, device)
            finally:
                with profiler_chatter_dropped():
                    profiler.stop()
        except KeyboardInterrupt:
            _keep_partial_trace(profiler, state)
            raise
        recording[0] = False
        progress.phase("writing trace")
        state.phase = "writing the trace"
        trace_path = folder / TRACE_FILE
        profiler.export_chrome_trace(str(trace_path))
        state.files = RunFiles(trace=TRACE_FILE, images=[])
        progress.phase("unprofiled reference call")
        state.phase = "the unprofiled reference call"
        unprofiled_seconds = timed_call(pipeline, settings, device)[1]
    state.phase = "saving images and metadata"
    images = save_images(output, folder)
    if settings.record_latents:  # an extra call outside the profiler: the copies must not distort the trace
        from profkit.capture.latents import record_run_latents
        from profkit.capture.run import call_kwargs

        record_run_latents(pipeline, call_kwargs(settings, device, settings.seed), folder, settings.seed)
    notes = [*platform_notes(device, dtype), profiler_overhead_note(recorded_seconds, unprofiled_seconds)]
    metadata = run_metadata(
        settings,
        dtype,
        device,
        loaded,
        pipeline,
        instrumentation.components,
        timing=Timing(
            load=loaded.load_seconds,
            warmup_calls=warmup_seconds,
            recorded_call_under_profiler=recorded_seconds,
            unprofiled_call=unprofiled_seconds,
        ),
        profiler=profiler_info,
        files=RunFiles(trace=TRACE_FILE, images=[str(p.relative_to(folder)) for p in images]),
        notes=notes,
        memory=StageMemory(source=memory.source, peak_allocated_mb=memory.peaks_mb())
        if memory
        else StageMemory(source=NOT_CAPTURED_CPU),
    )
    metadata_path = metadata.write(folder / METADATA_FILE)
    return RunRecord(dtype, folder, trace_path, metadata_path, images, notes, settings.knobs, settings.steps)


def profiler_overhead_note(profiled_s: float, unprofiled_s: float) -> str:
    """How far torch.profiler stretched the recorded call, measured against a plain call in the same process."""
    change = profiled_s / unprofiled_s - 1 if unprofiled_s > 0 else 0.0
    return (
        f"the profiled call took {profiled_s * 1000:.1f} ms, the same call without the profiler "
        f"{unprofiled_s * 1000:.1f} ms right after it: torch.profiler made it {change:+.1%} "
        f"{'slower' if change >= 0 else 'faster (noise)'}; times in this trace carry that distortion"
    )


def _keep_partial_trace(profiler: Any, state: RunState) -> None:
    """Export what the profiler recorded before the interruption (it stopped when its block was left)."""
    try:
        profiler.export_chrome_trace(str(state.folder / TRACE_FILE))
    except Exception as error:  # the profiler had not started, or holds nothing: the metadata says so
        state.notes.append(f"no trace kept: {type(error).__name__}: {error}"[:300])
        return
    state.files = RunFiles(trace=TRACE_FILE, images=[])
