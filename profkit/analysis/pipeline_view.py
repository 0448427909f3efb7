"""Stages and denoise steps from profkit ranges, and GPU work attributed to them.

Wall time comes from the CPU-side ranges. On GPU traces each kernel/memcpy is attributed to the
stage and step whose CPU range contains its *launch* (joined on the correlation id), which is
where the work was issued; GPU busy time per stage is the union of the attributed intervals.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from profkit import naming
from profkit.analysis.intervals import locate, merge, union_length
from profkit.analysis.stats import Summary, summarize
from profkit.parsers.tables import TraceTables


@dataclass
class StageRow:
    stage: str
    wall_us: float
    share: float  # of pipeline wall time
    calls: int
    gpu_busy_us: float | None = None  # union of GPU work launched inside the stage
    gpu_kernel_sum_us: float | None = None


@dataclass
class StepRow:
    call: int
    step: int
    wall_us: float
    denoiser_us: float
    scheduler_us: float
    denoiser_calls: int
    gpu_busy_us: float | None = None


@dataclass
class PipelineView:
    has_ranges: bool
    pipeline_calls: int
    total_us: float  # wall time of the pipeline call(s)
    total_source: str  # "pipeline range" | "span of profkit ranges" | "none"
    stages: list[StageRow] = field(default_factory=list)
    steps: list[StepRow] = field(default_factory=list)
    step_stats: Summary | None = None
    steps_per_call: list[int] = field(default_factory=list)
    gpu_unattributed_share: float | None = None  # of GPU busy time not launched inside a stage


def _classified_ranges(tables: TraceTables) -> pd.DataFrame:
    ranges = tables.ranges
    cpu = ranges[~ranges["on_gpu"] & ranges["name"].str.startswith(naming.PREFIX, na=False)]
    if cpu.empty:
        return cpu.assign(stage=pd.Series(dtype="string"), kind=pd.Series(dtype="string"), step=[])
    infos = [naming.parse_range_name(name) for name in cpu["name"]]
    keep = [info is not None for info in infos]
    cpu = cpu[keep].copy()
    infos = [info for info in infos if info is not None]
    cpu["stage"] = [info.stage for info in infos]
    cpu["kind"] = [info.kind for info in infos]
    cpu["step"] = [info.step for info in infos]
    return cpu.sort_values("ts", kind="stable").reset_index(drop=True)


def _launch_times(tables: TraceTables) -> tuple[pd.DataFrame, np.ndarray]:
    """GPU work (kernels + memops) with the timestamp of its launch (NaN when not correlated)."""
    work = pd.concat(
        [tables.kernels[["ts", "end", "dur", "correlation"]], tables.memops[["ts", "end", "dur", "correlation"]]],
        ignore_index=True,
    )
    launches = tables.launches
    launch_ts = pd.Series(np.nan, index=work.index)
    if not launches.empty and not work.empty:
        by_correlation = launches[launches["correlation"] >= 0].drop_duplicates("correlation")
        mapping = pd.Series(by_correlation["ts"].to_numpy(), index=by_correlation["correlation"].to_numpy())
        launch_ts = work["correlation"].map(mapping)
    return work, launch_ts.to_numpy(dtype=np.float64)


def build_pipeline_view(tables: TraceTables) -> PipelineView:
    ranges = _classified_ranges(tables)
    if ranges.empty:
        return PipelineView(has_ranges=False, pipeline_calls=0, total_us=0.0, total_source="none")

    pipelines = ranges[ranges["kind"] == "pipeline"]
    if not pipelines.empty:
        p_starts, p_ends = merge(pipelines["ts"].to_numpy(), pipelines["end"].to_numpy())
        total_source = "pipeline range"
    else:
        p_starts = np.array([ranges["ts"].min()])
        p_ends = np.array([ranges["end"].max()])
        total_source = "span of profkit ranges"
    total = float(np.sum(p_ends - p_starts))

    gpu = tables.has_gpu_activity
    work, launch_ts = _launch_times(tables) if gpu else (pd.DataFrame(), np.zeros(0))
    attributed = np.zeros(len(work), dtype=bool)

    stage_rows: list[StageRow] = []
    named_total = 0.0
    stage_kinds = {
        "text_encoder": ("text_encoder",),
        "denoise": ("step",),
        "vae": ("vae",),
        "safety_checker": ("safety_checker",),
    }
    for stage in naming.STAGES:
        if stage == "other":
            continue
        rows = ranges[(ranges["stage"] == stage) & ranges["kind"].isin(stage_kinds[stage])]
        if rows.empty:
            continue
        s_starts, s_ends = merge(rows["ts"].to_numpy(), rows["end"].to_numpy())
        wall = float(np.sum(s_ends - s_starts))
        named_total += wall
        row = StageRow(stage, wall, wall / total if total else 0.0, len(rows))
        if gpu:
            inside = locate(launch_ts, s_starts, s_ends) >= 0
            attributed |= inside
            row.gpu_busy_us = union_length(work["ts"].to_numpy()[inside], work["end"].to_numpy()[inside])
            row.gpu_kernel_sum_us = float(work["dur"].to_numpy()[inside].sum())
        stage_rows.append(row)
    other = max(total - named_total, 0.0)
    other_row = StageRow("other", other, other / total if total else 0.0, 0)
    if gpu:
        inside_pipeline = (locate(launch_ts, p_starts, p_ends) >= 0) & ~attributed
        other_row.gpu_busy_us = union_length(
            work["ts"].to_numpy()[inside_pipeline], work["end"].to_numpy()[inside_pipeline]
        )
        other_row.gpu_kernel_sum_us = float(work["dur"].to_numpy()[inside_pipeline].sum())
    stage_rows.append(other_row)

    steps = _step_rows(ranges, p_starts, p_ends, work, launch_ts if gpu else None)
    view = PipelineView(
        has_ranges=True,
        pipeline_calls=len(p_starts) if not pipelines.empty else 0,
        total_us=total,
        total_source=total_source,
        stages=stage_rows,
        steps=steps,
        step_stats=summarize([s.wall_us for s in steps]),
        steps_per_call=[sum(1 for s in steps if s.call == c) for c in sorted({s.call for s in steps})],
    )
    if gpu and len(work):
        all_busy = union_length(work["ts"].to_numpy(), work["end"].to_numpy())
        attributed_busy = union_length(work["ts"].to_numpy()[attributed], work["end"].to_numpy()[attributed])
        view.gpu_unattributed_share = 1 - attributed_busy / all_busy if all_busy else 0.0
    return view


def _step_rows(
    ranges: pd.DataFrame,
    p_starts: np.ndarray,
    p_ends: np.ndarray,
    work: pd.DataFrame,
    launch_ts: np.ndarray | None,
) -> list[StepRow]:
    step_ranges = ranges[ranges["kind"] == "step"]
    if step_ranges.empty:
        return []
    calls = locate(step_ranges["ts"].to_numpy(), p_starts, p_ends)
    children = ranges[ranges["kind"].isin(["denoiser", "scheduler"])]
    child_starts = children["ts"].to_numpy()
    rows = []
    for (_, step), call in zip(step_ranges.iterrows(), calls, strict=True):
        in_step = (child_starts >= step["ts"]) & (child_starts < step["end"])
        kids = children[in_step]
        denoiser = kids[kids["kind"] == "denoiser"]
        scheduler = kids[kids["kind"] == "scheduler"]
        row = StepRow(
            call=int(max(call, 0)),
            step=int(step["step"]),
            wall_us=float(step["dur"]),
            denoiser_us=float(denoiser["dur"].sum()),
            scheduler_us=float(scheduler["dur"].sum()),
            denoiser_calls=len(denoiser),
        )
        if launch_ts is not None and len(work):
            inside = (launch_ts >= step["ts"]) & (launch_ts <= step["end"])
            row.gpu_busy_us = union_length(work["ts"].to_numpy()[inside], work["end"].to_numpy()[inside])
        rows.append(row)
    return rows
