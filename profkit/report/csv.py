"""CSV exports of a benchmark: one row per trial (raw), one row per configuration and metric (statistics)."""

from __future__ import annotations

import csv
import io

from profkit.model.bench import BenchResult, BenchSummary

STAT_COLUMNS = ("count", "mean", "std", "cv", "min", "p50", "p90", "p95", "p99", "max")
TRIAL_COLUMNS = (
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
)


def trials_csv(result: BenchResult) -> str:
    """One row per trial, warm-ups excluded (they are in the JSON), failed trials included with their error."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(TRIAL_COLUMNS)
    for config in result.configs:
        for trial in config.trials:
            writer.writerow(
                [
                    config.name,
                    config.dtype,
                    config.batch,
                    trial.round,
                    trial.order,
                    trial.ok,
                    trial.error or "",
                    trial.e2e_ms,
                    trial.inference_ms,
                    trial.stage_ms.get("text_encoder"),
                    trial.stage_ms.get("vae"),
                    ";".join(f"{s:.3f}" for s in trial.steps_ms),
                    trial.peak_allocated_mb,
                    trial.range_timer,
                ]
            )
    return buffer.getvalue()


def stats_csv(summary: BenchSummary) -> str:
    """Each configuration's statistics per metric, with its throughput and cost."""
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
