"""CSV exports: of a benchmark, one row per trial (raw) and per configuration and metric (statistics); of an
analysis, one row per stage and per denoise step with its GPU projection (span, busy inside it, overlaps)."""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING

from profkit.model.bench import BenchResult, BenchSummary

if TYPE_CHECKING:
    from profkit.analysis.projection import Projection
    from profkit.analysis.summary import AnalysisResult

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


PROJECTION_COLUMNS = (
    "gpu_start_us",
    "gpu_end_us",
    "gpu_span_us",
    "gpu_busy_us",
    "gpu_busy_share_of_span",
    "gpu_lag_us",
    "gpu_overlap_prev_us",
    "gpu_overlap_next_us",
)


def _projected(projection: Projection | None) -> list[float | None]:
    if projection is None:
        return [None] * len(PROJECTION_COLUMNS)
    p = projection
    return [p.start_us, p.end_us, p.span_us, p.busy_us, p.busy_share, p.lag_us, p.overlap_prev_us, p.overlap_next_us]


def stages_csv(result: AnalysisResult) -> str:
    """One row per pipeline stage: CPU wall time and share, and the stage projected onto the GPU."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["stage", "wall_us", "share", "calls", "gpu_kernel_sum_us", *PROJECTION_COLUMNS])
    for stage in result.view.stages:
        row = [stage.stage, stage.wall_us, stage.share, stage.calls, stage.gpu_kernel_sum_us]
        writer.writerow([*row, *_projected(stage.projection)])
    return buffer.getvalue()


def steps_csv(result: AnalysisResult) -> str:
    """One row per denoise step: wall, denoiser and scheduler time, graph replays and the step's GPU projection."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(
        [
            "call",
            "step",
            "wall_us",
            "denoiser_us",
            "scheduler_us",
            "denoiser_gpu_us",
            "scheduler_gpu_us",
            "graph_launches",
            *PROJECTION_COLUMNS,
        ]
    )
    for step in result.view.steps:
        writer.writerow(
            [
                step.call,
                step.step,
                step.wall_us,
                step.denoiser_us,
                step.scheduler_us,
                step.denoiser_gpu_us,
                step.scheduler_gpu_us,
                step.graph_launches,
                *_projected(step.projection),
            ]
        )
    return buffer.getvalue()
