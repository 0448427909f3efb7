"""The GPU timeline: idle gaps and why they happen, launch latency, and host-blocking API calls.

Idle gaps are the holes between merged busy intervals (kernels, memcpys and memsets over all
streams). Each gap gets a **cause** from the work that ends it:

* ``after_sync``: a host synchronization (``cudaStreamSynchronize``, a blocking ``cudaMemcpy``, a copy
  to pageable memory...) was waiting when the GPU went idle and returned inside the gap: the host
  drained the queue, then had to issue new work;
* ``host``: the next work was launched after the GPU went idle (less :data:`LAUNCH_SLACK_US`): the
  GPU waited on the host, i.e. the loop is launch- or CPU-bound;
* ``queued``: the next work was already launched but started late (stream/event dependencies,
  scheduling);
* ``unknown``: no launch was recorded for the next work.

and a **where** from the stage/step of the work on both sides: inside a step, between steps,
inside another stage, between stages.
"""

from __future__ import annotations

import msgspec
import numpy as np

from profkit.analysis.attribution import OUTSIDE, PipelineWindows, label_times
from profkit.analysis.groups import Groups
from profkit.analysis.intervals import merge_blocks, union_length
from profkit.analysis.namecodes import per_name
from profkit.analysis.taxonomy import runtime_api_classes
from profkit.parsers.columns import (
    choose,
    counts,
    distinct,
    factorize,
    isin,
    median,
    object_column,
    pair_keys,
    percentiles,
)
from profkit.parsers.tables import Table, TraceTables

LAUNCH_SLACK_US = 5.0  # a launch this close before the GPU went idle still left it waiting
SYNC_SLACK_US = 5.0  # clock skew allowed between a sync call's return and the GPU going idle
SHORT_KERNEL_US = 10.0
STARVATION_GAP_US = 1000.0  # an idle gap this long inside a pipeline call is GPU starvation
LARGEST_GAPS = 10

CAUSE_LABELS = {
    "host": "waiting on the host (launch-bound)",
    "after_sync": "after a host synchronization",
    "queued": "work queued but not started (dependencies)",
    "unknown": "no launch recorded",
}


CAUSE_SHORT = {
    "host": "waiting on the host",
    "after_sync": "after a sync",
    "queued": "queued behind dependencies",
    "unknown": "no launch recorded",
}


class GapClass(msgspec.Struct):
    key: str
    label: str
    count: int
    total_us: float
    share: float  # of all idle time in the window
    largest_us: float


class GapRow(msgspec.Struct):
    start_us: float  # from the trace start
    length_us: float
    cause: str
    where: str
    stage_before: str
    stage_after: str
    step_after: int | None  # denoise step number of the work that ends the gap


class IdleGaps(msgspec.Struct):
    scope: str  # what the window covers
    window_us: float
    busy_us: float
    idle_us: float
    utilization: float
    count: int
    by_cause: list[GapClass] = []
    by_where: list[GapClass] = []
    largest: list[GapRow] = []
    starvation_threshold_us: float = STARVATION_GAP_US
    starvation_count: int = 0
    starvation_us: float = 0.0
    loop_window_us: float = 0.0  # first to last GPU work of the denoise stage
    loop_busy_us: float = 0.0
    loop_idle_by_cause: dict[str, float] = {}  # idle between denoise work, by cause


class LaunchStats(msgspec.Struct):
    kernels: int
    kernels_with_launch: int
    delay_p50_us: float | None  # kernel start - launch call start
    delay_p90_us: float | None
    delay_p99_us: float | None
    delay_max_us: float | None
    launch_call_p50_us: float | None  # host time spent inside the launch call
    short_kernel_share: float
    short_kernel_threshold_us: float = SHORT_KERNEL_US
    graph_launches: int = 0
    median_kernel_us: float | None = None


class ApiCall(msgspec.Struct):
    kind: str  # sync | memcpy_sync | memset_sync | pageable_copy
    name: str
    count: int
    total_us: float  # host time inside the calls
    by_stage: dict[str, int] = {}


class HostBlocking(msgspec.Struct):
    calls: list[ApiCall]  # host-blocking API calls, by name
    pageable_copies: int
    pageable_bytes: float
    pageable_us: float  # GPU time of those copies
    d2h_copies: int
    steps: int  # denoise steps in the trace
    steps_with_sync: int  # steps whose CPU range holds a host-blocking call
    steps_with_d2h: int  # steps that launched a device-to-host copy
    sync_us_per_step: float | None  # median host time blocked per step


def _percentile(values: np.ndarray, q: float) -> float | None:
    return float(percentiles(values, q)) if values.size else None


def launch_stats(tables: TraceTables, work: Table, api_kinds: np.ndarray | None = None) -> LaunchStats | None:
    # columns, not row copies of the work table (two of those were the analysis' memory peak on large exports)
    is_kernel = work["kind"] == "kernel"
    if not is_kernel.any():
        return None
    launch_ts = work["launch_ts"][is_kernel]
    launched = np.isfinite(launch_ts)
    delay = work["ts"][is_kernel][launched] - launch_ts[launched]
    kernel_durations = work["dur"][is_kernel]
    launch_calls = tables.launches
    kinds = runtime_api_classes(launch_calls["name"]) if api_kinds is None else api_kinds
    is_launch = kinds == "launch"
    launch_durations = launch_calls["dur"][is_launch]
    graph = int(per_name(launch_calls["name"], lambda name: "GraphLaunch" in name, False, dtype=bool)[is_launch].sum())
    return LaunchStats(
        kernels=int(is_kernel.sum()),
        kernels_with_launch=int(launched.sum()),
        delay_p50_us=_percentile(delay, 50),
        delay_p90_us=_percentile(delay, 90),
        delay_p99_us=_percentile(delay, 99),
        delay_max_us=float(delay.max()) if delay.size else None,
        launch_call_p50_us=_percentile(launch_durations, 50),
        short_kernel_share=float((kernel_durations < SHORT_KERNEL_US).mean()),
        graph_launches=graph,
        median_kernel_us=median(kernel_durations),
    )


def blocking_calls(tables: TraceTables, work: Table, api_kinds: np.ndarray | None = None) -> Table:
    """Host API calls that block until the GPU is done: syncs, blocking copies, copies to/from pageable memory."""
    calls = tables.launches
    if calls.empty:
        return calls.assign(kind=np.zeros(0, dtype=object))
    kinds = runtime_api_classes(calls["name"]) if api_kinds is None else api_kinds
    pageable_corr = work["correlation"][work["pageable"].astype(bool, copy=False)]
    pageable = isin(calls["correlation"], pageable_corr[pageable_corr >= 0]) & (kinds == "memcpy_async")
    kinds = np.where(pageable, "pageable_copy", kinds)
    blocking = isin(kinds, ["sync", "memcpy_sync", "memset_sync", "pageable_copy"])
    return calls[blocking].assign(kind=kinds[blocking])


def host_blocking(
    tables: TraceTables, work: Table, windows: PipelineWindows | None, blocking: Table | None = None
) -> HostBlocking:
    if blocking is None:
        blocking = blocking_calls(tables, work)
    stages = (
        label_times(blocking["ts"], windows)
        if windows is not None
        else (object_column(len(blocking), OUTSIDE), np.full(len(blocking), -1))
    )
    blocking = blocking.assign(stage=stages[0], step_row=stages[1])
    calls = []
    pair_codes, pairs = factorize(pair_keys(blocking["kind"], blocking["name"]))  # rows missing either: no group
    for pair in range(len(pairs)):  # in order of first appearance
        group = blocking[pair_codes == pair]
        # without profkit ranges there are no stages to count by
        stages = np.where(group["stage"] == OUTSIDE, "outside pipeline", group["stage"]).astype(object)
        by_stage = counts(stages) if windows else {}
        calls.append(
            ApiCall(
                str(group["kind"][0]),
                str(group["name"][0]),
                len(group),
                float(group["dur"].sum()),
                {str(k): int(v) for k, v in by_stage.items()},
            )
        )
    calls.sort(key=lambda call: -call.total_us)
    copies = work[work["pageable"].astype(bool, copy=False)]
    d2h = work[(work["kind"] == "memcpy") & (work["subcategory"] == "D2H")]
    steps = 0 if windows is None else len(windows.steps)
    sync_rows = blocking["step_row"]
    in_step = sync_rows >= 0
    per_step = np.bincount(sync_rows[in_step], weights=blocking["dur"][in_step], minlength=steps)[:steps]
    return HostBlocking(
        calls=calls,
        pageable_copies=len(copies),
        pageable_bytes=float(np.nansum(copies["bytes"])),
        pageable_us=float(copies["dur"].sum()),
        d2h_copies=len(d2h),
        steps=steps,
        steps_with_sync=len(distinct(sync_rows[in_step])),
        steps_with_d2h=len(distinct(d2h["step_row"][d2h["step_row"] >= 0])),
        sync_us_per_step=median(per_step) if steps else None,
    )


def _where(stage_before: str, stage_after: str, step_before: int, step_after: int) -> str:
    if step_before >= 0 and step_before == step_after:
        return "inside a denoise step"
    if stage_before == stage_after == "denoise":
        return "between denoise steps"
    if stage_before == stage_after and stage_before != OUTSIDE:
        return f"inside {stage_before}"
    if OUTSIDE in (stage_before, stage_after):
        return "outside pipeline calls"
    return "between stages"


def idle_gaps(
    tables: TraceTables, work: Table, windows: PipelineWindows | None, blocking: Table | None = None
) -> IdleGaps | None:
    if work.empty:
        return None
    # only the columns read here are narrowed to the scope (a copy of the whole work table would be the peak)
    scoped = work[["ts", "end", "launch_ts", "stage", "step_row"]]
    if windows is not None:
        in_pipeline = scoped["stage"] != OUTSIDE
        scope = "GPU work launched inside pipeline calls" if in_pipeline.any() else "whole trace"
        if in_pipeline.any() and not in_pipeline.all():
            scoped = scoped[in_pipeline]
    else:
        scope = "whole trace"
    starts, ends = scoped["ts"], scoped["end"]
    block_starts, block_ends, first_item, last_item = merge_blocks(starts, ends)
    window = float(block_ends.max() - block_starts.min())
    busy = float(np.sum(block_ends - block_starts))
    gap_start, gap_end = block_ends[:-1], block_starts[1:]
    lengths = gap_end - gap_start
    next_item, prev_item = first_item[1:], last_item[:-1]
    next_launch = scoped["launch_ts"][next_item]
    if blocking is None:
        blocking = blocking_calls(tables, work)
    cause = gap_causes(gap_start, gap_end, next_launch, blocking)

    stage = scoped["stage"]
    step_row = scoped["step_row"]
    where = np.array(
        [
            _where(stage[p], stage[n], step_row[p], step_row[n]) if windows is not None else "trace"
            for p, n in zip(prev_item, next_item, strict=True)
        ],
        dtype=object,
    )
    idle = float(lengths.sum())
    result = IdleGaps(
        scope=scope,
        window_us=window,
        busy_us=busy,
        idle_us=idle,
        utilization=busy / window if window > 0 else 1.0,
        count=int(lengths.size),
        by_cause=_classes(cause, lengths, idle, CAUSE_LABELS),
        by_where=_classes(where, lengths, idle, None),
    )
    denoise = stage == "denoise"
    if denoise.any():
        loop_starts, loop_ends = starts[denoise], ends[denoise]
        result.loop_window_us = float(loop_ends.max() - loop_starts.min())
        result.loop_busy_us = union_length(loop_starts, loop_ends)
        in_loop = (stage[prev_item] == "denoise") & (stage[next_item] == "denoise")
        for key in distinct(cause[in_loop]):
            result.loop_idle_by_cause[str(key)] = float(lengths[in_loop & (cause == key)].sum())
    starving = lengths >= STARVATION_GAP_US
    result.starvation_count = int(np.count_nonzero(starving))
    result.starvation_us = float(lengths[starving].sum())
    step_numbers = windows.steps["step"] if windows is not None else np.zeros(0, dtype=np.int64)
    for index in np.argsort(-lengths, kind="stable")[:LARGEST_GAPS]:
        after_row = int(step_row[next_item[index]])
        result.largest.append(
            GapRow(
                start_us=float(gap_start[index]),
                length_us=float(lengths[index]),
                cause=str(cause[index]),
                where=str(where[index]),
                stage_before=str(stage[prev_item[index]]) or "outside",
                stage_after=str(stage[next_item[index]]) or "outside",
                step_after=int(step_numbers[after_row]) if after_row >= 0 else None,
            )
        )
    return result


def gap_causes(gap_start: np.ndarray, gap_end: np.ndarray, next_launch: np.ndarray, blocking: Table) -> np.ndarray:
    """The cause key of each idle gap (see the module docstring), from the launch time of the work ending it."""
    cause = choose(np.isnan(next_launch), "unknown", "queued")
    cause[next_launch > gap_start - LAUNCH_SLACK_US] = "host"
    if len(blocking) and gap_start.size:
        order = np.argsort(blocking["end"], kind="stable")
        sync_end = blocking["end"][order]
        sync_start = blocking["ts"][order]
        # any blocking call that returned inside the gap and was already waiting when it began (a pageable copy
        # followed by a sync: the copy spans the gap start, the sync returns last)
        lo = np.searchsorted(sync_end, gap_start - SYNC_SLACK_US, side="left")
        hi = np.searchsorted(sync_end, gap_end, side="right")
        for gap in np.flatnonzero(hi > lo):
            if sync_start[lo[gap] : hi[gap]].min() <= gap_start[gap] + SYNC_SLACK_US:
                cause[gap] = "after_sync"
    return cause


def _classes(keys: np.ndarray, lengths: np.ndarray, idle: float, labels: dict[str, str] | None) -> list[GapClass]:
    if not lengths.size:
        return []
    groups = Groups(keys, lengths)
    largest = groups.extreme(lengths, np.maximum, -np.inf)
    by_key = groups.by_key()
    return [  # largest total first, ties in key order
        GapClass(
            key=str(groups.keys[group]),
            label=(labels or {}).get(str(groups.keys[group]), str(groups.keys[group])),
            count=int(groups.count[group]),
            total_us=float(groups.total[group]),
            share=float(groups.total[group]) / idle if idle else 0.0,
            largest_us=float(largest[group]),
        )
        for group in by_key[np.argsort(-groups.total[by_key], kind="stable")].tolist()
    ]
