"""Hostile trace files: deep nesting, huge numbers, invalid UTF-8, files that are not files, decompression bombs.

Each row of a table builds one input and says how profkit must answer it: the exit code and the start of the first
stderr line (``profkit: error: ...`` for a refusal), or, for inputs profkit reads anyway, the note it leaves.
Refusals are checked in-process (fast) and, once per kind of case, through the CLI (``slow``): exit code, exactly
one error line, no traceback, bounded time.
"""

from __future__ import annotations

import gzip
import os
import socket
import subprocess
import sys
import threading
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from profkit.errors import ProfkitError
from profkit.jsonio import MAX_INPUT_ENV, max_input_bytes, read_bytes, read_json
from profkit.parsers import detect_format, load_trace
from tests.conftest import run_cli
from tests.tracebuilder import diffusion_trace

BIG = 2**70
DEEP = 5000  # past msgspec's recursion limit and orjson's depth limit (1024)


def _trace_bytes(edit: Callable[[dict[str, Any]], None] = lambda doc: None, **replace: bytes) -> bytes:
    """A small valid trace, edited as a document, then with placeholder strings replaced by raw bytes."""
    document = diffusion_trace(steps=3).document()
    edit(document)
    raw = orjson.dumps(document)
    for placeholder, value in replace.items():
        raw = raw.replace(orjson.dumps(placeholder), value)
    return raw


def _nested(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


def _kernel(doc: dict[str, Any]) -> dict[str, Any]:
    return next(e for e in doc["traceEvents"] if e.get("cat") == "kernel")


def _set_arg(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda doc: _kernel(doc)["args"].__setitem__(key, value)


def _set_field(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda doc: _kernel(doc).__setitem__(key, value)


def _tolerant(edit: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    """The edit, after a first event that is not an object: the typed decoder gives up, orjson reads the file."""

    def both(doc: dict[str, Any]) -> None:
        edit(doc)
        doc["traceEvents"].insert(0, 5)

    return both


def write(name: str, raw: bytes) -> Callable[[Path], Path]:
    def build(folder: Path) -> Path:
        path = folder / name
        path.write_bytes(raw)
        return path

    return build


def fifo(name: str) -> Callable[[Path], Path]:
    def build(folder: Path) -> Path:
        os.mkfifo(folder / name)
        return folder / name

    return build


def unix_socket(folder: Path) -> Path:
    cwd = Path.cwd()
    os.chdir(folder)  # a socket path is limited to ~100 bytes: bind by a short relative name
    try:
        server = socket.socket(socket.AF_UNIX)
        server.bind("trace.json")
        server.close()
    finally:
        os.chdir(cwd)
    return folder / "trace.json"


def device(path: str) -> Callable[[Path], Path]:
    return lambda folder: Path(path)


def directory(folder: Path) -> Path:
    (folder / "dir.json").mkdir()
    return folder / "dir.json"


def gzip_bomb(name: str, inflated: int) -> Callable[[Path], Path]:
    """One JSON string of ``inflated`` bytes, gzipped in streaming chunks (a few hundred KB on disk)."""

    def build(folder: Path) -> Path:
        compressor, chunk = zlib.compressobj(9, wbits=31), b"a" * (1 << 20)
        with (folder / name).open("wb") as out:
            out.write(compressor.compress(b'{"traceEvents": "'))
            for _ in range(inflated >> 20):
                out.write(compressor.compress(chunk))
            out.write(compressor.compress(b'"}') + compressor.flush())
        return folder / name

    return build


LIMIT = "1M"  # the input size limit the size rows run under

# ---------------------------------------------------------------- inputs profkit refuses: one line, exit 2

#: (build, expected exit code, expected start of the error message; {path} is the input)
REFUSED = [
    pytest.param(
        write("t.json", _trace_bytes(_set_arg("x", "DEEP"), DEEP=_nested(DEEP))),
        2,
        "{path}: not a trace: its JSON is nested deeper than profkit reads",
        id="nesting-in-args",
    ),
    pytest.param(
        write(
            "t.json", _trace_bytes(lambda d: d.__setitem__("deviceProperties", "DEEP"), DEEP=b"[" * DEEP + b"]" * DEEP)
        ),
        2,
        "{path}: not a trace: its JSON is nested deeper than profkit reads",
        id="nesting-in-deviceProperties",
    ),
    pytest.param(
        write("t.json", _trace_bytes(lambda d: d.__setitem__("other", "DEEP"), DEEP=_nested(100_000))),
        2,
        "{path}: not a trace: its JSON is nested deeper than profkit reads",
        id="nesting-in-unknown-field",
    ),
    pytest.param(
        write("t.json", _trace_bytes(_tolerant(_set_arg("x", "DEEP")), DEEP=_nested(DEEP))),
        2,
        "{path}: not a trace: its JSON is nested deeper than profkit reads",
        id="nesting-in-args-tolerant",
    ),
    pytest.param(
        write("t.json", _trace_bytes(_set_field("ts", "HUGE"), HUGE=b"1" + b"0" * 400)),
        2,
        "{path}: not valid JSON (number is infinity",
        id="number-beyond-double",
    ),
    pytest.param(
        write("t.json", b'{"traceEvents": "' + b"a" * 100_000 + b'"}'),
        2,
        "{path}: 'traceEvents' is not an array",
        id="events-one-string",
    ),
    pytest.param(fifo("t.json"), 2, "{path}: is a named pipe (FIFO), not a regular file", id="fifo"),
    pytest.param(fifo("t.sqlite"), 2, "{path}: is a named pipe (FIFO), not a regular file", id="fifo-sqlite"),
    pytest.param(fifo("t.nsys-rep"), 2, "{path}: is a named pipe (FIFO), not a regular file", id="fifo-nsys-rep"),
    pytest.param(unix_socket, 2, "{path}: is a socket, not a regular file", id="socket"),
    pytest.param(device("/dev/zero"), 2, "/dev/zero: is a character device, not a regular file", id="dev-zero"),
    pytest.param(device("/dev/null"), 2, "/dev/null: is a character device, not a regular file", id="dev-null"),
    pytest.param(directory, 2, "{path}: is a directory", id="directory"),
    pytest.param(
        gzip_bomb("t.json.gz", 20 << 20),
        2,
        "{path}: inflates to more than the 1.0 MiB profkit reads from one file (set PROFKIT_MAX_TRACE_BYTES",
        id="gzip-bomb",
    ),
    pytest.param(
        write("t.json", b" " * (2 << 20) + _trace_bytes()),
        2,
        "{path}: holds more than the 1.0 MiB profkit reads from one file (set PROFKIT_MAX_TRACE_BYTES",
        id="file-over-limit",
    ),
]


def _bounded(call: Callable[[], Any], seconds: float = 20) -> Any:
    """``call()`` in a daemon thread: a call that blocks (a FIFO read) fails the test instead of hanging it."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = call()
        except BaseException as error:  # handed back to the test
            outcome["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds} s"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


@pytest.mark.parametrize(("build", "exit_code", "message"), REFUSED)
def test_refused_in_process(tmp_path, monkeypatch, build, exit_code, message):
    monkeypatch.setenv(MAX_INPUT_ENV, LIMIT)
    path = build(tmp_path)
    with pytest.raises(ProfkitError) as caught:
        _bounded(lambda: load_trace(path))
    assert caught.value.exit_code == exit_code
    assert str(caught.value).startswith(message.format(path=path))


CLI_ROWS = ["nesting-in-args", "nesting-in-unknown-field", "number-beyond-double", "fifo", "fifo-nsys-rep"]
CLI_ROWS += ["socket", "dev-zero", "directory", "gzip-bomb", "file-over-limit"]


def _cli_refused(argv: list[str], tmp_path: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "profkit", *argv],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=timeout,  # a FIFO read that blocks fails here instead of hanging the suite
        env={**os.environ, "COLUMNS": "200", MAX_INPUT_ENV: LIMIT},
    )
    return result


@pytest.mark.slow
@pytest.mark.parametrize(("build", "exit_code", "message"), [row for row in REFUSED if row.id in CLI_ROWS])
def test_refused_by_the_cli_in_one_line(tmp_path, build, exit_code, message):
    path = build(tmp_path)
    result = _cli_refused(["analyze", str(path), "--out", str(tmp_path / "report.html")], tmp_path)
    assert result.returncode == exit_code, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len([line for line in lines if line.startswith("profkit: error:")]) == 1, result.stderr
    assert lines[0].startswith("profkit: error: " + message.format(path=path)), result.stderr
    assert not (tmp_path / "report.html").exists()


@pytest.mark.slow
def test_compare_refuses_a_fifo_in_one_line(tmp_path):
    good = diffusion_trace(steps=3).write(tmp_path / "good.json")
    path = fifo("fifo.json")(tmp_path)
    result = _cli_refused(["compare", str(good), str(path), "--out", str(tmp_path / "cmp.html")], tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"profkit: error: {path}: is a named pipe (FIFO), not a regular file")


# ---------------------------------------------------------------- inputs profkit reads anyway, with a note

#: (build, what the parsed trace must show)
READ = [
    pytest.param(
        write("t.json", _trace_bytes(_set_field("name", "BAD"), BAD=b'"gemm\xff\xfe\xed\xa0\x80"')),
        lambda t: "gemm" + "\ufffd" * 5 in set(t.kernels["name"]) and t.info.decoder == "typed",
        "replaced 5 invalid UTF-8 sequences in strings with U+FFFD",
        id="invalid-utf8-name",
    ),
    pytest.param(
        write("t.json", _trace_bytes(_tolerant(_set_field("name", "BAD")), BAD=b'"gemm\xff"')),
        lambda t: "gemm\ufffd" in set(t.kernels["name"]) and t.info.decoder == "tolerant",
        "replaced 1 invalid UTF-8 sequences in strings with U+FFFD",
        id="invalid-utf8-name-tolerant",
    ),
    pytest.param(
        write("t.json", _trace_bytes(_set_field("ts", "HUGE"), HUGE=b"%d" % BIG)),
        lambda t: t.info.skipped_events == {"missing or bad ts": 1},
        "skipped 1 unusable events (1 missing or bad ts)",
        id="ts-2**70",
    ),
    pytest.param(
        write("t.json", _trace_bytes(_tolerant(_set_field("dur", "HUGE")), HUGE=b"%d" % BIG)),
        lambda t: t.info.skipped_events == {"not an object": 1, "missing or bad dur": 1},
        "skipped 2 unusable events",
        id="dur-2**70-tolerant",
    ),
    pytest.param(
        write("t.json", _trace_bytes(_set_arg("correlation", "HUGE"), HUGE=b"%d" % BIG)),
        lambda t: (t.kernels["correlation"] == -1).sum() == 1,
        None,
        id="correlation-2**70",
    ),
    pytest.param(
        write("t.json", _trace_bytes(_set_arg("device", "HUGE"), HUGE=b"-%d" % BIG)),
        lambda t: len(t.kernels) == 5 and (t.kernels["device"] == 0).all(),  # the event's pid row instead
        None,
        id="device-minus-2**70",
    ),
    pytest.param(
        write("t.json", _trace_bytes(_set_arg("stream", "HUGE"), HUGE=b"%d" % BIG)),
        lambda t: len(t.kernels) == 5 and t.kernels["stream"].dtype == "int64",
        None,
        id="stream-2**70",
    ),
    pytest.param(
        write("t.json", _trace_bytes(_set_field("pid", "HUGE"), HUGE=b"%d" % BIG)),
        lambda t: len(t.kernels) == 5,
        None,
        id="pid-2**70",
    ),
    pytest.param(
        write(
            "t.json",
            _trace_bytes(lambda d: d["deviceProperties"][0].__setitem__("x", "DEEP"), DEEP=b"[" * 900 + b"]" * 900),
        ),
        lambda t: t.info.devices == [{"id": 0, "name": "NVIDIA H100 80GB HBM3"}],  # only its shallow values
        None,
        id="nesting-900-in-deviceProperties",
    ),
]


@pytest.mark.parametrize(("build", "check", "note"), READ)
def test_read_with_a_note(tmp_path, build, check, note):
    tables = load_trace(build(tmp_path))
    assert check(tables)
    if note is not None:
        assert any(warning.startswith(note) for warning in tables.info.warnings), tables.info.warnings


@pytest.mark.slow
def test_invalid_utf8_is_noted_in_the_report(tmp_path):
    path = write("t.json", _trace_bytes(_set_field("name", "BAD"), BAD=b'"gemm\xff"'))(tmp_path)
    result = run_cli("analyze", str(path), "--json-out", str(tmp_path / "summary.json"), cwd=tmp_path, timeout=60)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    summary = orjson.loads((tmp_path / "summary.json").read_bytes())
    assert "replaced 1 invalid UTF-8 sequences in strings with U+FFFD" in orjson.dumps(summary).decode()


# ---------------------------------------------------------------- the size limit


def test_the_size_limit_reads_its_setting(monkeypatch):
    monkeypatch.setenv(MAX_INPUT_ENV, "64M")
    assert max_input_bytes() == 64 << 20
    monkeypatch.setenv(MAX_INPUT_ENV, "1000")
    assert max_input_bytes() == 1000
    monkeypatch.delenv(MAX_INPUT_ENV)
    assert 1 << 30 <= max_input_bytes() <= 8 << 30
    for bad in ("lots", "-1", "0", "1e999G"):
        monkeypatch.setenv(MAX_INPUT_ENV, bad)
        with pytest.raises(ProfkitError, match="PROFKIT_MAX_TRACE_BYTES must be a positive number of bytes"):
            max_input_bytes()


def test_the_limit_is_exact_and_raised_by_the_override(tmp_path, monkeypatch):
    data = b'{"kind": "x", "pad": "' + b"a" * 1000 + b'"}'
    plain, packed = tmp_path / "d.json", tmp_path / "d.json.gz"
    plain.write_bytes(data)
    packed.write_bytes(gzip.compress(data[:500]) + gzip.compress(data[500:]))  # two members
    for path in (plain, packed):
        assert read_bytes(path, limit=len(data)) == data
        with pytest.raises(ProfkitError, match="more than the 1023 bytes profkit reads"):
            read_bytes(path, limit=len(data) - 1)
    monkeypatch.setenv(MAX_INPUT_ENV, str(len(data) - 1))
    with pytest.raises(ProfkitError, match="set PROFKIT_MAX_TRACE_BYTES to raise the limit"):
        read_json(packed)
    monkeypatch.setenv(MAX_INPUT_ENV, "1K")
    assert read_json(packed)["kind"] == "x"


def test_format_detection_never_opens_what_is_not_a_file(tmp_path):
    path = fifo("t.nsys-rep")(tmp_path)
    with pytest.raises(ProfkitError, match="is a named pipe"):
        _bounded(lambda: detect_format(path))
    assert _bounded(lambda: read_bytes(Path("/proc/self/status"))).startswith(b"Name:")  # size unknown up front


_PEAK_RSS = """
import sys
from pathlib import Path
from profkit.errors import ProfkitError
from profkit.jsonio import read_bytes

def peak_mb():  # this process's own peak RSS (getrusage's ru_maxrss keeps the forking parent's peak across exec)
    line = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:"))
    return int(line.split()[1]) // 1024

before = peak_mb()
try:
    read_bytes(Path(sys.argv[1]))
except ProfkitError as error:
    print(error, file=sys.stderr)
print(peak_mb() - before)
"""


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the peak RSS from /proc")
def test_a_gzip_bomb_stops_at_the_limit_in_memory(tmp_path):
    """200 MB of JSON string against a 50 MB limit: refused without holding much more than the limit."""
    path = gzip_bomb("bomb.json.gz", 200 << 20)(tmp_path)
    assert path.stat().st_size < 1 << 20
    result = subprocess.run(
        [sys.executable, "-c", _PEAK_RSS, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, MAX_INPUT_ENV: "50M"},
    )
    assert result.returncode == 0, result.stderr
    assert "inflates to more than the 50.0 MiB" in result.stderr
    assert 40 <= int(result.stdout) < 100, f"peak RSS grew by {result.stdout.strip()} MB"  # the limit, not more


def test_a_price_table_that_is_not_a_file_is_refused(tmp_path):
    from profkit.app.prices import load_prices

    path = fifo("prices.json")(tmp_path)
    with pytest.raises(ProfkitError, match=r"is a named pipe \(FIFO\), not a regular file: expected a price table"):
        _bounded(lambda: load_prices(path))
