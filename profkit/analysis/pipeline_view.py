"""Stages and denoise steps from profkit ranges, and GPU work attributed to them.

Wall time comes from the CPU-side ranges. On GPU traces each kernel/memcpy is attributed to a stage
and step by :mod:`profkit.analysis.attribution` (launch correlation, else GPU-side annotation);
GPU busy time per stage is the union of the attributed intervals, and each stage and step is projected onto the
GPU (:mod:`profkit.analysis.projection`: first-to-last GPU activity it launched). ``profkit/...`` ranges whose
names do not parse are counted (``ignored_ranges``) and named in the analysis notes (:func:`view_notes`), never
dropped silently.
"""

from __future__ import annotations

import msgspec
import numpy as np

from profkit import naming
from profkit.analysis.attribution import STAGE_KINDS, PipelineWindows, unparsed_ranges
from profkit.analysis.intervals import union_length
from profkit.analysis.projection import Projection, link_neighbours, project
from profkit.analysis.stats import Summary, summarize
from profkit.parsers.columns import counts, isin
from profkit.parsers.tables import Table, TraceTables


class StageRow(msgspec.Struct):
    stage: str
    wall_us: float
    share: float  # of pipeline wall time
    calls: int
    gpu_busy_us: float | None = None  # union of GPU work launched inside the stage
    gpu_kernel_sum_us: float | None = None
    gpu_utilization: float | None = None  # GPU busy / stage wall time (work may run after the range ends)
    projection: Projection | None = None  # the stage's GPU work: span, busy inside it, overlap with neighbours


class StepRow(msgspec.Struct):
    call: int
    step: int
    wall_us: float
    denoiser_us: float
    scheduler_us: float
    denoiser_calls: int
    gpu_busy_us: float | None = None
    # GPU busy time (union) of the work launched inside the step's denoiser / scheduler ranges: what each costs on the
    # GPU, where the CPU ranges also hold the host's waits (a scheduler's .item() waits for the whole step's kernels)
    denoiser_gpu_us: float | None = None
    scheduler_gpu_us: float | None = None
    projection: Projection | None = None  # the step's GPU work: span, busy inside it, overlap with neighbours
    graph_launches: int | None = None  # CUDA graph replays launched inside the step (GPU traces)


class PipelineView(msgspec.Struct):
    has_ranges: bool
    pipeline_calls: int
    total_us: float  # wall time of the pipeline call(s)
    total_source: str  # "pipeline range" | "span of profkit ranges" | "none"
    stages: list[StageRow] = []
    steps: list[StepRow] = []
    step_stats: Summary | None = None
    steps_per_call: list[int] = []
    gpu_unattributed_share: float | None = None  # of GPU busy time not launched inside a stage
    gpu_attribution: dict[str, int] = {}  # method (launch|gpu_annotation|none) -> count
    ignored_ranges: int = 0  # ``profkit/...`` ranges whose names do not parse: in no stage or step
    ignored_range_names: list[str] = []  # the most frequent of their names


#: how many names of ignored ranges a view keeps, and how many characters of each
IGNORED_NAMES_KEPT, IGNORED_NAME_CHARS = 3, 80


def _shortened(name: str) -> str:
    return name if len(name) <= IGNORED_NAME_CHARS else name[: IGNORED_NAME_CHARS - 3] + "..."


def _union(work: Table, mask: np.ndarray) -> float:
    return union_length(work["ts"][mask], work["end"][mask])


def build_pipeline_view(tables: TraceTables, windows: PipelineWindows | None, work: Table) -> PipelineView:
    """Stage and step wall times from ``windows``; GPU time per stage/step from the attributed ``work``."""
    unparsed = unparsed_ranges(tables.ranges)
    ignored = {
        "ignored_ranges": sum(unparsed.values()),
        "ignored_range_names": [_shortened(name) for name in list(unparsed)[:IGNORED_NAMES_KEPT]],
    }
    if windows is None:
        return PipelineView(has_ranges=False, pipeline_calls=0, total_us=0.0, total_source="none", **ignored)
    p_starts, p_ends = windows.pipeline
    total = float(np.sum(p_ends - p_starts))
    gpu = tables.has_gpu_activity and len(work) > 0
    stage_of_work = work["stage"] if gpu else np.zeros(0, dtype=object)

    stage_rows: list[StageRow] = []
    named_total = 0.0
    for stage in naming.STAGES:
        if stage == "other" or stage not in windows.stages:
            continue
        s_starts, s_ends = windows.stages[stage]
        wall = float(np.sum(s_ends - s_starts))
        named_total += wall
        kinds = STAGE_KINDS[stage]
        calls = int(((windows.ranges["stage"] == stage) & isin(windows.ranges["kind"], kinds)).sum())
        row = StageRow(stage, wall, wall / total if total else 0.0, calls)
        if gpu:
            _add_gpu(row, work, stage_of_work == stage, float(s_ends[-1]))
        stage_rows.append(row)
    other = max(total - named_total, 0.0)
    other_row = StageRow("other", other, other / total if total else 0.0, 0)
    if gpu:
        _add_gpu(other_row, work, stage_of_work == "other", float(p_ends[-1]))
        link_neighbours([row.projection for row in stage_rows])  # "other" is scattered: no neighbour of anything
    stage_rows.append(other_row)

    steps = _step_rows(windows, work if gpu else None)
    view = PipelineView(
        has_ranges=True,
        pipeline_calls=windows.pipeline_calls,
        total_us=total,
        total_source=windows.pipeline_source,
        stages=stage_rows,
        steps=steps,
        step_stats=summarize([s.wall_us for s in steps]),
        steps_per_call=[sum(1 for s in steps if s.call == c) for c in sorted({s.call for s in steps})],
        **ignored,
    )
    if gpu:
        all_busy = _union(work, np.ones(len(work), dtype=bool))
        named = isin(stage_of_work, [s for s in windows.stages])
        view.gpu_unattributed_share = 1 - _union(work, named) / all_busy if all_busy else 0.0
        view.gpu_attribution = {str(k): v for k, v in counts(work["attributed_by"]).items()}
    return view


def _add_gpu(row: StageRow, work: Table, mask: np.ndarray, cpu_end_us: float) -> None:
    row.gpu_busy_us = _union(work, mask)
    row.projection = project(work["ts"][mask], work["end"][mask], cpu_end_us)
    row.gpu_kernel_sum_us = float(work["dur"][mask].sum())
    row.gpu_utilization = row.gpu_busy_us / row.wall_us if row.wall_us > 0 else None


def _step_rows(windows: PipelineWindows, work: Table | None) -> list[StepRow]:
    steps = windows.steps
    if steps.empty:
        return []
    children = windows.ranges[isin(windows.ranges["kind"], ["denoiser", "scheduler"])]
    child_starts = children["ts"]
    step_rows_of_work = work["step_row"] if work is not None else None
    launch_ts = work["launch_ts"].astype(np.float64, copy=False) if work is not None else None
    if step_rows_of_work is not None:  # each step's work rows (ascending), found once: no full-table mask per step
        order = np.argsort(step_rows_of_work, kind="stable")
        bounds = np.searchsorted(step_rows_of_work[order], np.arange(len(steps) + 1))
    rows = []
    for index, (step_ts, step_end, step_dur, step_number, call) in enumerate(
        steps.rows("ts", "end", "dur", "step", "call")
    ):
        in_step = (child_starts >= step_ts) & (child_starts < step_end)
        kids = children[in_step]
        denoiser = kids[kids["kind"] == "denoiser"]
        scheduler = kids[kids["kind"] == "scheduler"]
        row = StepRow(
            call=int(call),
            step=int(step_number),
            wall_us=float(step_dur),
            denoiser_us=float(denoiser["dur"].sum()),
            scheduler_us=float(scheduler["dur"].sum()),
            denoiser_calls=len(denoiser),
        )
        if step_rows_of_work is not None:
            mask = order[bounds[index] : bounds[index + 1]]
            row.gpu_busy_us = _union(work, mask)
            row.projection = project(work["ts"][mask], work["end"][mask], float(step_end))
            row.denoiser_gpu_us = _launched_in(work, mask, launch_ts, denoiser)
            row.scheduler_gpu_us = _launched_in(work, mask, launch_ts, scheduler)
        rows.append(row)
    for call in {row.call for row in rows}:
        link_neighbours([row.projection for row in rows if row.call == call])
    return rows


def _launched_in(work: Table, mask: np.ndarray, launch_ts: np.ndarray, ranges: Table) -> float:
    """GPU busy time (union) of the step's work (rows ``mask``) launched inside one of ``ranges`` (CPU ranges)."""
    launched = launch_ts[mask]
    inside = np.zeros(mask.shape, dtype=bool)
    for start, end in ranges.rows("ts", "end"):
        inside |= (launched >= start) & (launched < end)
    return _union(work, mask[inside])


def view_notes(view: PipelineView) -> list[str]:
    """What the stage and step views left out, for the analysis notes."""
    if not view.ignored_ranges:
        return []
    names = ", ".join(repr(name) for name in view.ignored_range_names)
    return [
        f"ignored {view.ignored_ranges} profkit ranges whose names do not parse (such as {names}): "
        "their time is in no stage or step"
    ]
