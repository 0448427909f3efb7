"""Documents -> self-contained HTML: analysis, comparison and bench reports (``templates/``, autoescaped, data
embedded with ``|tojson``, no network)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import msgspec

from profkit import __version__
from profkit.analysis.bench.stats import MIN_SAMPLES, PERCENTILES
from profkit.analysis.bench.summary import METRICS, metric_samples
from profkit.analysis.compare import ComparisonResult
from profkit.analysis.summary import AnalysisResult
from profkit.analysis.timeline import CAUSE_LABELS
from profkit.model.bench import BenchResult, BenchSummary
from profkit.report.charts import distribution_chart, line_chart, step_chart
from profkit.report.jinja import render
from profkit.report.timeline_html import timeline_context

STAGE_COLORS = {
    "text_encoder": "#7a5af8",
    "denoise": "#3866d6",
    "vae": "#e07b24",
    "safety_checker": "#d92d20",
    "other": "#98a2b3",
}


def common_context() -> dict[str, Any]:
    return {
        "profkit_version": __version__,
        "generated_at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def _total_label(result: AnalysisResult) -> str:
    if result.view.has_ranges:
        return "pipeline wall time"
    if result.gpu is not None:
        return "GPU active window (no profkit ranges)"
    return "CPU operator self time (no profkit ranges)"


def device_label(names: list[str]) -> str:
    """``["A100", "A100", "H100"]`` -> ``"2× A100, H100"``."""
    counts: dict[str, int] = {}
    for name in names:
        counts[name] = counts.get(name, 0) + 1
    return ", ".join(f"{count}× {name}" if count > 1 else name for name, count in counts.items())


def analysis_html(result: AnalysisResult) -> str:
    chart = step_chart([[s.wall_us for s in result.view.steps]], [result.label]) if result.view.steps else None
    return render(
        "analysis.html.j2",
        r=result,
        run=result.run,
        total_label=_total_label(result),
        stage_colors=STAGE_COLORS,
        step_chart=chart,
        cause_labels=CAUSE_LABELS,
        device_label=device_label(result.trace.devices),
        data={key: value for key, value in result.to_dict().items() if key != "timeline"},  # it is in tl-data
        timelines=timeline_context([(result.label, result)], STAGE_COLORS),
        **common_context(),
    )


def comparison_html(
    comparison: ComparisonResult,
    path_a: str,
    path_b: str,
    result_a: AnalysisResult | None = None,
    result_b: AnalysisResult | None = None,
) -> str:
    """The comparison report; with the two analyses, their timelines (A above B)."""
    chart = None
    if comparison.steps:
        chart = step_chart(
            [[row.a_us or 0.0 for row in comparison.steps], [row.b_us or 0.0 for row in comparison.steps]],
            [f"A: {comparison.label_a}", f"B: {comparison.label_b}"],
        )
    return render(
        "compare.html.j2",
        c=comparison,
        path_a=path_a,
        path_b=path_b,
        step_chart=chart,
        data=comparison.to_dict(),
        timelines=timeline_context(
            [(f"A: {comparison.label_a}", result_a), (f"B: {comparison.label_b}", result_b)], STAGE_COLORS
        ),
        **common_context(),
    )


def bench_html(result: BenchResult, summary: BenchSummary) -> str:
    distribution = distribution_chart({c.name: metric_samples(c)["e2e_ms"] for c in result.configs})
    steps = [c for c in summary.configs if c.per_step_p50_ms]
    step_bars = (
        step_chart([[v * 1000 for v in c.per_step_p50_ms] for c in steps[:2]], [c.name for c in steps[:2]])
        if steps
        else None
    )
    samples = result.samples
    utilization = memory = None
    if samples.t:
        series = {"process CPU %": list(samples.cpu_percent)}
        if samples.gpu_util:
            series = {"GPU utilization %": [_nan(v) for v in samples.gpu_util], **series}
        utilization = line_chart(list(samples.t), series, "%", list(samples.label))
        memory = line_chart(list(samples.t), {"process RSS (MB)": list(samples.rss_mb)}, "MB")
    return render(
        "bench.html.j2",
        r=result,
        s=summary,
        metrics=METRICS,
        percentiles=PERCENTILES,
        min_samples=MIN_SAMPLES,
        distribution=distribution,
        step_chart=step_bars,
        step_chart_names=[c.name for c in steps[:2]],
        utilization=utilization,
        memory=memory,
        data={"summary": summary.to_dict(), "settings": msgspec.to_builtins(result.settings)},
        **common_context(),
    )


def _nan(value: float | None) -> float:
    return float("nan") if value is None else value
