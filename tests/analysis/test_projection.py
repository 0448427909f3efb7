"""GPU projection of stages and steps (issue 11, point 2): on built traces and on the real H100 captures."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from profkit.analysis.summary import AnalysisResult, analyze_tables
from profkit.parsers.kineto import parse_kineto_document
from profkit.report import analysis_html
from profkit.report.csv import PROJECTION_COLUMNS, stages_csv, steps_csv
from tests.analysis.h100raw import CAPTURES, COMPILED, FP32, analyzed, raw, spans, union
from tests.tracebuilder import GEMM_F16, TraceBuilder


def analyze(builder: TraceBuilder) -> AnalysisResult:
    return analyze_tables(parse_kineto_document(builder.document(), Path("fixture.json")))


def late_vae_trace() -> TraceBuilder:
    """Two steps whose kernels overlap on the GPU, and a VAE range of 100 us whose kernels run 600 us later."""
    builder = TraceBuilder()
    builder.range("profkit/pipeline", 0, 2000)
    builder.range("profkit/denoise/step_000", 0, 100)
    builder.kernel(GEMM_F16, 10, 20, 150)  # step 0 runs 20-170 (past its range end, 100)
    builder.range("profkit/denoise/step_001", 100, 100)
    builder.kernel(GEMM_F16, 110, 150, 100)  # step 1: 150-250, overlapping step 0's projection by 20 us
    builder.kernel(GEMM_F16, 120, 300, 50)  # 300-350: a hole of 50 us in step 1's span
    builder.range("profkit/vae/decode", 400, 100)
    builder.kernel(GEMM_F16, 410, 500, 300)  # 500-800
    builder.kernel(GEMM_F16, 420, 900, 300)  # 900-1200
    return builder


def test_projection_of_a_late_stage_is_its_gpu_span_not_busy_over_wall() -> None:
    result = analyze(late_vae_trace())
    vae = next(s for s in result.view.stages if s.stage == "vae")
    assert vae.gpu_utilization == pytest.approx(6.0)  # busy 600 us over a 100 us CPU range: what users misread
    p = vae.projection
    assert (p.start_us, p.end_us, p.span_us, p.busy_us) == pytest.approx((500, 1200, 700, 600))
    assert p.busy_share == pytest.approx(600 / 700)
    assert p.lag_us == pytest.approx(1200 - 500)
    assert p.work_items == 2


def test_step_projections_overlap_their_neighbours() -> None:
    result = analyze(late_vae_trace())
    first, second = (step.projection for step in result.view.steps)
    assert (first.start_us, first.end_us, first.busy_us) == pytest.approx((20, 170, 150))
    assert (second.start_us, second.end_us, second.span_us, second.busy_us) == pytest.approx((150, 350, 200, 150))
    assert first.overlap_next_us == pytest.approx(20) and second.overlap_prev_us == pytest.approx(20)
    assert first.overlap_prev_us == 0 and second.overlap_next_us == 0
    denoise = next(s for s in result.view.stages if s.stage == "denoise")
    vae = next(s for s in result.view.stages if s.stage == "vae")
    assert denoise.projection.overlap_next_us == 0 and vae.projection.overlap_prev_us == 0  # 20-350 vs 500-1200


@pytest.mark.parametrize("name", CAPTURES)
def test_h100_step_projections_match_the_raw_events(name: str) -> None:
    result, events = analyzed(name), raw(name)
    steps = events.steps()
    assert len(result.view.steps) == len(steps)
    previous_end = None
    for row, step in zip(result.view.steps, steps, strict=True):
        mine = events.launched_in(step["ts"], step["ts"] + step["dur"])
        start, end = min(i["ts"] for i in mine), max(i["ts"] + i["dur"] for i in mine)
        p = row.projection
        assert p.work_items == len(mine)
        assert p.span_us == pytest.approx(end - start, abs=0.01)
        assert p.busy_us == pytest.approx(union(spans(mine)), abs=0.01)
        assert p.lag_us == pytest.approx(end - (step["ts"] + step["dur"]), abs=0.01)
        assert 0 < p.busy_share <= 1
        expected_overlap = max(0.0, previous_end - start) if previous_end is not None else 0.0
        assert p.overlap_prev_us == pytest.approx(expected_overlap, abs=0.01)
        previous_end = end


@pytest.mark.parametrize("name", [FP32, COMPILED])
def test_h100_stage_projections_match_the_raw_events(name: str) -> None:
    result, events = analyzed(name), raw(name)
    for stage in ("text_encoder", "denoise", "vae"):
        prefix = f"profkit/{stage}/"
        ranges = [r for r in events.ranges if r["name"].startswith(prefix) and r["name"].count("/") == 2]
        mine = {id(i): i for r in ranges for i in events.launched_in(r["ts"], r["ts"] + r["dur"])}
        items = list(mine.values())
        row = next(s for s in result.view.stages if s.stage == stage)
        start, end = min(i["ts"] for i in items), max(i["ts"] + i["dur"] for i in items)
        assert row.projection.span_us == pytest.approx(end - start, abs=0.01)
        assert row.projection.busy_us == pytest.approx(union(spans(items)), abs=0.01)
        assert row.projection.busy_share <= 1


def test_reports_show_the_projection() -> None:
    result = analyzed(COMPILED)
    html = analysis_html(result)
    assert "GPU busy / wall" not in html and "Busy in span" in html and "Graph replays" in html
    stages = list(csv.DictReader(io.StringIO(stages_csv(result))))
    assert [row["stage"] for row in stages] == [s.stage for s in result.view.stages]
    assert set(PROJECTION_COLUMNS) <= set(stages[0])
    steps = list(csv.DictReader(io.StringIO(steps_csv(result))))
    assert len(steps) == 10 and {row["graph_launches"] for row in steps} == {"1"}
    for row, step in zip(steps, result.view.steps, strict=True):
        assert float(row["gpu_span_us"]) == pytest.approx(step.projection.span_us)
    assert result.to_dict()["view"]["steps"][0]["projection"]["span_us"] == pytest.approx(
        result.view.steps[0].projection.span_us
    )


@pytest.mark.parametrize("name", [FP32, COMPILED])
def test_h100_step_gpu_time_per_denoiser_and_scheduler_match_the_raw_events(name: str) -> None:
    """The per-step table shows what the denoiser and the scheduler cost on the GPU, not the host's waits in them."""
    result, events = analyzed(name), raw(name)
    for row, step in zip(result.view.steps, events.steps(), strict=True):
        start, end = step["ts"], step["ts"] + step["dur"]
        kids = [r for r in events.ranges if start <= r["ts"] < end and r["name"].count("/") == 3]
        for kind, measured in (("scheduler", row.scheduler_gpu_us), ("unet", row.denoiser_gpu_us)):
            mine = {
                id(i): i
                for r in kids
                if r["name"].endswith(kind)
                for i in events.launched_in(r["ts"], r["ts"] + r["dur"])
            }
            assert measured == pytest.approx(union(spans(list(mine.values()))), abs=0.01)
        assert row.denoiser_gpu_us + row.scheduler_gpu_us <= row.gpu_busy_us + 0.01
    if name == COMPILED:  # the scheduler's range holds the host's wait for the replayed graph: ~10 ms CPU, ~20 us GPU
        step = result.view.steps[0]
        assert step.scheduler_us > 100 * step.scheduler_gpu_us and step.denoiser_gpu_us > 0.9 * step.gpu_busy_us
    html = analysis_html(result)
    assert "Scheduler GPU" in html and "Denoiser GPU" in html
    steps = list(csv.DictReader(io.StringIO(steps_csv(result))))
    assert float(steps[0]["scheduler_gpu_us"]) == pytest.approx(result.view.steps[0].scheduler_gpu_us)
