"""The timeline (issue 15 point 1): its elements checked against the trace and the analysis, escaped, small."""

from __future__ import annotations

import re
from pathlib import Path

import msgspec
import orjson
import pytest

from profkit.analysis import analyze_tables
from profkit.analysis import timeline_view as tv
from profkit.analysis.compare import compare_results
from profkit.analysis.summary import AnalysisResult
from profkit.model.analysis import AnalysisSummary, load_analysis
from profkit.parsers import load_trace
from profkit.report import analysis_html, comparison_html
from profkit.report.timeline_html import open_hint
from tests.conftest import REPO
from tests.tracebuilder import launch_bound_trace

EVIL = "</script><script>alert('pwned')</script><img src=x onerror=alert(1)>"
H100 = REPO.parent / "shared" / "corpus" / "h100"


def _two_stream_trace(tmp_path: Path, kernel: str = "void at::native::fused_kernel<float>(int)") -> Path:
    builder = launch_bound_trace(steps=4, kernels_per_step=6)
    for step in range(4):  # a second stream, overlapping the first
        builder.kernel(kernel, 115 + step * 200, 120 + step * 200, 40, stream=9)
    return builder.write(tmp_path / "two_streams.json")


@pytest.fixture(scope="module")
def result(tmp_path_factory) -> AnalysisResult:
    return analyze_tables(load_trace(_two_stream_trace(tmp_path_factory.mktemp("timeline"))))


def _check_against_analysis(r: AnalysisResult) -> None:
    tl = r.timeline
    assert tl is not None
    # one step mark per denoise step, in the step table's order and length
    assert [s.step for s in tl.steps] == [s.step for s in r.view.steps]
    assert [s.dur_us for s in tl.steps] == pytest.approx([s.wall_us for s in r.view.steps], abs=0.01)
    # stage spans add up to the stage table
    for row in r.view.stages:
        if row.stage == "other":
            continue
        spans = sum(s.dur_us for s in tl.stages if s.label == row.stage)
        assert spans == pytest.approx(row.wall_us, abs=0.01 * (1 + len(tl.stages)))
    assert sum(c.dur_us for c in tl.calls) == pytest.approx(r.view.total_us, abs=0.1)
    # busy density sums to GPU busy within bin rounding
    everything = tl.lanes[0]
    assert everything.stream == tv.ALL_STREAMS
    assert everything.busy_us == pytest.approx(r.gpu.busy_us, abs=0.01)
    assert sum(everything.bins) == pytest.approx(r.gpu.busy_us, abs=0.005 * len(everything.bins) + 0.01)
    assert all(0 <= b <= tl.bin_us + 0.01 for b in everything.bins)
    for lane in tl.lanes[1:]:
        assert sum(lane.bins) == pytest.approx(lane.busy_us, abs=0.005 * len(lane.bins) + 0.01)
    assert sum(lane.busy_us for lane in tl.lanes[1:]) >= everything.busy_us - 0.01
    # idle gaps by cause agree with the idle-gap analysis
    assert tl.gap_count == r.gaps.count
    assert tl.gap_us_by_cause == pytest.approx({c.key: c.total_us for c in r.gaps.by_cause}, abs=0.01)
    assert set(tl.gap_us_by_cause) <= set(tl.cause_labels)


def test_timeline_matches_the_trace(result):
    _check_against_analysis(result)
    tl = result.timeline
    assert [lane.stream for lane in tl.lanes] == [tv.ALL_STREAMS, 7, 9]
    assert tl.item_count == result.gpu.kernel_count + result.gpu.memop_count
    assert len(tl.items) == tl.item_count  # a small trace keeps every kernel and copy
    assert len(tl.gaps) == tl.gap_count
    lanes_of_items = {tl.lanes[item[0]].stream for item in tl.items}
    assert lanes_of_items == {7, 9}
    fused = tl.names.index("void at::native::fused_kernel<float>(int)")
    assert tl.short_names[fused] == "at::native::fused_kernel<…>"
    assert sum(1 for item in tl.items if item[3] == fused) == 4
    assert {s.label for s in tl.ranges} == {"denoiser", "scheduler"}
    assert tl.start_us <= min(s.start_us for s in tl.steps)
    assert tl.end_us >= max(s.start_us + s.dur_us for s in tl.steps)


def test_items_capped_per_step_keep_the_longest(tmp_path, monkeypatch):
    monkeypatch.setattr(tv, "KEEP_ALL_ITEMS", 0)
    builder = launch_bound_trace(steps=3, kernels_per_step=8)
    for step in range(3):
        builder.kernel("long_kernel", 110 + step * 240, 300 + step * 240, 9.0 + step)
    tables = load_trace(builder.write(tmp_path / "capped.json"))
    r = analyze_tables(tables)
    from profkit.analysis.attribution import gpu_work, pipeline_windows
    from profkit.analysis.timeline import blocking_calls

    windows = pipeline_windows(tables)
    work = gpu_work(tables, windows)
    tl = tv.build_timeline(tables, windows, work, r.view, blocking_calls(tables, work), items_per_group=2)
    kept_long = [item for item in tl.items if tl.names[item[3]] == "long_kernel"]
    assert len(kept_long) == 3  # the longest of each step is kept
    assert tl.items_per_group == 2
    groups = tv._groups(work)
    assert len(tl.items) == sum(min(2, int((groups == g).sum())) for g in set(groups)) < len(work)


def test_short_names():
    assert tv.short_name("void at::native::(anonymous namespace)::k<4, float>(int, float)") == "at::native::k<…>"
    assert tv.short_name("Memcpy DtoH (Device -> Pageable)") == "Memcpy DtoH (Device -> Pageable)"
    assert tv.short_name("nvjet_sm90_hsh_64x8") == "nvjet_sm90_hsh_64x8"
    assert len(tv.short_name("x" * 300)) == tv.SHORT_NAME_CHARS


def test_summary_keeps_the_timeline_and_old_summaries_load(result, tmp_path):
    path = AnalysisSummary(result=result).write(tmp_path / "a.summary.json")
    assert load_analysis(path).timeline == result.timeline
    data = orjson.loads(path.read_bytes())
    del data["timeline"]
    path.write_bytes(orjson.dumps(data))
    assert load_analysis(path).timeline is None
    assert 'id="timeline"' not in analysis_html(load_analysis(path))  # no timeline: no section, no error


def _timeline_data(html: str) -> dict:
    block = re.search(r'<script type="application/json" id="tl-data">(.*?)</script>', html, re.S).group(1)
    assert "<" not in block  # |tojson: the block cannot close its element
    return orjson.loads(block)


def test_report_draws_the_timeline_and_escapes_names(tmp_path):
    r = analyze_tables(load_trace(_two_stream_trace(tmp_path, kernel=f"{EVIL}_gemm")), label=f"run {EVIL}")
    html = analysis_html(r)
    assert html.count('id="timeline"') == 1
    assert html.index('id="timeline"') < html.index('id="findings"')  # at the top
    assert EVIL not in html and "<img src=x" not in html
    assert "innerHTML" not in html
    data = _timeline_data(html)
    (panel,) = data["panels"]
    assert f"{EVIL}_gemm" in panel["data"]["names"]  # the full name, intact, as data
    assert panel["data"] == msgspec.json.decode(msgspec.json.encode(r.timeline))
    assert "ui.perfetto.dev" in html and "two_streams.json" in panel["open_hint"]


def test_compare_draws_a_above_b_on_one_scale(tmp_path, result):
    short = analyze_tables(load_trace(launch_bound_trace(steps=2).write(tmp_path / "b.json")), label="B")
    html = comparison_html(compare_results(result, short), "a", "b", result, short)
    data = _timeline_data(html)
    assert [p["title"] for p in data["panels"]] == [f"A: {result.label}", "B: B"]
    spans = [p["data"]["end_us"] - p["data"]["start_us"] for p in data["panels"]]
    assert data["span_us"] == pytest.approx(max(spans))
    assert html.index('id="timeline"') < html.index('id="findings"')
    # without the analyses (an older caller) the report has no timeline and still renders
    assert 'id="timeline"' not in comparison_html(compare_results(result, short), "a", "b")


def test_open_hint_names_the_file(result):
    assert "trace.json.gz" in open_hint(_with_path(result, "/runs/x/trace.json.gz", "kineto"))
    nsys = open_hint(_with_path(result, "/runs/x/run.sqlite", "nsys"))
    assert "run.nsys-rep" in nsys and "Nsight Systems" in nsys


def _with_path(r: AnalysisResult, path: str, fmt: str) -> AnalysisResult:

    return msgspec.structs.replace(r, trace=msgspec.structs.replace(r.trace, path=path, source_format=fmt))


@pytest.fixture(scope="module")
def h100_results() -> dict[str, AnalysisResult]:
    traces = sorted(H100.glob("*/trace.json.gz"))
    if not traces:
        pytest.skip(f"h100 corpus not found at {H100}")
    return {t.parent.name: analyze_tables(load_trace(t)) for t in traces}


def test_h100_timelines_match_and_stay_small(h100_results):
    for name, r in h100_results.items():
        _check_against_analysis(r)
        tl = r.timeline
        assert len(tl.steps) == (10 if "10steps" in name else 20)
        assert len(msgspec.json.encode(msgspec.to_builtins(tl))) < 200_000, name  # 8k kernels -> well under 200 KB
        assert len(tl.items) <= tl.items_per_group * (len(tl.steps) + 4)


def test_many_steps_stay_within_the_item_cap(tmp_path, monkeypatch):
    monkeypatch.setattr(tv, "KEEP_ALL_ITEMS", 0)
    monkeypatch.setattr(tv, "MAX_ITEMS", 10)
    r = analyze_tables(load_trace(launch_bound_trace(steps=12, kernels_per_step=4).write(tmp_path / "many.json")))
    tl = r.timeline
    assert len(tl.steps) == 12  # every step is still marked
    assert len(tl.items) <= 10 and len(tl.gaps) <= 10 + tv.MAX_GAPS
    assert tl.items_per_group == 1
    longest = max(item[2] for item in tl.items)
    assert longest == pytest.approx(float(load_trace(tmp_path / "many.json").kernels["dur"].max()))
