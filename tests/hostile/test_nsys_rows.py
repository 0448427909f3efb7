"""Hostile Nsight Systems input: SQLite rows of the wrong type, NULL or reversed times, repeated correlation
ids, step ranges whose names do not parse, and `.nsys-rep` files that nsys cannot read.

Every case is a row of :data:`CASES`: what is built, the command, the exit code and the start of the first
stderr line (empty: none), and the note the report must show. Bad rows are skipped and counted by reason
(``TraceInfo.skipped_events``), never matched, clamped or turned into NaN.
"""

from __future__ import annotations

import math
import os
import random
import shutil
import sqlite3
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from profkit.analysis import analyze_tables
from profkit.app.analyze import analyze_path
from profkit.errors import ProfkitError
from profkit.parsers.nsys import NVTX_RANGE_TYPES, load_nsys_sqlite
from tests.conftest import run_cli
from tests.nsysbuilder import KERNEL, MEMCPY, MEMSET, RUNTIME, SCHEMA, NsysBuilder, columns, nsys_diffusion
from tests.tracebuilder import diffusion_trace

NVTX = "NVTX_EVENTS"
REAL_NSYS = shutil.which("nsys") or next(
    (p for p in ("/usr/bin/nsys", "/usr/lib/nsight-systems/bin/nsys") if os.access(p, os.X_OK)), None
)
CLI_TIMEOUT = 60  # seconds: every case is a small file


# ---------------------------------------------------------------- what each case builds


def tampered(*edits: tuple[str, int, str, Any], base: Callable[[], NsysBuilder] = nsys_diffusion):
    """A builder of an nsys export whose cells ``(table, row, column, value)`` are overwritten."""

    def build(folder: Path) -> Path:
        builder = base()
        for table, row, column, value in edits:
            builder.set(table, row, column, value)
        return builder.write(folder / "run.sqlite", constraints=False)

    return build


def lone_range() -> NsysBuilder:
    return NsysBuilder().nvtx("profkit/pipeline", 0, 100)


def invalid_utf8(folder: Path) -> Path:
    path = nsys_diffusion().write(folder / "run.sqlite")
    with sqlite3.connect(path) as connection:  # TEXT that is not UTF-8: what broken tools write
        connection.execute(
            "UPDATE StringIds SET value = CAST(? AS TEXT) WHERE value = 'profkit/vae/decode'", (b"\xff",)
        )
    connection.close()
    return path


def step_names(folder: Path) -> Path:
    """20 denoise steps, 10 of them named so that they do not parse (``step_1x``)."""
    trace = diffusion_trace(steps=20)
    for event in trace.events:
        name = event["name"]
        if name.startswith("profkit/denoise/step_") and name.count("/") == 2 and int(name[-3:]) % 2:
            event["name"] = f"profkit/denoise/step_{int(name[-3:])}x"
    return trace.write(folder / "steps.json")


def huge_step_number(folder: Path) -> Path:
    trace = diffusion_trace(steps=2)
    extra = next(e for e in trace.events if e["name"] == "profkit/denoise/step_001")
    trace.events.append({**extra, "name": "profkit/denoise/step_" + "9" * 5000})
    return trace.write(folder / "steps.json")


def random_report(folder: Path, seed: int = 1) -> Path:
    """4 KiB of seeded noise named like a report (nsys: "Version tag does not contain a delimiter")."""
    report = folder / "run.nsys-rep"
    report.write_bytes(random.Random(seed).randbytes(4096))
    return report


def binary_version_report(folder: Path) -> Path:
    """Noise whose header nsys 2022.4 echoes back as raw, non-UTF-8 bytes ("Version number is invalid: \\x8a+...")."""
    return random_report(folder, seed=27)


def fake_nsys(folder: Path, body: str) -> Path:
    """An ``nsys`` on PATH whose ``export`` runs ``body`` (a shell snippet)."""
    tool = folder / "bin" / "nsys"
    tool.parent.mkdir(exist_ok=True)
    tool.write_text(f"#!/bin/sh\n{body}\n")
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    return tool.parent


#: what nsys 2022.4 prints (to stderr, exit 1) for an input it cannot read
UNREADABLE = 'echo "Exportation error: Version tag does not contain a delimiter." >&2; exit 1'
CRASH = "kill -SEGV $$"
FAILS_OTHERWISE = 'echo "Segmentation fault in libQtCore" >&2; exit 1'
#: nsys echoes undecodable header bytes into its message
BINARY_MESSAGE = r"printf 'Exportation error: Version number is invalid: \212+\333CU\205\n' >&2; exit 1"
NSYS = {
    "unreadable": UNREADABLE,
    "crash": CRASH,
    "fails otherwise": FAILS_OTHERWISE,
    "binary message": BINARY_MESSAGE,
}


@dataclass(frozen=True)
class Case:
    build: Callable[[Path], Path]
    code: int
    first_line: str  # start of the first stderr line ("" when the command succeeds); {path}: the input
    note: str = ""  # what the HTML report (and, for skipped rows, the terminal summary) must say
    nsys: str = "real"  # the nsys found: real | missing | a key of NSYS (a fake one)


def case(build, code: int, first_line: str, note: str = "", nsys: str = "real", **marks) -> Any:
    return pytest.param(Case(build, code, first_line, note, nsys), **marks)


CASES = [
    case(
        tampered((KERNEL, 0, "start", "soon")),
        0,
        "",
        "1 missing or bad start (CUPTI_ACTIVITY_KIND_KERNEL)",
        id="text-start",
    ),
    case(
        tampered((KERNEL, 1, "end", "later")), 0, "", "1 missing or bad end (CUPTI_ACTIVITY_KIND_KERNEL)", id="text-end"
    ),
    case(
        tampered((KERNEL, 1, "start", None)),
        0,
        "",
        "1 missing or bad start (CUPTI_ACTIVITY_KIND_KERNEL)",
        id="null-start",
    ),
    case(tampered((NVTX, 3, "end", None)), 0, "", "1 missing or bad end (NVTX_EVENTS)", id="null-range-end"),
    case(
        tampered((KERNEL, 0, "start", 1.5)),
        0,
        "",
        "1 missing or bad start (CUPTI_ACTIVITY_KIND_KERNEL)",
        id="real-start",
    ),
    case(
        tampered((KERNEL, 0, "end", b"\x00\x01")),
        0,
        "",
        "1 missing or bad end (CUPTI_ACTIVITY_KIND_KERNEL)",
        id="blob-end",
    ),
    case(tampered((KERNEL, 1, "end", 0)), 0, "", "1 negative dur (CUPTI_ACTIVITY_KIND_KERNEL)", id="end-before-start"),
    case(
        tampered((MEMCPY, 0, "copyKind", "HtoD")),
        0,
        "",
        "1 missing or bad copyKind (CUPTI_ACTIVITY_KIND_MEMCPY)",
        id="text-copykind",
    ),
    case(
        tampered((MEMCPY, 1, "bytes", "lots")),
        0,
        "",
        "1 missing or bad bytes (CUPTI_ACTIVITY_KIND_MEMCPY)",
        id="text-bytes",
    ),
    case(
        tampered((MEMSET, 0, "bytes", -512)),
        0,
        "",
        "1 negative bytes (CUPTI_ACTIVITY_KIND_MEMSET)",
        id="negative-bytes",
    ),
    case(
        tampered((KERNEL, 0, "streamId", "seven")),
        0,
        "",
        "1 bad streamId (CUPTI_ACTIVITY_KIND_KERNEL)",
        id="text-stream",
    ),
    case(
        tampered((RUNTIME, 2, "correlationId", 1)),
        0,
        "",
        "2 duplicate correlationId (CUPTI_ACTIVITY_KIND_RUNTIME)",
        id="duplicate-correlation",
    ),
    case(invalid_utf8, 0, "", "1 text values were not valid UTF-8", id="invalid-utf8"),
    case(
        tampered((NVTX, 0, "start", "x"), base=lone_range),
        2,
        "profkit: error: {path}: the report holds no usable events (1 missing or bad start (NVTX_EVENTS))",
        id="no-usable-row",
    ),
    case(step_names, 0, "", "ignored 10 profkit ranges whose names do not parse", id="step-names"),
    case(huge_step_number, 0, "", "ignored 1 profkit ranges whose names do not parse", id="huge-step-number"),
    case(
        random_report,
        2,
        "profkit: error: {path}: nsys cannot read this report (Exportation error: ",
        nsys="unreadable",
        id="random-report",
    ),
    case(
        random_report,
        2,
        "profkit: error: {path}: nsys cannot read this report (Exportation error: ",
        id="random-report-real-nsys",
        marks=pytest.mark.skipif(REAL_NSYS is None, reason="nsys is not installed"),
    ),
    case(
        binary_version_report,
        2,
        "profkit: error: {path}: nsys cannot read this report (Exportation error: Version number is invalid: ",
        id="binary-message-real-nsys",
        marks=pytest.mark.skipif(REAL_NSYS is None, reason="nsys is not installed"),
    ),
    case(
        random_report,
        2,
        "profkit: error: {path}: nsys cannot read this report (Exportation error: Version number is invalid: ",
        nsys="binary message",
        id="binary-message",
    ),
    case(
        random_report,
        3,
        "profkit: error: exporting run.nsys-rep to SQLite (nsys export) failed",
        nsys="crash",
        id="nsys-crashes",
    ),
    case(
        random_report,
        3,
        "profkit: error: exporting run.nsys-rep to SQLite (nsys export) failed (exit 1)",
        nsys="fails otherwise",
        id="nsys-fails-otherwise",
    ),
    case(
        random_report, 3, "profkit: error: {path}: reading an .nsys-rep needs nsys", nsys="missing", id="nsys-missing"
    ),
]

#: one CLI row per kind of case (the rest run in-process)
CLI_CASES = [
    "text-start",
    "duplicate-correlation",
    "no-usable-row",
    "step-names",
    "random-report",
    "binary-message",
    "nsys-crashes",
]


def _use_nsys(which: str, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if which == "real":
        return
    monkeypatch.setenv("PROFKIT_NSYS_PLACES", "")
    bin_folder = fake_nsys(folder, NSYS[which]) if which in NSYS else folder / "empty"
    monkeypatch.setenv("PATH", str(bin_folder))  # the fake runs /bin/sh by its full path; echo, kill: builtins


def _finite_views(result) -> None:
    for stage in result.view.stages:
        assert math.isfinite(stage.wall_us) and (stage.gpu_busy_us is None or math.isfinite(stage.gpu_busy_us))
    if result.gpu is not None:
        assert math.isfinite(result.gpu.busy_us) and math.isfinite(result.gpu.kernel_sum_us)


@pytest.mark.parametrize("hostile", CASES)
def test_hostile_case_in_process(hostile: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = hostile.build(tmp_path)
    _use_nsys(hostile.nsys, tmp_path, monkeypatch)
    try:
        outputs = analyze_path(path, html=tmp_path / "report.html")
    except ProfkitError as error:
        line = f"profkit: error: {error}"
        assert error.exit_code == hostile.code, line
        assert line.startswith(hostile.first_line.format(path=path)), line
        assert not (tmp_path / "report.html").exists()
        if path.suffix == ".nsys-rep":  # no partial export left to be reused as newer than the report
            assert not path.with_suffix(".sqlite").exists()
        return
    assert (hostile.code, hostile.first_line) == (0, "")
    _finite_views(outputs.result)
    assert hostile.note in (tmp_path / "report.html").read_text()


@pytest.mark.slow
@pytest.mark.parametrize("hostile", [c for c in CASES if c.id in CLI_CASES])
def test_hostile_case_on_the_command_line(hostile: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = hostile.build(tmp_path)
    _use_nsys(hostile.nsys, tmp_path, monkeypatch)
    report = tmp_path / "report.html"
    result = run_cli("analyze", str(path), "--out", str(report), timeout=CLI_TIMEOUT)
    assert result.returncode == hostile.code, result.stderr
    assert "Traceback" not in result.stderr
    if hostile.code:
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(hostile.first_line.format(path=path)), lines
        assert not report.exists()
        return
    assert result.stderr == ""
    assert hostile.note in report.read_text()
    if "ignored" not in hostile.note:  # skipped rows: the terminal summary names them too (a finding)
        assert "unusable and skipped" in result.stdout and hostile.note in result.stdout


# ---------------------------------------------------------------- the numbers stay right


def _kernel_sum(build: Callable[[Path], Path], folder: Path) -> float:
    return analyze_tables(load_nsys_sqlite(build(folder))).gpu.kernel_sum_us


def test_end_before_start_is_skipped_not_clamped(tmp_path: Path) -> None:
    """A reversed kernel counted as zero time shrank the kernel sum silently (294 -> 200 ms)."""
    clean = _kernel_sum(tampered(), tmp_path)
    reversed_kernel = tampered((KERNEL, 1, "end", 0))  # the step-0 GEMM, 500 us
    tables = load_nsys_sqlite(reversed_kernel(tmp_path))
    assert tables.info.skipped_events == {"negative dur (CUPTI_ACTIVITY_KIND_KERNEL)": 1}
    assert len(tables.kernels) == 4 and (tables.kernels["dur"] > 0).all()
    assert analyze_tables(tables).gpu.kernel_sum_us == pytest.approx(clean - 500)


def test_null_times_do_not_turn_the_gpu_view_into_nan(tmp_path: Path) -> None:
    tables = load_nsys_sqlite(tampered((KERNEL, 0, "start", None), (MEMCPY, 0, "end", None))(tmp_path))
    assert tables.info.skipped_total == 2
    for name in ("kernels", "memops", "ranges", "launches"):
        frame = getattr(tables, name)
        assert all(np.isfinite(frame[c]).all() for c in ("ts", "dur", "end")), name
    result = analyze_tables(tables)
    _finite_views(result)
    assert result.gpu.busy_us > 0
    assert any(f.rule == "skipped_events" for f in result.findings)


def test_a_repeated_correlation_id_links_no_kernel_to_the_wrong_launch(tmp_path: Path) -> None:
    """Two calls of one process with one correlation id: which launched the kernel is unknowable."""
    clean = analyze_tables(load_nsys_sqlite(tampered()(tmp_path)))
    # the launch of the VAE kernel (9th call) reuses the id of the first memcpy's call
    tables = load_nsys_sqlite(tampered((RUNTIME, 8, "correlationId", 1))(tmp_path))
    assert tables.info.skipped_events == {"duplicate correlationId (CUPTI_ACTIVITY_KIND_RUNTIME)": 2}
    result = analyze_tables(tables)
    assert result.view.gpu_attribution == {"launch": clean.view.gpu_attribution["launch"] - 2, "none": 2}
    assert result.launches.delay_p50_us <= clean.launches.delay_p99_us  # no launch matched far away
    # the same id in two processes is no duplicate (CUDA numbers per process)
    builder = NsysBuilder().nvtx("profkit/pipeline", 0, 10_000)
    builder.kernel("a", 10, 20, 5, pid=10).kernel("b", 30, 40, 5, pid=20)
    assert load_nsys_sqlite(builder.write(tmp_path / "two.sqlite")).info.skipped_events == {}


def test_twenty_steps_with_ten_unparsable_names_say_so(tmp_path: Path) -> None:
    from profkit.parsers import load_trace

    result = analyze_tables(load_trace(step_names(tmp_path)))
    assert len(result.view.steps) == 10 and result.view.ignored_ranges == 10
    assert result.view.ignored_range_names[0].startswith("profkit/denoise/step_")
    assert any("ignored 10 profkit ranges whose names do not parse" in note for note in result.notes)


# ---------------------------------------------------------------- fuzzer: wrong column types in SQLite

odd_cells = st.one_of(
    st.none(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6),
    st.binary(max_size=6),
)
TAMPERED_TABLES = (NVTX, KERNEL, RUNTIME, MEMCPY, MEMSET, "OSRT_API", "StringIds", "TARGET_INFO_GPU")


@st.composite
def tampered_exports(draw) -> NsysBuilder:
    builder = nsys_diffusion(steps=2)
    for _ in range(draw(st.integers(1, 8))):
        table = draw(st.sampled_from(TAMPERED_TABLES))
        if not builder.rows[table]:
            builder.rows[table].append((0, "NVIDIA H100 80GB HBM3", "0000:00:00.0", 80 << 30))
        row = draw(st.integers(0, len(builder.rows[table]) - 1))
        if draw(st.booleans()) and table != "StringIds":  # a copy of a row: repeated ids and times
            builder.rows[table].append(builder.rows[table][row])
        column = "value" if table == "StringIds" else draw(st.sampled_from(columns(table)))  # ids: primary keys
        builder.set(table, row, column, draw(odd_cells))
    return builder


def _rows_read(path: Path) -> int:
    """The event rows profkit reads: every row of the event tables, NVTX ranges only."""
    with sqlite3.connect(path) as connection:
        nvtx = connection.execute(f"SELECT count(*) FROM {NVTX} WHERE eventType IN {NVTX_RANGE_TYPES}").fetchone()[0]
        others = [
            connection.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            for t in SCHEMA
            if t.startswith(("CUPTI", "OSRT"))
        ]
    connection.close()
    return nvtx + sum(others)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tampered_exports())
def test_wrong_column_types_are_skipped_and_counted_or_refused(tmp_path_factory, builder: NsysBuilder) -> None:
    path = builder.write(tmp_path_factory.mktemp("fuzz") / "run.sqlite", constraints=False)
    try:
        tables = load_nsys_sqlite(path)
    except ProfkitError as error:
        assert error.exit_code == 2
        return
    kept = sum(len(getattr(tables, name)) for name in ("kernels", "launches", "memops", "cpu_ops", "ranges", "syncs"))
    assert kept + tables.info.skipped_total == _rows_read(path)  # every row used, or counted as skipped
    for name in ("kernels", "launches", "memops", "cpu_ops", "ranges", "syncs"):
        frame = getattr(tables, name)
        assert all(np.isfinite(frame[c]).all() for c in ("ts", "dur", "end")) and (frame["dur"] >= 0).all(), name
    result = analyze_tables(tables)
    _finite_views(result)
