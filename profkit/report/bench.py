"""Benchmark outputs: the HTML report, CSV exports, and their chart geometry."""

from __future__ import annotations

import csv
import io
from typing import Any

from profkit.analysis.bench.stats import MIN_SAMPLES, PERCENTILES
from profkit.analysis.bench.summary import METRICS, BenchSummary, metric_samples
from profkit.report.charts import distribution_chart, line_chart, step_chart
from profkit.report.html import common_context
from profkit.report.jinja import render

STAT_COLUMNS = ("count", "mean", "std", "cv", "min", "p50", "p90", "p95", "p99", "max")


def trials_csv(result: dict[str, Any]) -> str:
    """One row per trial, warm-ups excluded (they are in the JSON), failed trials included with their error."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(
        [
            "config",
            "dtype",
            "batch",
            "round",
            "order",
            "ok",
            "error",
            "e2e_ms",
            "inference_ms",
            "text_encoder_ms",
            "vae_ms",
            "steps_ms",
            "peak_allocated_mb",
            "range_timer",
        ]
    )
    for config in result.get("configs", []):
        for trial in config.get("trials", []):
            stage = trial.get("stage_ms", {})
            writer.writerow(
                [
                    config["name"],
                    config["dtype"],
                    config["batch"],
                    trial["round"],
                    trial["order"],
                    trial["ok"],
                    trial.get("error") or "",
                    trial.get("e2e_ms"),
                    trial.get("inference_ms"),
                    stage.get("text_encoder"),
                    stage.get("vae"),
                    ";".join(f"{s:.3f}" for s in trial.get("steps_ms", [])),
                    trial.get("peak_allocated_mb"),
                    trial.get("range_timer"),
                ]
            )
    return buffer.getvalue()


def stats_csv(summary: BenchSummary) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(
        [
            "config",
            "metric",
            *STAT_COLUMNS,
            "median_ci_low",
            "median_ci_high",
            "median_ci_level",
            "images_per_s",
            "usd_per_1000_images",
        ]
    )
    for config in summary.configs:
        for metric, stats in config.metrics.items():
            if stats is None:
                continue
            low, high = stats.median_ci or (None, None)
            writer.writerow(
                [
                    config.name,
                    metric,
                    *(getattr(stats, column) for column in STAT_COLUMNS),
                    low,
                    high,
                    stats.median_ci_level,
                    config.images_per_s,
                    config.cost.usd_per_1000_images if config.cost else None,
                ]
            )
    return buffer.getvalue()


def bench_html(result: dict[str, Any], summary: BenchSummary) -> str:
    configs = result.get("configs", [])
    distribution = distribution_chart({c["name"]: metric_samples(c)["e2e_ms"] for c in configs})
    steps = [c for c in summary.configs if c.per_step_p50_ms]
    step_bars = (
        step_chart([[v * 1000 for v in c.per_step_p50_ms] for c in steps[:2]], [c.name for c in steps[:2]])
        if steps
        else None
    )
    samples = result.get("samples", {})
    utilization = None
    if samples.get("t"):
        series = {"process CPU %": samples.get("cpu_percent", [])}
        if samples.get("gpu_util"):
            series = {"GPU utilization %": samples["gpu_util"], **series}
        utilization = line_chart(samples["t"], series, "%", samples.get("label"))
    memory = (
        line_chart(samples["t"], {"process RSS (MB)": samples.get("rss_mb", [])}, "MB") if samples.get("t") else None
    )
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
        data={"summary": summary.to_dict(), "settings": result.get("settings")},
        **common_context(),
    )
