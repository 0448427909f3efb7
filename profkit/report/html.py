"""Documents -> self-contained HTML: analysis, comparison and bench reports (``templates/``, autoescaped, data
embedded with ``|tojson``, no network)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import msgspec

from profkit import __version__
from profkit.analysis.findings.model import Finding
from profkit.analysis.summary import AnalysisResult
from profkit.analysis.timeline import CAUSE_LABELS
from profkit.report.charts import distribution_chart, line_chart, step_chart
from profkit.report.jinja import plural, render
from profkit.report.timeline_html import timeline_context
from profkit.report.verdict import CI_LABEL, bench_verdict, group_caveats, step_speedup_ci

if TYPE_CHECKING:  # type names only: analyzing a trace does not load the comparison and bench modules
    from profkit.analysis.compare import ComparisonResult
    from profkit.model.bench import BenchResult, BenchSummary

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
        label = "pipeline wall time"
    elif result.gpu is not None:
        label = "GPU active window (no profkit ranges)"
    else:
        label = "CPU operator self time (no profkit ranges)"
    if result.whole is not None and result.whole.window.calls_total:
        window = result.whole.window
        return f"{label}, first {window.calls} of {plural(window.calls_total, 'pipeline call')}"
    return label


def device_label(names: list[str]) -> str:
    """``["A100", "A100", "H100"]`` -> ``"2× A100, H100"``."""
    counts: dict[str, int] = {}
    for name in names:
        counts[name] = counts.get(name, 0) + 1
    return ", ".join(f"{count}× {name}" if count > 1 else name for name, count in counts.items())


def top_finding(result: AnalysisResult) -> Finding | None:
    """The finding with the most recoverable time (else the first, most severe one), or ``None``."""
    with_impact = [f for f in result.findings if f.impact is not None]
    if with_impact:
        return max(with_impact, key=lambda f: f.impact.recoverable_ms)
    return result.findings[0] if result.findings else None


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
        top_finding=top_finding(result),
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
    # the verdict reads speed first (with its numbers), then what happened to the images
    speed, quality = comparison.verdict, None
    if comparison.quality is not None and speed.endswith(f"; {comparison.quality.phrase}"):
        speed, quality = speed[: -len(comparison.quality.phrase) - 2], comparison.quality.phrase
    return render(
        "compare.html.j2",
        c=comparison,
        verdict_speed=speed,
        verdict_quality=quality,
        path_a=path_a,
        path_b=path_b,
        step_chart=chart,
        step_ci=_step_ci(comparison),
        ci_label=CI_LABEL,
        data=comparison.to_dict(),
        timelines=timeline_context(
            [(f"A: {comparison.label_a}", result_a), (f"B: {comparison.label_b}", result_b)], STAGE_COLORS
        ),
        **common_context(),
    )


def _step_ci(comparison: ComparisonResult) -> tuple[float, float, float] | None:
    """The median step's speedup A/B with its bootstrap CI, over the steps both sides ran."""
    pairs = [(row.a_us, row.b_us) for row in comparison.steps if row.a_us and row.b_us]
    return step_speedup_ci([a for a, _ in pairs], [b for _, b in pairs]) if pairs else None


def bench_html(result: BenchResult, summary: BenchSummary, quality: Any = None) -> str:
    """The bench report; ``quality`` (a QualityDocument) adds the image-quality verdicts and a link to quality.html."""
    from profkit.analysis.bench.stats import MIN_SAMPLES, PERCENTILES  # imported for a bench report only
    from profkit.analysis.bench.summary import METRICS, metric_samples

    distribution = distribution_chart({c.name: metric_samples(c)["e2e_ms"] for c in result.configs})
    steps = [c for c in summary.configs if c.per_step_p50_ms]
    step_bars = (
        step_chart([[v * 1000 for v in c.per_step_p50_ms] for c in steps[:2]], [c.name for c in steps[:2]])
        if steps
        else None
    )
    samples = result.samples
    charts = []
    if samples.t:
        started = [t.started_s for c in result.configs for t in c.trials if t.ok]
        t, labels, start = list(samples.t), list(samples.label), min(started) if started else None
        if samples.gpu_util:
            gpu = [_nan(v) for v in samples.gpu_util]
            charts.append(line_chart(t, {"GPU utilization (%)": gpu}, "GPU utilization, %", labels, start_s=start))
        cpu = list(samples.cpu_percent)
        charts.append(line_chart(t, {"process CPU (% of one core)": cpu}, "CPU, % of one core", labels, start_s=start))
        charts.append(line_chart(t, {"process RSS (MB)": list(samples.rss_mb)}, "RSS, MB", labels, start_s=start))
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
        charts=charts,
        verdict=bench_verdict(result, summary),
        quality=quality,
        caveats=group_caveats(summary.warnings),
        data={"summary": summary.to_dict(), "settings": msgspec.to_builtins(result.settings)},
        **common_context(),
    )


def _nan(value: float | None) -> float:
    return float("nan") if value is None else value
