"""The process that ``nsys profile`` runs: load, warm up (not instrumented), record one call with NVTX.

Usage (by :mod:`profkit.capture.nsys.runner` only): ``python -m profkit.capture.nsys.child REQUEST.json``.
Prints one :data:`~profkit.capture.nsys.runner.STEP_MARKER` line per recorded step; failures are one
``profkit: error:`` line and exit status 3; an interruption (SIGINT, which nsys forwards, or SIGTERM) keeps the
metadata marked interrupted, one line, exit 130 / 143.
"""

from __future__ import annotations

import sys
from pathlib import Path

from profkit.capture.instrument import instrument
from profkit.capture.nsys.runner import STEP_MARKER
from profkit.capture.partial import RunState
from profkit.capture.run import load_prepared, platform_notes, run_metadata, save_images, timed_call
from profkit.capture.settings import CaptureSettings
from profkit.errors import EXIT_RUN_FAILED, Interrupted, ProfkitError
from profkit.interrupts import sigterm_as_interrupt
from profkit.jsonio import read_json, set_umask
from profkit.model.capture import METADATA_FILE, ProfilerInfo, RunFiles, Timing


def settings_from(data: dict) -> CaptureSettings:
    return CaptureSettings(
        **{
            **data,
            "dtypes": tuple(data["dtypes"]),
            "prompts": tuple(data["prompts"]),
            "nsys_args": tuple(data.get("nsys_args", ())),
            "out": Path(data["out"]),
        }
    )


def record(request_path: Path) -> None:
    """Load, warm up and record as the request says; Ctrl-C (nsys forwards its SIGINT here) or SIGTERM keeps what
    was measured in the metadata, marked interrupted, and raises :class:`~profkit.errors.Interrupted`."""
    request = read_json(request_path, "capture request")
    if isinstance(request.get("umask"), int):
        set_umask(request["umask"])  # files and folders as the user's own umask makes them
    settings = settings_from(request["settings"])
    dtype, device, folder = request["dtype"], request["device"], Path(request["folder"])
    nsys = request["nsys"]
    state = RunState(settings, dtype, device, folder)  # the parent marked the folder "running"
    state.profiler = ProfilerInfo(tool="nsys", nsys_version=nsys["version"], nsys_args=nsys["args"])
    try:
        _record(state)
    except KeyboardInterrupt as interrupt:
        raise state.interrupted(interrupt) from None


def _record(state: RunState) -> None:
    settings, dtype, device, folder = state.settings, state.dtype, state.device, state.folder
    loaded = state.loaded = load_prepared(settings, dtype, device)  # with the run's knobs
    pipeline = loaded.pipeline
    warmup_seconds = state.warmup_seconds
    for index in range(settings.warmup):  # outside the instrumentation: no profkit ranges in the report
        state.phase = f"warm-up call {index + 1} of {settings.warmup}"
        warmup_seconds.append(timed_call(pipeline, settings, device)[1])

    def step(_number: int) -> None:
        print(STEP_MARKER, flush=True)

    state.phase = "the recorded call"
    with instrument(pipeline, on_step=step, use_torch=False) as instrumentation:
        state.components = instrumentation.components
        output, recorded_seconds = timed_call(pipeline, settings, device)
    images = save_images(output, folder)
    metadata = run_metadata(
        settings,
        dtype,
        device,
        loaded,
        pipeline,
        instrumentation.components,
        timing=Timing(load=loaded.load_seconds, warmup_calls=warmup_seconds, recorded_call_under_nsys=recorded_seconds),
        profiler=state.profiler,
        files=RunFiles(images=[str(p.relative_to(folder)) for p in images]),
        notes=platform_notes(device, dtype),
    )
    metadata.write(folder / METADATA_FILE)


def main() -> int:
    try:
        with sigterm_as_interrupt():
            record(Path(sys.argv[1]))
    except ProfkitError as error:
        print(f"profkit: error: {error}", file=sys.stderr, flush=True)
        return error.exit_code
    except KeyboardInterrupt as interrupt:  # before the run started: nothing measured
        stopped = Interrupted("before the pipeline was loaded: nothing measured", interrupt)
        print(f"profkit: error: {stopped}", file=sys.stderr, flush=True)
        return stopped.exit_code
    except Exception as error:
        print(f"profkit: error: {type(error).__name__}: {error}", file=sys.stderr, flush=True)
        return EXIT_RUN_FAILED
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
