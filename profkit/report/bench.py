"""The benchmark HTML report (``bench.html.j2``) and its chart geometry, from the typed result and summary."""

from __future__ import annotations

import msgspec

from profkit.analysis.bench.stats import MIN_SAMPLES, PERCENTILES
from profkit.analysis.bench.summary import METRICS, metric_samples
from profkit.model.bench import BenchResult, BenchSummary
from profkit.report.charts import distribution_chart, line_chart, step_chart
from profkit.report.html import common_context
from profkit.report.jinja import render


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
