"""Interrupted runs keep what they measured: SIGINT and SIGTERM on bench and capture (torch.profiler and nsys).

The table's rows run ``profkit`` in a subprocess, wait until it is measuring (its progress display on stderr, no
fixed sleeps), send the signal, and check the exit code, the one ``profkit: error:`` line, no traceback and what
the output folder keeps. Rows that need no subprocess check the pieces in-process.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from profkit.app.bench import load_result
from profkit.cli.errors import error_line
from profkit.errors import (
    EXIT_INTERRUPTED,
    EXIT_TERMINATED,
    Interrupted,
    ProfkitError,
    Terminated,
    UnfinishedRun,
)
from profkit.interrupts import sigterm_as_interrupt
from profkit.model.capture import METADATA_FILE, TRACE_FILE, CaptureMetadata, DeviceInfo
from tests.conftest import REPO, run_cli

DEADLINE_S = 180  # for each wait; a run that hangs fails instead of blocking the suite

# ---------------------------------------------------------------- the table: built, command, signal, code, line


def _bench_kept_finished_trials(out: Path) -> None:
    result = load_result(out / "bench.json")
    assert result.status == "interrupted"
    finished = [trial for trial in result.trials() if trial.ok]
    assert 0 < len(finished) < 100000 and len(result.order) >= len(finished)
    assert (out / "bench.html").exists() and (out / "trials.csv").exists()


def _run_folder(out: Path) -> Path:
    (folder,) = [path for path in out.iterdir() if path.is_dir()]
    return folder


def _interrupted_metadata(out: Path) -> CaptureMetadata:
    metadata = CaptureMetadata.load(_run_folder(out) / METADATA_FILE)
    assert metadata.status == "interrupted"
    assert metadata.settings is not None and metadata.settings.steps > 0  # the settings are kept
    assert any(note.startswith("interrupted (") for note in metadata.notes)
    return metadata


def _capture_kept_warmup_state(out: Path) -> None:
    metadata = _interrupted_metadata(out)
    assert metadata.timing_seconds.load is not None and metadata.timing_seconds.warmup_calls == []
    assert not (_run_folder(out) / TRACE_FILE).exists()


def _capture_kept_partial_trace(out: Path) -> None:
    metadata = _interrupted_metadata(out)
    assert metadata.files.trace == TRACE_FILE and metadata.timing_seconds.warmup_calls == []
    # the steps recorded before the signal are analyzable, and the HTML report says the run is partial
    report = run_cli("analyze", str(_run_folder(out)), "--out", str(out / "partial.html"))
    assert report.returncode == 0, report.stderr
    steps = re.search(r"(\d+) steps, median", report.stdout)
    assert steps and 1 <= int(steps.group(1)) < 400, report.stdout
    html = (out / "partial.html").read_text(encoding="utf-8")
    assert "interrupted (SIGTERM) during the recorded call: the run is partial" in html


def _nsys_kept_partial_report(out: Path) -> None:
    metadata = _interrupted_metadata(out)
    assert metadata.profiler is not None and metadata.profiler.tool == "nsys"
    assert metadata.files.nsys_report and (_run_folder(out) / metadata.files.nsys_report).is_file()
    assert not list(_run_folder(out).glob("*.sqlite"))  # not exported on the way out; analyze exports it


def _nsys_kept_warmup_state(out: Path) -> None:
    metadata = _interrupted_metadata(out)
    assert metadata.profiler is not None and metadata.profiler.tool == "nsys"


BENCH = ["bench", "--steps", "2", "--trials", "100000", "--device", "cpu"]
TRIAL_DONE = r"\b([2-9]|\d{2,})/100001\b"  # the warm-up and a trial finished
CAPTURE = ["capture", "--steps", "400", "--device", "cpu", "--no-analyze"]
NSYS = ["capture", "--nsys", "--steps", "300", "--device", "cpu", "--no-analyze"]
needs_nsys = pytest.mark.skipif(shutil.which("nsys") is None, reason="Nsight Systems (nsys) is not installed")

INTERRUPT_CASES = [
    pytest.param(
        "bench, SIGTERM after the first trial",
        BENCH,
        TRIAL_DONE,
        signal.SIGTERM,
        EXIT_TERMINATED,
        "profkit: error: interrupted (SIGTERM): ",
        _bench_kept_finished_trials,
        id="bench-sigterm",
    ),
    pytest.param(
        "bench, Ctrl-C after the first trial",
        BENCH,
        TRIAL_DONE,
        signal.SIGINT,
        EXIT_INTERRUPTED,
        "profkit: error: interrupted (SIGINT): ",
        _bench_kept_finished_trials,
        id="bench-sigint",
    ),
    pytest.param(
        "capture, Ctrl-C during the warm-up call",
        [*CAPTURE, "--warmup", "1"],
        r"warm-up 1/1 · step ([2-9]|\d{2,})/400",
        signal.SIGINT,
        EXIT_INTERRUPTED,
        "profkit: error: interrupted (SIGINT): the fp32 run stopped during warm-up call 1 of 1",
        _capture_kept_warmup_state,
        id="capture-sigint-warmup",
    ),
    pytest.param(
        "capture, SIGTERM during the recorded call",
        [*CAPTURE, "--warmup", "0"],
        r"recording\D*\b([2-9]|\d{2,})/400 steps",  # the progress bar's glyphs may stand between
        signal.SIGTERM,
        EXIT_TERMINATED,
        "profkit: error: interrupted (SIGTERM): the fp32 run stopped during the recorded call",
        _capture_kept_partial_trace,
        id="capture-sigterm-recording",
    ),
    pytest.param(
        "capture --nsys, SIGTERM during the recorded call",
        [*NSYS, "--warmup", "0"],
        r"\b([2-9]|\d{2,})/300 steps",
        signal.SIGTERM,
        EXIT_TERMINATED,
        "profkit: error: interrupted (SIGTERM): the fp32 run stopped during the recorded call",
        _nsys_kept_partial_report,
        id="nsys-sigterm-recording",
        marks=needs_nsys,
    ),
    pytest.param(
        "capture --nsys, Ctrl-C before the recorded call",
        [*NSYS, "--warmup", "1"],
        r"warm-up ×1 \+ recording under nsys",
        signal.SIGINT,
        EXIT_INTERRUPTED,
        "profkit: error: interrupted (SIGINT): the fp32 run stopped during ",
        _nsys_kept_warmup_state,
        id="nsys-sigint-warmup",
        marks=needs_nsys,
    ),
]


def _interrupt(args: list[str], ready: str, signum: int, cwd: Path) -> tuple[int, str]:
    """Run ``profkit *args``, send ``signum`` once stderr matches ``ready``; its exit code and stderr."""
    child = subprocess.Popen(
        [sys.executable, "-m", "profkit", *args],
        stdout=subprocess.DEVNULL,  # stderr only, read by one thread, so no line can be taken by another reader
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        cwd=cwd,
        # a live progress display on stderr (as on a terminal), so the test sees when the run measures
        env={**os.environ, "COLUMNS": "200", "TTY_COMPATIBLE": "1", "TTY_INTERACTIVE": "1", "NO_COLOR": "1"},
    )
    seen: list[str] = []
    assert child.stderr is not None
    reader = threading.Thread(target=lambda: seen.extend(iter(lambda: child.stderr.read(1), "")), daemon=True)
    reader.start()
    deadline = time.monotonic() + DEADLINE_S
    try:
        while not re.search(ready, "".join(seen[-6000:])):
            assert child.poll() is None, "".join(seen)
            assert time.monotonic() < deadline, "never got going: " + "".join(seen)
            time.sleep(0.05)
        child.send_signal(signum)
        child.wait(timeout=DEADLINE_S)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    reader.join(timeout=DEADLINE_S)
    assert not reader.is_alive()
    return child.returncode, "".join(seen)


def _one_error_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    lines = [line[line.index("profkit: error:") :] for line in stderr.splitlines() if "profkit: error:" in line]
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.mark.slow
@pytest.mark.parametrize(("what", "args", "ready", "signum", "code", "first_line", "kept"), INTERRUPT_CASES)
def test_an_interrupted_run_keeps_what_it_measured(
    tmp_path: Path,
    what: str,
    args: list[str],
    ready: str,
    signum: int,
    code: int,
    first_line: str,
    kept: Callable[[Path], None],
) -> None:
    out = tmp_path / "out"
    returncode, stderr = _interrupt([*args, "--out", str(out)], ready, signum, tmp_path)
    assert returncode == code, stderr
    line = _one_error_line(stderr)
    assert line.startswith(first_line), line
    assert str(out) in line  # it says where the partial results are
    kept(out)


# ---------------------------------------------------------------- a rerun into an unfinished run folder


def _metadata(status: str) -> CaptureMetadata:
    return CaptureMetadata(device=DeviceInfo(type="cpu"), dtype="fp32", model="tiny-sd", status=status)


def _capture_settings(out: Path, **changes):
    from profkit.capture.settings import CaptureSettings

    return CaptureSettings(**{"steps": 1, "warmup": 0, "device": "cpu", "out": out, **changes})


def _unfinished_folder(out: Path, status: str) -> Path:
    folder = out / _capture_settings(out).run_name("fp32")
    folder.mkdir(parents=True)
    _metadata(status).write(folder / METADATA_FILE)
    return folder


@pytest.mark.slow
def test_a_rerun_into_an_interrupted_run_says_so_and_force_replaces_it(tmp_path: Path) -> None:
    from profkit.app.capture import run_capture

    out = tmp_path / "runs"
    folder = _unfinished_folder(out, "interrupted")
    args = ["capture", "--steps", "1", "--warmup", "0", "--device", "cpu", "--no-analyze", "--out", str(out)]
    again = run_cli(*args, timeout=120)
    assert again.returncode == 2
    assert _one_error_line(again.stderr) == (
        f"profkit: error: {folder} holds an interrupted run (kept as it was stopped): pass --force to replace it, "
        "or choose --out"
    )
    (record,) = run_capture(_capture_settings(out, force=True))
    assert record.folder == folder
    assert CaptureMetadata.load(folder / METADATA_FILE).status == "complete"
    assert "status" not in orjson.loads((folder / METADATA_FILE).read_bytes())  # complete files keep their shape


UNFINISHED_CASES = [
    pytest.param("interrupted", "an interrupted run (kept as it was stopped)", id="interrupted"),
    pytest.param("running", "an unfinished run (still running, or killed)", id="running-or-killed"),
    pytest.param("failed", "a run that failed", id="failed"),
    pytest.param(None, "an unfinished run (still running, or killed)", id="empty-folder"),
]


@pytest.mark.parametrize(("status", "holds"), UNFINISHED_CASES)
def test_an_unfinished_run_folder_is_refused_with_what_it_holds(tmp_path: Path, status: str | None, holds: str):
    from profkit.app.capture import run_capture

    out = tmp_path / "runs"
    if status is None:
        folder = out / _capture_settings(out).run_name("fp32")
        folder.mkdir(parents=True)  # a process killed before it wrote anything
    else:
        folder = _unfinished_folder(out, status)
    with pytest.raises(UnfinishedRun) as refused:
        run_capture(_capture_settings(out))
    assert error_line(refused.value) == (
        f"profkit: error: {folder} holds {holds}: pass --force to replace it, or choose --out"
    )
    assert refused.value.exit_code == 2


def test_a_complete_or_foreign_run_folder_is_refused_as_existing(tmp_path: Path) -> None:
    from profkit.app.capture import run_capture
    from profkit.capture.partial import unfinished_status

    out = tmp_path / "runs"
    folder = _unfinished_folder(out, "complete")
    assert unfinished_status(folder) is None
    with pytest.raises(ProfkitError, match="already exists") as refused:
        run_capture(_capture_settings(out))
    assert not isinstance(refused.value, UnfinishedRun)
    (folder / METADATA_FILE).write_text('{"tool": "something else"}')  # not profkit's: not called unfinished
    assert unfinished_status(folder) is None


# ---------------------------------------------------------------- the pieces, in-process


def test_sigterm_raises_terminated_inside_and_the_old_handler_comes_back() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Terminated), sigterm_as_interrupt():
        os.kill(os.getpid(), signal.SIGTERM)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # the handler raises at once: the loop never ends on its own
            time.sleep(0.01)
    assert signal.getsignal(signal.SIGTERM) is before
    assert issubclass(Terminated, KeyboardInterrupt)  # every path that keeps data on Ctrl-C keeps it on SIGTERM


@pytest.mark.parametrize(
    ("interrupt", "code", "line"),
    [
        pytest.param(KeyboardInterrupt(), 130, "profkit: error: interrupted (SIGINT): kept in x", id="sigint"),
        pytest.param(Terminated(), 143, "profkit: error: interrupted (SIGTERM): kept in x", id="sigterm"),
        pytest.param(None, 130, "profkit: error: interrupted (SIGINT): kept in x", id="unknown"),
    ],
)
def test_an_interruption_is_one_line_and_its_exit_code(interrupt: BaseException | None, code: int, line: str):
    error = Interrupted("kept in x", interrupt)
    assert (error.exit_code, error_line(error)) == (code, line)


def test_capture_metadata_writes_a_status_only_when_not_complete(tmp_path: Path) -> None:
    for status in ("interrupted", "running", "complete"):
        path = _metadata(status).write(tmp_path / f"{status}.json")
        assert CaptureMetadata.load(path).status == status
        assert ("status" in orjson.loads(path.read_bytes())) == (status != "complete")


def test_an_interruption_no_command_handled_is_one_line_not_a_silent_130() -> None:
    """Typer turns a KeyboardInterrupt inside a command into a silent exit 130; profkit's commands do not."""
    code = (
        "import sys\n"
        "import profkit.app.analyze as impl\n"
        "from profkit.cli import main\n"
        "def stop(*args, **kwargs):\n"
        "    raise KeyboardInterrupt\n"
        "impl.analyze_path = stop\n"
        "sys.argv = ['profkit', 'analyze', 'anything.json']\n"
        "main()\n"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert completed.returncode == EXIT_INTERRUPTED, completed.stderr
    assert _one_error_line(completed.stderr) == "profkit: error: interrupted (SIGINT): files written so far are kept"
