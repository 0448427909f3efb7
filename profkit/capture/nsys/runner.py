"""Capture under Nsight Systems: the pipeline runs in a child process under ``nsys profile``.

The child (:mod:`profkit.capture.nsys.child`) loads the pipeline, runs the warm-up calls without
instrumentation, then one call with profkit's NVTX ranges (no torch.profiler). The parent turns what
nsys left into ``<run>.nsys-rep`` (importing a ``.qdstrm`` with ``QdstrmImporter`` where this nsys
does not) and exports ``<run>.sqlite``, which :mod:`profkit.parsers.nsys` reads. An interrupted capture keeps the
report nsys wrote and the child's metadata, marked interrupted (:mod:`profkit.capture.partial`).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import msgspec

from profkit.capture.nsys.tool import NsysTool, export_sqlite, finish_report
from profkit.capture.partial import RunState
from profkit.capture.progress import Progress
from profkit.capture.run import RunRecord, prepare_run_folder, run_folder
from profkit.capture.settings import CaptureSettings
from profkit.errors import EXIT_RUN_FAILED, Interrupted, ProfkitError, SettingError
from profkit.jsonio import write_json
from profkit.model.capture import IMAGES_DIR, METADATA_FILE, CaptureMetadata, ProfilerInfo, RunFiles

REQUEST_FILE = "nsys-request.json"
STEP_MARKER = "@@profkit-step"


def count_profkit_ranges(sqlite_path: Path) -> int:
    with sqlite3.connect(f"file:{sqlite_path}?mode=ro", uri=True) as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "NVTX_EVENTS" not in tables:
            return 0
        return connection.execute(
            "SELECT count(*) FROM NVTX_EVENTS e LEFT JOIN StringIds s ON e.textId = s.id "
            "WHERE e.eventType IN (59, 60) AND coalesce(e.text, s.value) LIKE 'profkit/%'"
        ).fetchone()[0]


def _nvtx_version() -> str:
    try:
        from importlib.metadata import version

        return version("nvtx")
    except Exception:
        return "not installed"


_SHORT_OPTIONS = {"-t": "--trace", "-s": "--sample", "-o": "--output", "-f": "--force-overwrite"}


def _option_names(args: list[str]) -> set[str]:
    names = set()
    for arg in args:
        if arg.startswith("-"):
            name = arg.split("=", 1)[0]
            names.add(_SHORT_OPTIONS.get(name, name))
    return names


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def nsys_command(tool: NsysTool, base: Path, request: Path, device: str, extra_args: list[str]) -> list[str]:
    """``nsys profile`` with profkit's defaults; an option given in ``extra_args`` replaces its default."""
    given = _option_names(extra_args)
    if "--output" in given:
        raise SettingError(
            "nsys_args", "cannot set --output/-o: profkit names the report after the run (use {out})", ("out",)
        )
    cuda = device.startswith("cuda")
    defaults = {
        "--trace": "cuda,nvtx,osrt" if cuda else "nvtx,osrt",
        "--sample": "none",
        "--cpuctxsw": "none",
        "--force-overwrite": "true",
    }
    if cuda:
        defaults["--cuda-graph-trace"] = "node"
    command = [str(tool.nsys), "profile"]
    command += [f"{name}={value}" for name, value in defaults.items() if name not in given]
    command += ["-o", str(base), *extra_args]
    return [*command, sys.executable, "-m", "profkit.capture.nsys.child", str(request)]


def add_nsys_outputs(folder: Path, trace: Path, report: Path, ranges: int) -> CaptureMetadata:
    """Add what only the parent knows (exported trace, report, ranges nsys kept) to the child's metadata."""
    path = folder / METADATA_FILE
    written = CaptureMetadata.load(path, "metadata file")
    profiler = written.profiler and msgspec.structs.replace(written.profiler, profkit_ranges_recorded=ranges)
    metadata = msgspec.structs.replace(
        written,
        files=msgspec.structs.replace(written.files, trace=trace.name, nsys_report=report.name),
        profiler=profiler,
    )
    metadata.write(path)
    return metadata


def capture_one_nsys(
    settings: CaptureSettings,
    dtype: str,
    device: str,
    progress: Progress,
    tool: NsysTool,
    extra_args: list[str],
) -> RunRecord:
    """Capture one run under ``nsys profile``.

    Interrupted (Ctrl-C or SIGTERM here): nsys is told to stop (SIGINT, which it forwards to the child, whose
    metadata keeps its warm-up times, marked interrupted), the report it writes is kept (unexported), and
    :class:`~profkit.errors.Interrupted` goes up. A failure marks the run folder failed.
    """
    folder = run_folder(settings, dtype)
    prepare_run_folder(folder, settings.force)
    state = RunState(settings, dtype, device, folder, phase="starting nsys", adopt_written=True).start()
    try:
        return _capture(state, progress, tool, extra_args)
    except KeyboardInterrupt as interrupt:
        raise state.interrupted(interrupt) from None
    except Interrupted:
        raise
    except Exception as error:
        state.failed(error)
        raise


def _capture(state: RunState, progress: Progress, tool: NsysTool, extra_args: list[str]) -> RunRecord:
    settings, dtype, device, folder = state.settings, state.dtype, state.device, state.folder
    base = folder / folder.name
    state.profiler = ProfilerInfo(tool="nsys", nsys_version=tool.version(), nsys_args=extra_args)
    request = write_json(
        folder / REQUEST_FILE,
        {
            "settings": settings.as_dict(),
            "dtype": dtype,
            "device": device,
            "folder": str(folder),
            "nsys": {"path": str(tool.nsys), "version": state.profiler.nsys_version, "args": extra_args},
            "umask": current_umask(),  # nsys starts its target with umask 0: the child restores the user's
        },
    )
    progress.start(folder.name, settings.steps)
    progress.phase(f"warm-up ×{settings.warmup} + recording under nsys")
    command = nsys_command(tool, base, request, device, extra_args)
    try:
        # a session of its own: a terminal's Ctrl-C reaches profkit only, which stops nsys once (see _stop)
        child = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            bufsize=1,
            start_new_session=True,
        )
    except OSError as error:
        raise ProfkitError(f"cannot run {tool.nsys} ({error.strerror or error})", EXIT_RUN_FAILED) from error
    state.phase = "loading and warm-up under nsys"
    output: list[str] = []
    assert child.stdout is not None
    try:
        for line in child.stdout:
            if line.startswith(STEP_MARKER):
                state.phase = "the recorded call"
                progress.advance()
            else:
                output.append(line.rstrip())
        errors = child.stderr.read() if child.stderr else ""
        child.wait()
    except KeyboardInterrupt as interrupt:
        raise _keep_interrupted(state, child, tool, base, interrupt) from None
    failure = next(
        (line for line in reversed((errors + "\n".join(output)).splitlines()) if "profkit: error:" in line), None
    )
    if child.returncode != 0 or failure:
        detail = failure or " | ".join([line for line in errors.strip().splitlines() if line.strip()][-3:])
        raise ProfkitError(f"the capture under nsys failed (exit {child.returncode}): {detail}", EXIT_RUN_FAILED)
    state.phase = "importing and exporting the nsys report"
    progress.phase("importing and exporting the nsys report")
    report = finish_report(tool, base)
    sqlite_path = export_sqlite(tool, report, base.with_name(base.name + ".sqlite"))
    ranges = count_profkit_ranges(sqlite_path)
    if ranges == 0:
        raise ProfkitError(
            f"nsys recorded no profkit ranges in {report.name}. Likely cause: python nvtx {_nvtx_version()} emits "
            "ranges that older nsys drops silently (nsys 2022.4 needs nvtx 0.2.10 or 0.2.11: "
            "pip install 'nvtx>=0.2.10,<0.2.12'), or {nsys_args} turned NVTX tracing off",
            EXIT_RUN_FAILED,
            ("nsys_args",),
        )
    metadata = add_nsys_outputs(folder, sqlite_path, report, ranges)
    (folder / REQUEST_FILE).unlink(missing_ok=True)
    images = sorted((folder / IMAGES_DIR).glob("*.png"))
    return RunRecord(
        dtype, folder, sqlite_path, folder / METADATA_FILE, images, list(metadata.notes), settings.knobs, settings.steps
    )


#: Seconds nsys gets to stop the child and write its report after profkit was interrupted; then it is killed.
NSYS_STOP_S = 60.0


def _stop(child: subprocess.Popen[str], grace: float = NSYS_STOP_S) -> None:
    """Ask nsys to end the session (SIGINT: it forwards it to the child and writes what it recorded); kill it after
    ``grace`` seconds or at a second interruption."""
    try:
        if child.poll() is None:
            child.send_signal(signal.SIGINT)
        child.communicate(timeout=grace)  # drains the pipes, so nsys never blocks writing to them
    except (subprocess.TimeoutExpired, KeyboardInterrupt):
        child.kill()
        child.communicate()


def _keep_interrupted(
    state: RunState, child: subprocess.Popen[str], tool: NsysTool, base: Path, interrupt: KeyboardInterrupt
) -> Interrupted:
    """Stop nsys, keep the report it wrote and the child's metadata, marked interrupted."""
    _stop(child)
    try:
        report = finish_report(tool, base)  # a .qdstrm is imported: the report opens in nsys and profkit
    except ProfkitError as error:
        state.notes.append(f"no nsys report kept: {error}")
    else:
        state.files = RunFiles(images=[], nsys_report=report.name)
        state.notes.append(f"{report.name} holds what nsys recorded; profkit analyze exports it")
    (state.folder / REQUEST_FILE).unlink(missing_ok=True)
    return state.interrupted(interrupt)
