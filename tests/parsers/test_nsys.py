"""Nsight Systems: the SQLite parser on schema fixtures, bad input, and real `profkit capture --nsys` runs."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from profkit.analysis import analyze_tables
from profkit.app.inputs import analyze_input, resolve_input
from profkit.app.nsys_export import parsable_trace
from profkit.errors import ProfkitError
from profkit.parsers import load_trace
from profkit.parsers.nsys import load_nsys_sqlite
from profkit.parsers.tables import NUMPY_DTYPES, SCHEMAS
from tests.conftest import run_cli
from tests.nsysbuilder import NsysBuilder, nsys_diffusion

NSYS_FOUND = shutil.which("nsys") is not None or Path("/usr/lib/nsight-systems/bin/nsys").exists()


def needs_nsys() -> None:
    if NSYS_FOUND:
        return
    message = "Nsight Systems is not installed (bash scripts/install-nsys.sh)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


# ---------------------------------------------------------------- parser on fixtures


def test_sqlite_fixture_fills_the_same_tables_as_kineto(tmp_path: Path) -> None:
    tables = load_trace(nsys_diffusion(steps=3).write(tmp_path / "run.sqlite"))
    assert tables.info.source_format == "nsys"
    assert len(tables.kernels) == 5 and len(tables.memops) == 3
    for name in ("kernels", "launches", "memops", "cpu_ops", "ranges", "syncs"):
        assert list(getattr(tables, name).columns) == list(SCHEMAS[name])
    kernels = tables.kernels.to_pandas().sort_values("ts")
    assert kernels["ts"].iloc[0] == pytest.approx(45.0)  # ns -> us, from the first event
    assert kernels["dur"].iloc[0] == pytest.approx(50.0)
    assert kernels["grid"].iloc[0] == "[4, 1, 1]" and kernels["shared_memory"].iloc[0] == 1024
    assert set(tables.launches["name"]) >= {"cudaLaunchKernel", "cudaMemcpyAsync", "cudaStreamSynchronize"}
    memops = tables.memops.to_pandas().set_index("name")
    assert memops.loc["Memcpy HtoD (Pageable -> Device)", "direction"] == "H2D"
    assert bool(memops.loc["Memcpy DtoH (Device -> Pageable)", "pageable"])
    assert memops.loc["Memset (Device)", "kind"] == "memset"
    assert tables.info.devices[0]["name"] == "NVIDIA H100 80GB HBM3"
    assert tables.info.not_captured == []


def test_stage_step_attribution_and_rules_from_sqlite(tmp_path: Path) -> None:
    result = analyze_tables(load_trace(nsys_diffusion(steps=3, step_us=1000).write(tmp_path / "run.sqlite")))
    stages = {s.stage: s for s in result.view.stages}
    assert [s.step for s in result.view.steps] == [0, 1, 2]
    assert stages["denoise"].gpu_busy_us == pytest.approx(3 * 500)
    assert stages["vae"].gpu_busy_us == pytest.approx(300 + 5 + 20)
    assert stages["text_encoder"].gpu_busy_us == pytest.approx(10 + 50)
    assert result.view.gpu_attribution == {"launch": 8}
    assert result.view.gpu_unattributed_share == 0.0
    rules = {f.rule for f in result.findings}
    assert {"sync_every_step", "host_sync_calls", "pageable_memcpy"} <= rules
    assert result.trace.devices == ["NVIDIA H100 80GB HBM3"]


def test_kernels_join_the_launch_of_their_own_process(tmp_path: Path) -> None:
    """Correlation ids repeat across processes; the join must use globalPid == globalTid & ~tid bits."""
    builder = NsysBuilder()
    builder.nvtx("profkit/pipeline", 0, 10_000, pid=10)
    builder.nvtx("profkit/denoise/step_000", 100, 1000, pid=10)
    builder.nvtx("profkit/vae/decode", 5000, 1000, pid=10)
    builder.kernel("gemm_in_step", launch_us=200, start_us=300, dur_us=100, pid=10)  # correlationId 1 in pid 10
    builder.kernel("other_process_kernel", launch_us=5100, start_us=5200, dur_us=70, pid=20)  # also id 1, pid 20
    tables = load_trace(builder.write(tmp_path / "two.sqlite"))
    joined = tables.kernels.to_pandas().merge(tables.launches.to_pandas(), on="correlation", suffixes=("", "_launch"))
    launch_of = dict(zip(joined["name"], joined["ts_launch"], strict=True))
    assert launch_of == {"gemm_in_step": pytest.approx(200.0), "other_process_kernel": pytest.approx(5100.0)}
    result = analyze_tables(tables)
    stages = {s.stage: s for s in result.view.stages}
    assert stages["denoise"].gpu_busy_us == pytest.approx(100)
    assert stages["vae"].gpu_busy_us == pytest.approx(70)  # launched inside the VAE range, by another process


def test_tables_the_capture_did_not_record_are_said_not_captured(tmp_path: Path) -> None:
    builder = NsysBuilder(tables=("StringIds", "NVTX_EVENTS", "OSRT_API"))
    builder.nvtx("profkit/pipeline", 0, 1000).nvtx("profkit/denoise/step_000", 10, 500)
    builder.osrt("read", 20, 5).osrt("pthread_mutex_lock", 30, 2)
    result = analyze_tables(load_trace(builder.write(tmp_path / "cpu.sqlite")))
    assert "GPU kernels (CUPTI_ACTIVITY_KIND_KERNEL)" in result.trace.not_captured
    assert "CUDA runtime API calls (CUPTI_ACTIVITY_KIND_RUNTIME)" in result.trace.not_captured
    finding = next(f for f in result.findings if f.rule == "no_gpu_activity")
    assert "not captured" in finding.title
    assert result.view.steps[0].wall_us == pytest.approx(500)  # the NVTX views still run
    assert {row.category for row in result.cpu_ops.rows} == {"os: file I/O", "os: wait/sync"}


def test_sqlite_and_kineto_of_the_same_run_give_the_same_views(tmp_path: Path) -> None:
    from tests.tracebuilder import diffusion_trace

    kineto = analyze_tables(load_trace(diffusion_trace(steps=3).write(tmp_path / "t.json")))
    builder = NsysBuilder()
    for event in diffusion_trace(steps=3).events:
        if event["cat"] == "user_annotation":
            builder.nvtx(event["name"], event["ts"], event["dur"])
    nsys = analyze_tables(load_trace(builder.write(tmp_path / "t.sqlite")))
    assert [(s.stage, round(s.wall_us, 3)) for s in nsys.view.stages] == [
        (s.stage, round(s.wall_us, 3)) for s in kineto.view.stages
    ]
    assert [s.wall_us for s in nsys.view.steps] == [s.wall_us for s in kineto.view.steps]


def test_other_nsys_schemas_extra_and_absent_optional_columns(tmp_path: Path) -> None:
    """Exports differ between nsys versions: extra columns are ignored, absent optional ones read as unknown."""
    reference = load_trace(nsys_diffusion(steps=2).write(tmp_path / "reference.sqlite"))
    path = nsys_diffusion(steps=2).write(tmp_path / "other.sqlite")
    with sqlite3.connect(path) as connection:
        for table in ("CUPTI_ACTIVITY_KIND_KERNEL", "CUPTI_ACTIVITY_KIND_MEMCPY", "CUPTI_ACTIVITY_KIND_RUNTIME"):
            connection.execute(f"ALTER TABLE {table} ADD COLUMN greenContextId INTEGER")
        for table, column in [
            ("CUPTI_ACTIVITY_KIND_KERNEL", "registersPerThread"),
            ("CUPTI_ACTIVITY_KIND_KERNEL", "staticSharedMemory"),
            ("CUPTI_ACTIVITY_KIND_MEMCPY", "srcKind"),
            ("CUPTI_ACTIVITY_KIND_MEMCPY", "dstKind"),
            ("CUPTI_ACTIVITY_KIND_MEMSET", "memKind"),
            ("NVTX_EVENTS", "text"),
        ]:
            connection.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        connection.execute(
            "CREATE TABLE CUPTI_ACTIVITY_KIND_SYNCHRONIZATION (start INTEGER NOT NULL, end INTEGER NOT NULL, "
            "deviceId INTEGER, contextId INTEGER, streamId INTEGER, syncType INTEGER, greenContextId INTEGER)"
        )
        connection.execute("INSERT INTO CUPTI_ACTIVITY_KIND_SYNCHRONIZATION VALUES (400000, 450000, 0, 1, 7, 3, 0)")
    connection.close()
    tables = load_trace(path)
    for name in ("kernels", "launches", "ranges", "cpu_ops"):
        assert len(getattr(tables, name)) == len(getattr(reference, name)), name
    assert list(tables.ranges["name"]) == list(reference.ranges["name"])  # names from textId alone
    assert list(tables.kernels["name"]) == list(reference.kernels["name"])
    assert np.isnan(tables.kernels["registers"]).all()
    assert list(tables.kernels["shared_memory"]) == list(reference.kernels["shared_memory"])  # the dynamic part only
    memops = tables.memops.to_pandas().set_index("name")
    assert list(memops.index) == [
        "Memcpy HtoD (Unknown -> Unknown)",
        "Memcpy DtoH (Unknown -> Unknown)",
        "Memset (Unknown)",
    ]
    assert not tables.memops["pageable"].any() and list(tables.memops["direction"]) == ["H2D", "D2H", "memset"]
    assert tables.kernels.to_pandas().merge(tables.launches.to_pandas(), on="correlation").shape[0] == len(
        tables.kernels
    )
    syncs = tables.syncs
    assert list(syncs["name"]) == ["CUDA sync (type 3)"] and list(syncs["stream"]) == [7]
    assert syncs["dur"][0] == pytest.approx(50.0)
    for name in SCHEMAS:
        frame = getattr(tables, name)
        assert {c: frame[c].dtype for c in frame} == {c: np.dtype(NUMPY_DTYPES[d]) for c, d in SCHEMAS[name].items()}


# ---------------------------------------------------------------- bad input


@pytest.mark.slow
def test_not_sqlite_is_one_clear_line(tmp_path: Path) -> None:
    bogus = tmp_path / "report.sqlite"
    bogus.write_text("this is not a database\n")
    result = run_cli("analyze", str(bogus))
    assert result.returncode == 2
    assert "not an SQLite database" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_sqlite_that_is_not_an_nsys_export(tmp_path: Path) -> None:
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as connection:
        connection.execute("CREATE TABLE people (name TEXT)")
    connection.close()
    result = run_cli("analyze", str(other))
    assert result.returncode == 2 and "not an Nsight Systems export" in result.stderr


@pytest.mark.slow
def test_empty_report_and_truncated_file(tmp_path: Path) -> None:
    empty = NsysBuilder().write(tmp_path / "empty.sqlite")
    with pytest.raises(ProfkitError, match="holds no events"):
        load_nsys_sqlite(empty)
    result = run_cli("analyze", str(empty))
    assert result.returncode == 2 and "holds no events" in result.stderr
    full = nsys_diffusion().write(tmp_path / "full.sqlite")
    truncated = tmp_path / "truncated.sqlite"
    truncated.write_bytes(full.read_bytes()[:3000])
    result = run_cli("analyze", str(truncated))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "unreadable or truncated" in result.stderr or "cannot read" in result.stderr


@pytest.mark.slow
def test_missing_table_column_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "odd.sqlite"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE StringIds (id INTEGER, value TEXT)")
        connection.execute("CREATE TABLE CUPTI_ACTIVITY_KIND_KERNEL (start INTEGER, end INTEGER)")
        connection.execute("INSERT INTO CUPTI_ACTIVITY_KIND_KERNEL VALUES (1, 2)")
    connection.close()
    result = run_cli("analyze", str(path))
    assert result.returncode == 2 and "cannot read CUPTI_ACTIVITY_KIND_KERNEL" in result.stderr


def test_nsys_rep_without_nsys_says_how_to_get_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    report = tmp_path / "run.nsys-rep"
    report.write_bytes(b"\x00" * 64)
    monkeypatch.setenv("PROFKIT_NSYS_PLACES", "")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ProfkitError, match="needs nsys to export it"):
        analyze_input(resolve_input(report))
    with pytest.raises(ProfkitError, match="needs nsys to export it") as raised:
        parsable_trace(report)
    assert raised.value.exit_code == 3  # a missing tool is a run failure, not bad input


def test_an_unusable_row_is_counted_once_under_its_first_reason(tmp_path: Path) -> None:
    from tests.nsysbuilder import KERNEL

    builder = nsys_diffusion(steps=2).set(KERNEL, 0, "start", "x").set(KERNEL, 0, "streamId", "y")
    builder.set(KERNEL, 1, "gridX", 2.5)
    tables = load_nsys_sqlite(builder.write(tmp_path / "run.sqlite"))
    assert tables.info.skipped_events == {
        "missing or bad start (CUPTI_ACTIVITY_KIND_KERNEL)": 1,
        "bad gridX (CUPTI_ACTIVITY_KIND_KERNEL)": 1,
    }
    clean = load_nsys_sqlite(nsys_diffusion(steps=2).write(tmp_path / "clean.sqlite"))
    assert len(tables.kernels) == len(clean.kernels) - 2
    assert tables.info.event_count == clean.info.event_count  # the skipped rows are events of the file too
    assert "skipped 2 unusable events (1 missing or bad start" in tables.info.warnings[-1]


def test_the_parser_layer_asks_for_an_nsys_rep_to_be_exported_first(tmp_path: Path) -> None:
    report = tmp_path / "run.nsys-rep"
    report.write_bytes(b"\x00" * 64)
    with pytest.raises(ProfkitError, match="must be exported to SQLite before parsing"):
        load_trace(report)


def test_an_nsys_rep_with_a_newer_sqlite_beside_it_reuses_the_export(tmp_path: Path, monkeypatch) -> None:
    report = tmp_path / "run.nsys-rep"
    report.write_bytes(b"\x00" * 64)
    export = nsys_diffusion(steps=2).write(tmp_path / "run.sqlite")
    os.utime(report, (1_000_000, 1_000_000))
    monkeypatch.setenv("PROFKIT_NSYS_PLACES", "")
    monkeypatch.setenv("PATH", str(tmp_path))  # no nsys: the export beside the report must be used
    assert parsable_trace(report) == export
    assert parsable_trace(export) == export
    result = run_cli("analyze", str(report), "--json")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "run.summary.json").exists()


@pytest.mark.slow
def test_capture_without_nsys_is_one_line_with_the_install_hint(tmp_path: Path) -> None:
    result = run_cli("capture", "--nsys", "--nsys-path", str(tmp_path / "nowhere"), "--out", str(tmp_path))
    assert result.returncode == 2 and "no nsys executable there" in result.stderr
    env = {**os.environ, "PATH": os.path.dirname(sys.executable), "PROFKIT_NSYS_PLACES": ""}
    completed = subprocess.run(
        [sys.executable, "-m", "profkit", "capture", "--nsys", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert completed.returncode == 2
    assert "nsys) not found" in completed.stderr and "install-nsys.sh" in completed.stderr
    assert not list(tmp_path.glob("*/metadata.json"))


# ---------------------------------------------------------------- real captures


@dataclass
class CapturedRun:
    folder: Path
    result: object  # AnalysisResult


@pytest.fixture(scope="module")
def nsys_and_torch_runs(tmp_path_factory: pytest.TempPathFactory):
    """The built-in pipeline, same settings, captured under nsys and under torch.profiler, alternating twice.

    Both go through `profkit capture` in a fresh process, so neither side runs in a process that earlier
    tests have already warmed up (allocator, oneDNN primitive caches). Alternating (nsys, torch, nsys,
    torch) keeps a burst of load on a shared 2-core machine from landing on one side only.
    """
    needs_nsys()
    from profkit.app.inputs import analyze_input, resolve_input

    out = tmp_path_factory.mktemp("nsys")
    common = ["--steps", "6", "--warmup", "2", "--seed", "3", "--device", "cpu", "--no-analyze"]
    runs: dict[str, list[CapturedRun]] = {"nsys": [], "torch": []}
    for round_index in range(2):
        for kind in ("nsys", "torch"):
            target = out / f"{kind}{round_index}"
            completed = run_cli("capture", *common, "--out", str(target), *(["--nsys"] if kind == "nsys" else []))
            assert completed.returncode == 0, completed.stderr
            folder = next(target.iterdir())
            runs[kind].append(CapturedRun(folder, analyze_input(resolve_input(folder))))
    return runs["nsys"], runs["torch"]


@pytest.mark.slow
def test_real_nsys_capture_has_stage_ranges_and_one_range_per_step(nsys_and_torch_runs) -> None:
    run = nsys_and_torch_runs[0][0]
    assert (run.folder / f"{run.folder.name}.sqlite").exists()
    assert (run.folder / f"{run.folder.name}.nsys-rep").exists()
    assert not list(run.folder.glob("*.qdstrm"))
    result = run.result
    assert result.trace.source_format == "nsys"
    assert {s.stage for s in result.view.stages} >= {"text_encoder", "denoise", "vae"}
    assert [s.step for s in result.view.steps] == list(range(6))
    assert all(s.denoiser_calls >= 1 for s in result.view.steps)
    assert result.run.profiler.tool == "nsys" and result.run.profiler.profkit_ranges_recorded > 6


@pytest.mark.slow
def test_nsys_and_torch_profiler_agree_on_stages_and_step_times(nsys_and_torch_runs) -> None:
    nsys_runs, torch_runs = nsys_and_torch_runs
    nsys = [run.result for run in nsys_runs]
    torch = [run.result for run in torch_runs]
    for a, b in zip(nsys, torch, strict=True):
        assert [s.stage for s in a.view.stages] == [s.stage for s in b.view.stages]
        assert len(a.view.steps) == len(b.view.steps) == 6
    # Each trace's step times against the wall clock of the same call (Python's clock, read by the capture around
    # the recorded call): same moment, same load, so this holds on a busy machine too. Six steps are most of the
    # call (0.92 here); a unit mix-up (ns/us/ms) is off by 1000x, a step taken for the whole call by 6x.
    for result in nsys + torch:
        timing = result.run.timing_seconds
        call_us = 1e6 * (timing.recorded_call_under_nsys or timing.recorded_call_under_profiler)
        steps_us = sum(step.wall_us for step in result.view.steps)
        assert 0.5 <= steps_us / call_us <= 1.02, f"{result.trace.source_format}: {steps_us:.0f} of {call_us:.0f} us"
    # Across the two profilers, captured one after the other: the lower median of each (load only ever adds time).
    # A burst of load on this 2-core machine moved this ratio past 3x once, so the band only rules out mix-ups.
    nsys_median = min(r.view.step_stats.median for r in nsys)
    torch_median = min(r.view.step_stats.median for r in torch)
    ratio = nsys_median / torch_median
    assert 1 / 10 <= ratio <= 10, f"per-step medians differ: nsys {nsys_median:.0f} us, torch {torch_median:.0f} us"


@pytest.mark.slow
def test_analyze_and_compare_accept_nsys_run_folders(nsys_and_torch_runs, tmp_path: Path) -> None:
    nsys, torch = nsys_and_torch_runs[0][0], nsys_and_torch_runs[1][0]
    folder = nsys.folder
    result = run_cli("analyze", str(folder), "--json", "--force")
    assert result.returncode == 0, result.stderr
    summary = folder / f"{folder.name}.summary.json"
    assert summary.exists()
    again = run_cli("analyze", str(folder))  # the README's capture --nsys, then analyze <run>: names the report
    assert again.returncode == 0 and f"HTML report already there: {folder / folder.name}.report.html" in again.stdout
    mask = os.umask(0)
    os.umask(mask)
    loose = [p for p in (folder, *folder.rglob("*")) if p.stat().st_mode & 0o777 & mask]
    assert not loose, "files made without the user's umask"  # nsys runs its child with umask 0
    result = run_cli("compare", str(torch.folder), str(folder), "-o", str(tmp_path / "c.html"))
    assert result.returncode == 0, result.stderr
    assert "(nsys)" in (tmp_path / "c.html").read_text()


def test_nsys_command_defaults_and_overrides(tmp_path: Path) -> None:
    from profkit.capture.nsys.runner import nsys_command
    from profkit.capture.nsys.tool import NsysTool

    tool = NsysTool(Path("/opt/nsys/bin/nsys"), None)
    gpu = nsys_command(tool, tmp_path / "run", tmp_path / "req.json", "cuda:0", [])
    assert "--trace=cuda,nvtx,osrt" in gpu and "--cuda-graph-trace=node" in gpu
    assert gpu[-3:] == ["-m", "profkit.capture.nsys.child", str(tmp_path / "req.json")]
    cpu = nsys_command(tool, tmp_path / "run", tmp_path / "req.json", "cpu", ["-t", "nvtx", "--stats=true"])
    assert not any(arg.startswith("--trace=") for arg in cpu) and "--cuda-graph-trace=node" not in cpu
    assert cpu[cpu.index("-t") + 1] == "nvtx" and "--stats=true" in cpu
    with pytest.raises(ProfkitError, match="cannot set --output"):
        nsys_command(tool, tmp_path / "run", tmp_path / "req.json", "cpu", ["-o", "elsewhere"])


@pytest.mark.slow
def test_a_capture_that_recorded_no_profkit_ranges_is_an_error(tmp_path: Path) -> None:
    needs_nsys()
    result = run_cli(
        "capture",
        "--nsys",
        "--steps",
        "2",
        "--warmup",
        "0",
        "--device",
        "cpu",
        "--out",
        str(tmp_path),
        "--nsys-args=--trace=osrt",
    )
    assert result.returncode == 3
    assert "recorded no profkit ranges" in result.stderr and "nvtx" in result.stderr
    assert len(result.stderr.strip().splitlines()[-1:]) == 1 and "Traceback" not in result.stderr


@pytest.mark.slow
def test_analyze_an_nsys_rep_exports_it_first(nsys_and_torch_runs, tmp_path: Path) -> None:
    run = nsys_and_torch_runs[0][0]
    report = tmp_path / "copy.nsys-rep"
    shutil.copy(run.folder / f"{run.folder.name}.nsys-rep", report)
    result = run_cli("analyze", str(report), "--json")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "copy.sqlite").exists() and (tmp_path / "copy.summary.json").exists()
    assert "denoise" in result.stdout
