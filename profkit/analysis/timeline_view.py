"""The timeline the reports draw: pipeline calls, stages, denoise steps, GPU busy density per stream, idle gaps.

A compact document (:class:`TimelineView`): busy time is binned (``bins`` equal bins over the window), so its size
does not grow with the trace; for zooming, the kernels and copies themselves are kept only up to
:data:`ITEMS_PER_GROUP` longest per denoise step (and per stage outside the steps), each with a short name and
its full name. Times are microseconds on the trace's time base (``start_us`` is where the drawing begins).
"""

from __future__ import annotations

import re

import msgspec
import numpy as np

from profkit.analysis.attribution import OUTSIDE, STAGE_KINDS, PipelineWindows
from profkit.analysis.groups import Groups
from profkit.analysis.intervals import merge, merge_blocks
from profkit.analysis.pipeline_view import PipelineView
from profkit.analysis.timeline import CAUSE_SHORT, gap_causes
from profkit.parsers.columns import distinct, factorize, isin, pair_keys
from profkit.parsers.tables import Table, TraceTables

BINS = 600  # busy-density bins over the whole window
ITEMS_PER_GROUP = 60  # longest kernels/copies kept per denoise step (and per stage outside steps)
KEEP_ALL_ITEMS = 2000  # traces with at most this much GPU work keep every item
MAX_ITEMS = 6000  # kernels/copies (and idle gaps) kept at most, however many steps a trace has
MAX_GAPS = 200  # longest idle gaps kept over the whole window (besides the longest per group)
MAX_RANGES = 2000  # denoiser/scheduler ranges kept
SHORT_NAME_CHARS = 48
DIGITS = 2  # microsecond rounding of the stored times

ALL_STREAMS = -1  # stream of the lane that merges every stream


class Span(msgspec.Struct):
    label: str
    start_us: float
    dur_us: float
    step: int = -1  # denoise step number (step spans)
    call: int = -1  # pipeline call index (step spans)
    gpu_busy_us: float | None = None  # GPU work launched inside it (step spans)


class Lane(msgspec.Struct):
    stream: int  # ALL_STREAMS for the union of every stream
    device: int
    busy_us: float  # union of the lane's work inside the window
    bins: list[float]  # busy µs per bin


class TimelineView(msgspec.Struct):
    start_us: float
    end_us: float
    bin_us: float
    calls: list[Span] = []
    stages: list[Span] = []
    steps: list[Span] = []
    ranges: list[Span] = []  # denoiser, scheduler and other ranges inside stages
    lanes: list[Lane] = []  # the all-streams lane first, then one per stream
    # idle gaps between GPU work in the pipeline calls: [start, duration, cause key of CAUSE_SHORT], the longest
    # per denoise step (and per stage outside the steps) and the longest overall
    gaps: list[tuple[float, float, str]] = []
    gap_count: int = 0  # all of them
    gap_us_by_cause: dict[str, float] = {}
    cause_labels: dict[str, str] = {}
    # kept kernels/copies: [lane index, start, duration, name index]; names short and full by index
    items: list[tuple[int, float, float, int]] = []
    short_names: list[str] = []
    names: list[str] = []
    item_count: int = 0  # all kernels/copies in the trace
    items_per_group: int = ITEMS_PER_GROUP


_OPENING = re.compile(r"(?<=\S)[<(]")  # a template argument list or a parameter list (not "Memcpy HtoD (...)")


def short_name(name: str, limit: int = SHORT_NAME_CHARS) -> str:
    """A kernel name without its return type, template arguments and parameters, at most ``limit`` characters."""
    short = name.replace("(anonymous namespace)::", "").removeprefix("void ").strip()
    opening = _OPENING.search(short)
    if opening is not None and opening.start() > 0:
        short = short[: opening.start()] + ("<…>" if opening.group() == "<" else "")
    short = short or name
    return short if len(short) <= limit else short[: limit - 1] + "…"


def _round(value: float) -> float:
    return round(float(value), DIGITS)


def _cumulative_busy(starts: np.ndarray, ends: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Busy time of disjoint sorted intervals before each point."""
    if starts.size == 0:
        return np.zeros(points.size)
    before = np.concatenate([[0.0], np.cumsum(ends - starts)])
    index = np.searchsorted(starts, points, side="right") - 1
    inside = np.where(index >= 0, np.clip(points - starts[np.maximum(index, 0)], 0, None), 0.0)
    inside = np.minimum(inside, np.where(index >= 0, ends[np.maximum(index, 0)] - starts[np.maximum(index, 0)], 0.0))
    return np.where(index >= 0, before[np.maximum(index, 0)] + inside, 0.0)


def _lane(stream: int, device: int, starts: np.ndarray, ends: np.ndarray, edges: np.ndarray) -> Lane:
    merged_starts, merged_ends = merge(np.clip(starts, edges[0], edges[-1]), np.clip(ends, edges[0], edges[-1]))
    busy = np.diff(_cumulative_busy(merged_starts, merged_ends, edges))
    return Lane(stream, device, _round(np.sum(merged_ends - merged_starts)), [_round(v) for v in busy])


def _window(windows: PipelineWindows | None, work: Table, tables: TraceTables) -> tuple[float, float] | None:
    starts: list[float] = []
    ends: list[float] = []
    if windows is not None:
        starts.append(float(windows.pipeline[0].min()))
        ends.append(float(windows.pipeline[1].max()))
    if len(work):
        starts.append(float(work["ts"].min()))
        ends.append(float(work["end"].max()))
    if not starts and len(tables.cpu_ops):
        starts.append(float(tables.cpu_ops["ts"].min()))
        ends.append(float(tables.cpu_ops["end"].max()))
    if not starts or max(ends) <= min(starts):
        return None
    return min(starts), max(ends)


def _spans(windows: PipelineWindows, view: PipelineView) -> dict[str, list[Span]]:
    calls = [Span("pipeline call", _round(s), _round(e - s)) for s, e in zip(*windows.pipeline, strict=True)]
    stages = [
        Span(stage, _round(s), _round(e - s))
        for stage, (starts, ends) in windows.stages.items()
        for s, e in zip(starts, ends, strict=True)
    ]
    stages.sort(key=lambda span: span.start_us)
    busy = [row.gpu_busy_us for row in view.steps] if len(view.steps) == len(windows.steps) else []
    steps = [
        Span(
            f"step {int(step)}",
            _round(ts),
            _round(dur),
            step=int(step),
            call=int(call),
            gpu_busy_us=busy[index] if busy else None,
        )
        for index, (step, ts, dur, call) in enumerate(windows.steps.rows("step", "ts", "dur", "call"))
    ]
    stage_kinds = {kind for kinds in STAGE_KINDS.values() for kind in kinds}
    inner = windows.ranges[~isin(windows.ranges["kind"], [*stage_kinds, "pipeline", *STAGE_KINDS])]
    if len(inner) > MAX_RANGES:  # the longest, in time order
        inner = inner[np.argsort(-inner["dur"], kind="stable")[:MAX_RANGES]].sorted_by("ts")
    ranges = [
        Span(str(kind), _round(ts), _round(dur), step=int(step))
        for kind, ts, dur, step in inner.rows("kind", "ts", "dur", "step")
    ]
    return {"calls": calls, "stages": stages, "steps": steps, "ranges": ranges}


def _groups(work: Table) -> np.ndarray:
    """The zoom group of each work item as an integer: its denoise step row (>= 0), else -1 - its stage's code."""
    step_row = work["step_row"]
    stage_codes = factorize(work["stage"])[0] + 1  # a missing stage (-1) is a group of its own
    return np.where(step_row >= 0, step_row, -1 - stage_codes).astype(np.int64)


def per_group_limit(groups: np.ndarray, per_group: int) -> int:
    """``per_group``, lowered so that all groups together keep at most about :data:`MAX_ITEMS`."""
    count = max(len(distinct(groups)), 1)
    return max(1, min(per_group, MAX_ITEMS // count))


def _longest(lengths: np.ndarray, groups: np.ndarray, per_group: int, limit: int | None = None) -> np.ndarray:
    """Sorted indices of the ``per_group`` longest of each group (at most :data:`MAX_ITEMS` in all); ``limit``:
    the per-group limit when already computed."""
    limit = per_group_limit(groups, per_group) if limit is None else limit
    ranked = np.argsort(-lengths, kind="stable")  # longest first, ties in their order
    codes = factorize(groups[ranked])[0]
    by_group = np.argsort(codes, kind="stable")
    counts = np.bincount(codes)
    rank = np.empty(len(ranked), dtype=np.int64)
    rank[by_group] = np.arange(len(ranked)) - np.repeat(np.cumsum(counts) - counts, counts)
    return np.sort(ranked[rank < limit][:MAX_ITEMS])


def _kept_items(work: Table, groups: np.ndarray, limit: int) -> Table:
    if len(work) <= KEEP_ALL_ITEMS:
        return work
    return work[_longest(work["dur"], groups, 0, limit)]


def _gaps(work: Table, blocking: Table, per_group: int) -> tuple[list, int, dict[str, float]]:
    in_pipeline = work["stage"] != OUTSIDE
    scoped = work[["ts", "end", "launch_ts", "stage", "step_row"]]
    scoped = scoped[in_pipeline] if in_pipeline.any() else scoped
    block_starts, block_ends, first_item, _ = merge_blocks(scoped["ts"], scoped["end"])
    gap_start, gap_end = block_ends[:-1], block_starts[1:]
    next_launch = scoped["launch_ts"][first_item[1:]]
    cause = gap_causes(gap_start, gap_end, next_launch, blocking)
    lengths = gap_end - gap_start
    totals = {str(key): _round(lengths[cause == key].sum()) for key in distinct(cause)}
    if lengths.size > KEEP_ALL_ITEMS:
        longest = np.argsort(-lengths, kind="stable")[:MAX_GAPS]
        kept = distinct(np.concatenate([longest, _longest(lengths, _groups(scoped)[first_item[1:]], per_group)]))
    else:
        kept = np.arange(lengths.size)
    gaps = [(_round(gap_start[i]), _round(lengths[i]), str(cause[i])) for i in kept]
    return gaps, int(lengths.size), totals


def build_timeline(
    tables: TraceTables,
    windows: PipelineWindows | None,
    work: Table,
    view: PipelineView,
    blocking: Table,
    items_per_group: int = ITEMS_PER_GROUP,
    bins: int = BINS,
) -> TimelineView | None:
    """The timeline of one analyzed trace, or ``None`` when it has neither profkit ranges nor any events."""
    window = _window(windows, work, tables)
    if window is None:
        return None
    start, end = window
    edges = np.linspace(start, end, bins + 1)
    timeline = TimelineView(_round(start), _round(end), (end - start) / bins, items_per_group=items_per_group)
    timeline.cause_labels = dict(CAUSE_SHORT)
    if windows is not None:
        for name, spans in _spans(windows, view).items():
            setattr(timeline, name, spans)
    if len(work):
        starts, ends = work["ts"], work["end"]
        timeline.lanes.append(_lane(ALL_STREAMS, -1, starts, ends, edges))
        # one lane per (device, stream), sorted
        lanes = Groups(pair_keys(work["device"], work["stream"]), work["dur"])
        first = lanes.first_rows()
        devices, streams = work["device"][first].tolist(), work["stream"][first].tolist()
        lane_of: dict[tuple[int, int], int] = {}
        for device, stream, code in sorted(zip(devices, streams, range(len(first)), strict=True)):
            mask = lanes.codes == code
            lane_of[(int(device), int(stream))] = len(timeline.lanes)
            timeline.lanes.append(_lane(int(stream), int(device), starts[mask], ends[mask], edges))
        if len(work) > KEEP_ALL_ITEMS:
            groups = _groups(work)
            timeline.items_per_group = per_group_limit(groups, items_per_group)
            kept = _kept_items(work, groups, timeline.items_per_group)
        else:
            kept = work
        kept = kept[["device", "stream", "ts", "dur", "name"]].sorted_by("ts")
        names = list(dict.fromkeys(kept["name"].tolist()))
        index = {name: i for i, name in enumerate(names)}
        timeline.names = [str(name) for name in names]
        timeline.short_names = [short_name(name) for name in timeline.names]
        timeline.items = [
            (lane_of[(int(device), int(stream))], _round(ts), _round(dur), index[name])
            for device, stream, ts, dur, name in kept.rows("device", "stream", "ts", "dur", "name")
        ]
        timeline.item_count = len(work)
        timeline.gaps, timeline.gap_count, timeline.gap_us_by_cause = _gaps(work, blocking, items_per_group)
    return timeline
