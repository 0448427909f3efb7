"""The whole-export view of a large nsys export: the SQL totals give what the full per-event analysis gives.

The same export is analyzed twice: read whole (every event in the tables) and read with a detail limit (the
first calls in the tables, SQL totals for the rest). The whole-export numbers of the second must equal the
trace-wide numbers of the first; its detailed views cover only the window, and say so.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from profkit.analysis import analyze_tables
from profkit.model.analysis import AnalysisSummary, load_analysis
from profkit.naming import PIPELINE
from profkit.parsers.nsys import load_nsys_sqlite
from profkit.parsers.tables import DetailLimit
from profkit.report.html import analysis_html
from tests.nsysbuilder import PER_CALL, nsys_calls


@pytest.fixture(scope="module")
def analyses(tmp_path_factory: pytest.TempPathFactory):
    builder = nsys_calls(6)
    builder.kernel("<img src=x onerror=alert(1)>", 10, 12, 1)  # a hostile name, in the first call's window
    path = builder.write(tmp_path_factory.mktemp("whole") / "calls.sqlite")
    full = analyze_tables(load_nsys_sqlite(path))
    part = analyze_tables(load_nsys_sqlite(path, detail=DetailLimit(3 * PER_CALL + 1, PIPELINE)))
    return full, part


def test_whole_export_numbers_equal_the_full_analysis(analyses) -> None:
    full, part = analyses
    whole = part.whole
    assert full.whole is None and whole is not None and full.gpu is not None
    assert whole.kernel_count == full.gpu.kernel_count
    assert whole.memop_count == full.gpu.memop_count
    assert whole.kernel_sum_us == pytest.approx(full.gpu.kernel_sum_us, rel=1e-12)
    assert whole.busy_us == pytest.approx(full.gpu.busy_us, rel=1e-12)
    assert whole.span_us == pytest.approx(full.gpu.window_us, rel=1e-12)
    assert whole.utilization == pytest.approx(full.gpu.utilization, rel=1e-12)
    assert full.kernels is not None
    expected = {(r.name, r.category, r.count, r.tensor_core, r.precision) for r in full.kernels.rows}
    assert {(r.name, r.category, r.count, r.tensor_core, r.precision) for r in whole.kernels.rows} == expected
    by_name = {r.name: r for r in full.kernels.rows}
    for row in whole.kernels.rows:
        reference = by_name[row.name]
        np.testing.assert_allclose(
            [row.total_us, row.mean_us, row.min_us, row.max_us, row.share],
            [reference.total_us, reference.mean_us, reference.min_us, reference.max_us, reference.share],
            rtol=1e-12,
        )
    assert [(c.category, c.count) for c in whole.kernels.categories] == [
        (c.category, c.count) for c in full.kernels.categories
    ]
    assert whole.kernels.distinct_names == full.kernels.distinct_names


def test_calls_steps_and_stages_cover_every_call(analyses) -> None:
    full, part = analyses
    whole = part.whole
    assert whole is not None and whole.calls is not None
    assert whole.window.calls == part.view.pipeline_calls == 3
    assert whole.window.calls_total == whole.calls.count == full.view.pipeline_calls == 6
    assert whole.step_count == len(full.view.steps)
    assert whole.step_mean_us == pytest.approx(full.view.step_stats.mean)
    durations = [100 + 3 * 170 + 200 + call * 7 for call in range(6)]  # as :func:`nsys_calls` builds them
    assert (whole.calls.min_us, whole.calls.p50_us, whole.calls.max_us) == pytest.approx(
        (min(durations), float(np.median(durations)), max(durations))
    )
    assert whole.calls.mean_us * 6 == pytest.approx(full.view.total_us)
    stages = {s.stage: s.total_us for s in whole.stages}
    assert set(stages) == {"text_encoder", "denoise", "vae"}
    assert stages["denoise"] == pytest.approx(whole.step_mean_us * whole.step_count)


def test_detailed_views_cover_the_window_and_say_so(analyses) -> None:
    full, part = analyses
    whole = part.whole
    assert whole is not None and part.gpu is not None and full.gpu is not None
    assert part.gpu.kernel_count + part.gpu.memop_count == whole.window.gpu_events == 3 * PER_CALL + 1
    assert len(part.view.steps) == len(full.view.steps) // 2
    assert 0 < whole.window.kernel_time_share < 0.5  # the later calls are the slower ones
    assert part.notes[0].startswith("Large export:") and "first 3 of 6 pipeline calls" in part.notes[0]


def test_the_summary_document_keeps_the_whole_export(analyses, tmp_path: Path) -> None:
    _, part = analyses
    path = AnalysisSummary(result=part).write(tmp_path / "part.summary.json")
    assert load_analysis(path) == part


def test_the_report_shows_the_whole_export_escaped(analyses) -> None:
    full, part = analyses
    html = analysis_html(part)
    assert 'id="whole-export"' in html and 'id="whole-export"' not in analysis_html(full)
    assert "first 3 of 6 pipeline calls" in html
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
