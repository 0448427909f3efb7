"""`profkit analyze DIR` on a folder of traces: parallel workers, one index, ranks side by side, failures kept."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import orjson
import pytest

from profkit.app.analyze_folder import _ranks, find_items, is_folder_of_traces
from profkit.model.index import AnalysisIndex, IndexRow
from tests.conftest import run_cli
from tests.tracebuilder import diffusion_trace


def _rank_trace(path: Path, rank: int, step_us: float) -> Path:
    document = diffusion_trace(steps=4, step_us=step_us).document()
    document["distributedInfo"] = {"backend": "nccl", "rank": rank, "world_size": 2}
    path.write_bytes(gzip.compress(orjson.dumps(document)))
    return path


def test_items_are_traces_and_capture_folders_not_our_own_documents(tmp_path: Path) -> None:
    _rank_trace(tmp_path / "a.json.gz", 0, 1000)
    (tmp_path / "run").mkdir()
    _rank_trace(tmp_path / "run" / "trace.json.gz", 1, 1000)
    (tmp_path / "notes.txt").write_text("not a trace")
    (tmp_path / "old.summary.json").write_text('{"schema_version": 1, "kind": "profkit.analysis"}')
    assert is_folder_of_traces(tmp_path) and not is_folder_of_traces(tmp_path / "run")
    assert [p.name for p in find_items(tmp_path)] == ["a.json.gz", "run"]


def test_ranks_side_by_side_only_for_one_job() -> None:
    def row(rank: int | None, step: float, world: int = 2) -> IndexRow:
        return IndexRow(item=f"r{rank}", label=f"r{rank}", ok=True, rank=rank, world_size=world, median_step_ms=step)

    ranks = _ranks([row(1, 12.0), row(0, 10.0)])
    assert [(r.rank, r.slowest) for r in ranks] == [(0, False), (1, True)]
    assert ranks[1].vs_fastest == pytest.approx(0.2)
    assert _ranks([row(0, 10.0), row(0, 11.0)]) == ()  # two rank-0 traces: different jobs
    assert _ranks([row(0, 10.0), row(1, 11.0, world=4)]) == ()


@pytest.mark.slow
def test_folder_analysis_in_parallel_with_index(tmp_path: Path) -> None:
    folder = tmp_path / "job"
    folder.mkdir()
    _rank_trace(folder / "rank0.json.gz", 0, 1000.0)
    _rank_trace(folder / "rank1.json.gz", 1, 1500.0)  # the slow rank: 1.5 ms steps
    (folder / "broken.json").write_text('{"traceEvents": [')
    done = run_cli("analyze", str(folder), "--json", "--jobs", "2")
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("profkit: error: 1 of 3 traces could not be analyzed (first: broken.json")
    assert len(done.stderr.strip().splitlines()) == 1
    for name in ("rank0", "rank1"):  # each item's own report next to it, like `profkit analyze ITEM`
        assert (folder / f"{name}.report.html").is_file() and (folder / f"{name}.summary.json").is_file()
    index = AnalysisIndex.load(folder / "index.json")
    assert index.jobs == 2 and [r.ok for r in index.rows] == [False, True, True]
    rows = {r.label: r for r in index.rows if r.ok}
    # median step computed from the trace as built: 4 steps of 1.0 ms and 1.5 ms
    assert rows["rank0"].median_step_ms == pytest.approx(1.0) and rows["rank1"].median_step_ms == pytest.approx(1.5)
    assert [(r.rank, r.slowest) for r in index.ranks] == [(0, False), (1, True)]
    page = (folder / "index.report.html").read_text()
    assert 'href="rank1.report.html"' in page and "Slowest rank: 1" in page and "not analyzed" in page
    data = json.loads((folder / "index.json").read_text())
    assert data["kind"] == "profkit.analysis-index"
    # a second run refuses to overwrite, before any work; our own summaries are not taken for traces
    again = run_cli("analyze", str(folder))
    assert again.returncode == 2 and "exists" in again.stderr


def test_a_large_export_in_a_folder_counts_every_call_and_says_what_its_steps_cover(tmp_path: Path) -> None:
    from rich.console import Console

    from profkit.analysis import analyze_tables
    from profkit.app.analyze_folder import analyze_item
    from profkit.parsers.nsys import load_nsys_sqlite
    from profkit.report.index_html import index_html
    from profkit.report.terminal_index import print_index
    from tests.nsysbuilder import PER_CALL, nsys_calls

    export = nsys_calls(4).write(tmp_path / "calls.sqlite")
    row = analyze_item(str(export), False, True, detail_events=2 * PER_CALL)
    full = analyze_tables(load_nsys_sqlite(export))  # every event in detail
    assert row.ok and (row.detail_calls, row.calls_total) == (2, 4)
    assert full.gpu is not None and row.gpu_busy_share == pytest.approx(full.gpu.utilization)
    assert row.total_ms == pytest.approx(full.view.total_us / 1000)  # every call's wall time, not the window's
    assert row.denoise_steps == len(full.view.steps) // 2  # the steps of the window
    index = AnalysisIndex(folder=str(tmp_path), jobs=1, rows=(row,))
    assert "steps and finding from its first 2 of 4 calls" in index_html(index, tmp_path)
    console = Console(width=200, record=True)
    print_index(index, console)
    assert "(steps: first 2 of 4 calls)" in console.export_text()
    plain = analyze_item(str(export), False, True, detail_events=None)
    assert plain.detail_calls is None and plain.total_ms == pytest.approx(row.total_ms)
