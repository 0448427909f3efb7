"""CUDA graph replays: how many per step, what share of GPU time they ran, and the idle between them.

A ``cudaGraphLaunch`` (``cuGraphLaunch``) replays a whole captured graph; Kineto gives every kernel and copy of the
replay the correlation id of that one launch call, so :func:`~profkit.analysis.attribution.gpu_work` already puts
them in the step of the launch. Here: the replays themselves (their GPU span and busy time), the share of all GPU
busy time they account for, and the GPU idle from the end of one replay to the start of the next (what the steps
still lose around the graphs) with the host-blocking calls and ``.item()``-style operators issued in between,
which name the sync that holds the next replay back.
"""

from __future__ import annotations

import re
from collections import Counter

import msgspec
import numpy as np

from profkit.analysis.attribution import PipelineWindows, label_times
from profkit.analysis.intervals import merge, union_length
from profkit.analysis.namecodes import name_match
from profkit.parsers.columns import isin
from profkit.parsers.tables import Table, TraceTables

GRAPH_LAUNCH = re.compile(r"^(cuda|cu)GraphLaunch(_v\d+)?$")
#: runtime calls that block the host until the GPU is done
SYNC_CALL = re.compile(r"^(cuda|cu)(Stream|Device|Event|Ctx)Synchronize(_v\d+)?$")
#: operators that read a device value on the host (``tensor.item()``): each one waits for the GPU
SYNC_OP = re.compile(r"^aten::(_local_scalar_dense|item|is_nonzero|nonzero)$")


class GraphStep(msgspec.Struct):
    call: int
    step: int
    launches: int  # graph replays launched inside the step
    replayed_us: float  # union of the GPU work of those replays
    idle_before_us: float  # GPU idle between the previous replay and the first one of this step


class GraphReplays(msgspec.Struct):
    """The CUDA graph replays of a trace (``launches == 0``: no graphs were used)."""

    launches: int
    replayed_items: int  # kernels, copies and memsets run by replays
    replay_busy_us: float  # union of replayed work
    gpu_busy_us: float  # union of all GPU work
    replay_share: float  # replay_busy / gpu_busy
    launches_in_steps: int
    steps: list[GraphStep] = []
    idle_between_us: float = 0.0  # GPU idle from each replay's end to the next replay's start (same call)
    gaps_between: int = 0
    sync_calls_between: dict[str, int] = {}  # blocking runtime call -> count
    sync_ops_between: dict[str, int] = {}  # host-reading operator -> count
    sync_ranges: dict[str, int] = {}  # range kind (scheduler, unet ...) of those syncs
    steps_wall_us: float = 0.0  # CPU wall time of the step ranges
    idle_in_steps_us: float = 0.0  # GPU idle inside the step ranges (wall less the union of all GPU work in them)

    @property
    def sync_call(self) -> str:
        return max(self.sync_calls_between, key=self.sync_calls_between.__getitem__, default="")

    @property
    def sync_op(self) -> str:
        return max(self.sync_ops_between, key=self.sync_ops_between.__getitem__, default="")

    @property
    def sync_range(self) -> str:
        return max(self.sync_ranges, key=self.sync_ranges.__getitem__, default="")


def _innermost_kind(times: np.ndarray, windows: PipelineWindows | None) -> list[str]:
    """The kind of the shortest profkit range holding each time (``unet``/``scheduler``/``step`` ...)."""
    if windows is None or not len(times):
        return ["" for _ in times]
    ranges = windows.ranges
    starts, ends, durs = ranges["ts"], ranges["end"], ranges["dur"]
    kinds = ranges["kind"]
    result = []
    for time in times:
        inside = np.flatnonzero((starts <= time) & (time <= ends))
        result.append(str(kinds[inside[np.argmin(durs[inside])]]) if inside.size else "")
    return result


def graph_replays(tables: TraceTables, work: Table, windows: PipelineWindows | None) -> GraphReplays | None:
    """The graph replays of a GPU trace, or ``None`` without GPU activity or launch records."""
    launches = tables.launches
    if not len(work) or not len(launches):
        return None
    graph = launches[name_match(launches["name"], GRAPH_LAUNCH)]
    graph = graph.sorted_by("ts")
    work_ts, work_end = work["ts"], work["end"]
    all_busy = union_length(work_ts, work_end)
    correlation = work["correlation"].astype(np.float64, copy=False)
    replayed = isin(correlation, graph["correlation"].astype(np.float64, copy=False)) & (correlation >= 0)
    replay_busy = union_length(work_ts[replayed], work_end[replayed])
    busy = _Busy(work_ts, work_end)
    result = GraphReplays(
        launches=len(graph),
        replayed_items=int(replayed.sum()),
        replay_busy_us=replay_busy,
        gpu_busy_us=all_busy,
        replay_share=replay_busy / all_busy if all_busy else 0.0,
        launches_in_steps=0,
    )
    if windows is not None and len(windows.steps):
        steps = windows.steps
        result.steps_wall_us = float(steps["dur"].sum())
        result.idle_in_steps_us = sum(busy.idle(a, b) for a, b in steps.rows("ts", "end"))
    if graph.empty:
        return result
    # each replay's GPU span (first start, last end of the work it ran), in launch order
    corr_ids, first = np.unique(correlation[replayed], return_inverse=True)
    span_start = np.full(corr_ids.size, np.inf)
    span_end = np.full(corr_ids.size, -np.inf)
    np.minimum.at(span_start, first, work_ts[replayed])
    np.maximum.at(span_end, first, work_end[replayed])
    graph_ts, graph_corr = graph["ts"], graph["correlation"].astype(np.float64, copy=False)
    at = np.minimum(np.searchsorted(corr_ids, graph_corr), max(corr_ids.size - 1, 0))
    ran = (corr_ids[at] == graph_corr) & (graph_corr >= 0) if corr_ids.size else np.zeros(len(graph), dtype=bool)
    spans = [
        (launch_ts, float(span_start[i]), float(span_end[i]))
        for launch_ts, i, ok in zip(graph_ts.tolist(), at.tolist(), ran.tolist(), strict=True)
        if ok
    ]
    step_rows = label_times(graph_ts, windows)[1] if windows is not None else np.full(len(graph), -1)
    result.launches_in_steps = int((step_rows >= 0).sum())
    _between(result, spans, tables, busy, windows)
    if windows is not None and len(windows.steps):
        _per_step(result, graph, step_rows, spans, work, busy, correlation, windows)
    return result


class _Busy:
    """The union of all GPU work as sorted disjoint blocks, to measure idle time in any window without rescanning
    every item (block lengths clipped to the window are the ones a union of the clipped items would give)."""

    def __init__(self, starts: np.ndarray, ends: np.ndarray) -> None:
        self.starts, self.ends = merge(starts, ends)

    def idle(self, start: float, end: float) -> float:
        """GPU idle inside ``[start, end)``: its length less the union of all work clipped to it."""
        if end <= start:
            return 0.0
        first = np.searchsorted(self.ends, start, side="right")  # blocks ending after start ...
        stop = np.searchsorted(self.starts, end, side="left")  # ... and starting before end
        inside = slice(first, max(first, stop))
        busy = float(np.sum(np.minimum(self.ends[inside], end) - np.maximum(self.starts[inside], start)))
        return max(end - start - busy, 0.0)


def _matching(frame: Table, pattern: re.Pattern[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sorted times of the rows whose name matches, their table-order positions, and their names in table order."""
    rows = frame[name_match(frame["name"], pattern)]
    ts = rows["ts"].astype(np.float64, copy=False)
    order = np.argsort(ts, kind="stable")
    return ts[order], order, rows["name"]


def _within(found: tuple[np.ndarray, np.ndarray, np.ndarray], low: float, high: float) -> np.ndarray:
    """Table-order positions of the rows of ``found`` with ``low < ts < high``."""
    sorted_ts, order, _ = found
    return np.sort(order[np.searchsorted(sorted_ts, low, side="right") : np.searchsorted(sorted_ts, high, side="left")])


def _between(
    result: GraphReplays,
    spans: list[tuple[float, float, float]],
    tables: TraceTables,
    busy: _Busy,
    windows: PipelineWindows | None,
) -> None:
    """Idle between consecutive replays of one pipeline call, and the syncs issued between their launches."""
    pipeline = windows.pipeline if windows is not None else (np.array([-np.inf]), np.array([np.inf]))
    call_starts = np.searchsorted(pipeline[0], [launch for launch, _, _ in spans], side="right") - 1
    calls, ops, kinds = Counter(), Counter(), Counter()
    sync_launches = _matching(tables.launches, SYNC_CALL)
    sync_launch_ts = np.empty_like(sync_launches[0])
    sync_launch_ts[sync_launches[1]] = sync_launches[0]  # back in table order
    sync_ops = _matching(tables.cpu_ops, SYNC_OP)
    for (launch_a, _, end_a), (launch_b, start_b, _), call_a, call_b in zip(
        spans, spans[1:], call_starts, call_starts[1:], strict=False
    ):
        if call_a != call_b:
            continue
        result.idle_between_us += busy.idle(end_a, start_b)
        result.gaps_between += 1
        found_calls = _within(sync_launches, launch_a, launch_b)
        found_ops = _within(sync_ops, launch_a, launch_b)
        calls.update(str(name) for name in sync_launches[2][found_calls])
        ops.update(str(name) for name in sync_ops[2][found_ops])
        kinds.update(kind for kind in _innermost_kind(sync_launch_ts[found_calls], windows) if kind)
    # aten::item wraps aten::_local_scalar_dense: name the innermost one
    if "aten::_local_scalar_dense" in ops:
        ops.pop("aten::item", None)
    result.sync_calls_between = dict(calls.most_common())
    result.sync_ops_between = dict(ops.most_common())
    result.sync_ranges = dict(kinds.most_common())


def _per_step(
    result: GraphReplays,
    graph: Table,
    step_rows: np.ndarray,
    spans: list[tuple[float, float, float]],
    work: Table,
    all_work: _Busy,
    correlation: np.ndarray,
    windows: PipelineWindows,
) -> None:
    span_of_launch = {launch: (start, end) for launch, start, end in spans}
    work_ts, work_end = work["ts"], work["end"]
    previous_end: dict[int, float] = {}
    steps = windows.steps
    for row in range(len(steps)):
        mine = step_rows == row
        launch_ts = graph["ts"][mine].tolist()
        corrs = graph["correlation"].astype(np.float64, copy=False)[mine]
        replay = isin(correlation, corrs) & (correlation >= 0)
        busy = union_length(work_ts[replay], work_end[replay])
        call = int(steps["call"][row])
        idle_before = 0.0
        own = [span_of_launch[ts] for ts in launch_ts if ts in span_of_launch]
        if own and call in previous_end:
            idle_before = all_work.idle(previous_end[call], min(start for start, _ in own))
        if own:
            previous_end[call] = max(end for _, end in own)
        result.steps.append(GraphStep(call, int(steps["step"][row]), int(mine.sum()), busy, idle_before))
