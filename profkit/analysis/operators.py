"""Where the time goes by kernel / CPU operator and by category, and GPU busy-time truth."""

from __future__ import annotations

import msgspec
import numpy as np

from profkit.analysis.groups import Groups
from profkit.analysis.intervals import gaps, union_length
from profkit.analysis.namecodes import factorize as name_factorization
from profkit.analysis.taxonomy import cpu_op_classes
from profkit.parsers.columns import distinct, factorize, pair_keys
from profkit.parsers.tables import Table, TraceTables


class OpRow(msgspec.Struct):
    name: str
    category: str
    count: int
    total_us: float  # self time for CPU ops, duration for kernels
    mean_us: float
    min_us: float
    max_us: float
    share: float  # of all kernel time (kernels) or all CPU self time (CPU ops)
    tensor_core: bool | None = None
    precision: str | None = None


class CategoryRow(msgspec.Struct):
    category: str
    count: int
    total_us: float
    share: float
    tensor_core_us: float | None = None


class GpuTime(msgspec.Struct):
    kernel_count: int
    kernel_sum_us: float  # plain sum of kernel durations (overlaps counted twice)
    memop_count: int
    memop_sum_us: float
    busy_us: float  # union of kernel + memcpy + memset intervals over all streams
    window_us: float  # first GPU activity start -> last end
    idle_us: float
    utilization: float  # busy / window
    streams: int
    devices: list[int] = []
    short_kernel_share: float = 0.0  # kernels shorter than 10 us
    idle_gap_count: int = 0
    largest_gap_us: float = 0.0
    tensor_core_share: float = 0.0  # of kernel time, by name guess


class Breakdown(msgspec.Struct):
    kind: str  # "gpu_kernels" | "cpu_ops"
    rows: list[OpRow]
    categories: list[CategoryRow]
    total_us: float
    distinct_names: int


#: up to this many CPU ops, parents are found with a range-maximum table (log2(n) arrays of n floats); more use the
#: stack walk, whose memory stays flat
RANGE_TABLE_MAX_OPS = 1 << 18


def cpu_self_times(cpu_ops: Table) -> np.ndarray:
    """Self time of each CPU op: its duration minus that of its direct children on the same thread."""
    if cpu_ops.empty:
        return np.zeros(0)
    pids = factorize(cpu_ops["pid"])[0]  # a missing pid or tid (-1) is a thread of its own
    tids, tid_values = factorize(cpu_ops["tid"])
    thread_codes = (pids + 1) * (len(tid_values) + 1) + tids + 1  # one code per (pid, tid)
    # each thread's ops by start, the longest first: a parent comes before its children
    order = np.lexsort((-cpu_ops["dur"], cpu_ops["ts"], thread_codes))
    ts, end, dur, thread = (column[order] for column in (cpu_ops["ts"], cpu_ops["end"], cpu_ops["dur"], thread_codes))
    find = _parents_by_range_max if len(order) <= RANGE_TABLE_MAX_OPS else _parents_by_stack
    parent = find(ts, end, thread)
    child = np.flatnonzero(parent >= 0)
    overlap = np.minimum(end[child], end[parent[child]]) - ts[child]
    self_sorted = dur - np.bincount(parent[child], weights=overlap, minlength=len(order))
    self_time = np.empty(len(order))
    self_time[order] = self_sorted
    return np.maximum(self_time, 0.0)


def _parents_by_stack(ts: np.ndarray, end: np.ndarray, thread: np.ndarray) -> np.ndarray:
    """The direct parent of each op (-1: none) in ops sorted by thread, start, longest first: the innermost open op
    (a stack of the ops still open at each start)."""
    parent = np.full(len(ts), -1, dtype=np.int64)
    starts, ends, threads = ts.tolist(), end.tolist(), thread.tolist()  # plain floats: numpy scalars are slow
    stack: list[int] = []
    current_thread = -1
    for index, start in enumerate(starts):
        if threads[index] != current_thread:
            stack.clear()
            current_thread = threads[index]
        while stack and start >= ends[stack[-1]]:
            stack.pop()
        if stack:
            parent[index] = stack[-1]
        stack.append(index)
    return parent


def _parents_by_range_max(ts: np.ndarray, end: np.ndarray, thread: np.ndarray) -> np.ndarray:
    """The same parents as :func:`_parents_by_stack`, for all ops at once.

    The stack's top at an op's start is the nearest earlier op of its thread still open then (``end > start``): an
    op closed before it was popped, one open never was. So each op's parent is the last earlier op of its thread
    with ``end > start``, found by binary lifting over a table of range maxima of ``end``: from the op leftwards,
    skip the longest blocks of power-of-two length whose ops all ended by its start.
    """
    count = len(ts)
    index = np.arange(count)
    new_thread = np.ones(count, dtype=bool)
    new_thread[1:] = thread[1:] != thread[:-1]
    first = np.maximum.accumulate(np.where(new_thread, index, 0))  # the first op of each op's thread
    maxima = [end]  # maxima[k][p] = max(end[p : p + 2**k])
    while 2 ** len(maxima) <= count:
        half = 2 ** (len(maxima) - 1)
        maxima.append(np.maximum(maxima[-1][:-half], maxima[-1][half:]))
    edge = index.copy()  # every op in [edge, op) has ended by the op's start
    for level in range(len(maxima) - 1, -1, -1):
        block_start = edge - 2**level
        inside = block_start >= first
        closed = inside & (maxima[level][np.where(inside, block_start, 0)] <= ts)
        edge = np.where(closed, block_start, edge)
    return np.where(edge > first, edge - 1, -1)


def _rows(frame: Table, total: float, limit: int, with_tc: bool) -> list[OpRow]:
    times = frame["time"].astype(np.float64, copy=False)
    groups = Groups(frame["name"], times, names=True)
    top = groups.largest(limit)
    first = groups.first_rows()[top]
    minimum = groups.extreme(times, np.minimum, np.inf)[top]
    maximum = groups.extreme(times, np.maximum, -np.inf)[top]
    category = frame["category"][first]
    tensor_core = frame["tensor_core"][first] if with_tc else None
    precision = frame["precision"][first] if with_tc else None
    return [
        OpRow(
            name=str(groups.keys[group]),
            category=str(category[i]),
            count=int(groups.count[group]),
            total_us=float(groups.total[group]),
            mean_us=float(groups.total[group] / groups.count[group]),
            min_us=float(minimum[i]),
            max_us=float(maximum[i]),
            share=float(groups.total[group]) / total if total else 0.0,
            tensor_core=bool(tensor_core[i]) if tensor_core is not None else None,
            precision=str(precision[i]) if precision is not None else None,
        )
        for i, group in enumerate(top.tolist())
    ]


def _categories(frame: Table, total: float, with_tc: bool) -> list[CategoryRow]:
    times = frame["time"].astype(np.float64, copy=False)
    groups = Groups(frame["category"], times)
    tc = groups.sum(np.where(frame["tensor_core"].astype(bool, copy=False), times, 0.0)) if with_tc else None
    return [
        CategoryRow(
            category=str(groups.keys[group]),
            count=int(groups.count[group]),
            total_us=float(groups.total[group]),
            share=float(groups.total[group]) / total if total else 0.0,
            tensor_core_us=float(tc[group]) if tc is not None else None,
        )
        for group in groups.largest().tolist()
    ]


def _distinct(names: np.ndarray) -> int:
    return len(name_factorization(names)[1])


def kernel_breakdown(work: Table, limit: int = 25) -> Breakdown:
    """Kernels, memcpys and memsets by name and category (rows of the ``gpu_work`` table)."""
    frame = work[["name", "dur", "category", "tensor_core", "precision"]]
    frame["time"] = work["dur"]
    total = float(frame["time"].sum())
    return Breakdown(
        "gpu_kernels",
        _rows(frame, total, limit, True),
        _categories(frame, total, True),
        total,
        _distinct(frame["name"]),
    )


def cpu_op_frame(tables: TraceTables) -> Table:
    """CPU operators with their self time and category: name, ts, time, category."""
    cpu_ops = tables.cpu_ops
    classes = cpu_op_classes(cpu_ops["name"], cpu_ops["cat"])
    return Table(
        {
            "name": cpu_ops["name"],
            "ts": cpu_ops["ts"],
            "time": cpu_self_times(cpu_ops),
            "category": classes["category"],
        }
    )


def cpu_op_breakdown(frame: Table, limit: int = 25) -> Breakdown:
    total = float(frame["time"].sum())
    return Breakdown(
        "cpu_ops",
        _rows(frame, total, limit, False),
        _categories(frame, total, False),
        total,
        _distinct(frame["name"]),
    )


class StageMixRow(msgspec.Struct):
    stage: str
    category: str
    count: int
    total_us: float
    tensor_core_us: float | None = None


def stage_mix(
    stages: np.ndarray, categories: np.ndarray, times: np.ndarray, tensor_core: np.ndarray | None = None
) -> list[StageMixRow]:
    """Time per (stage, category): how each stage's work splits into kinds of kernels or operators."""
    if not len(times):
        return []
    stage_names = np.where(stages == "", "outside pipeline", stages).astype(object)
    categories = np.asarray(categories, dtype=object)
    times = np.asarray(times, dtype=np.float64)
    pairs = Groups(pair_keys(stage_names, categories), times)  # a row without a stage or category is left out
    tc = pairs.sum(np.where(tensor_core, times, 0.0)) if tensor_core is not None else None
    first = pairs.first_rows()
    return [
        StageMixRow(
            str(stage_names[first[group]]),
            str(categories[first[group]]),
            int(pairs.count[group]),
            float(pairs.total[group]),
            float(tc[group]) if tc is not None else None,
        )
        for group in pairs.largest().tolist()
    ]


def gpu_time(work: Table) -> GpuTime | None:
    """Busy-time truth over the whole trace: union of all kernel/memcpy/memset intervals."""
    if work.empty:
        return None
    starts, ends = work["ts"], work["end"]
    is_kernel = work["kind"] == "kernel"
    durations = work["dur"]
    busy = union_length(starts, ends)
    window = float(ends.max() - starts.min())
    idle_gaps = gaps(starts, ends)
    kernel_sum = float(durations[is_kernel].sum())
    tc_time = float(durations[is_kernel & work["tensor_core"].astype(bool, copy=False)].sum())
    return GpuTime(
        kernel_count=int(is_kernel.sum()),
        kernel_sum_us=kernel_sum,
        memop_count=int((~is_kernel).sum()),
        memop_sum_us=float(durations[~is_kernel].sum()),
        busy_us=busy,
        window_us=window,
        idle_us=max(window - busy, 0.0),
        utilization=busy / window if window > 0 else 1.0,
        streams=len(distinct(work["stream"][~np.isnan(work["stream"])])),
        devices=sorted(int(d) for d in distinct(work["device"])),
        short_kernel_share=float((durations[is_kernel] < 10).mean()) if is_kernel.any() else 0.0,
        idle_gap_count=int(np.count_nonzero(idle_gaps > 0)),
        largest_gap_us=float(idle_gaps.max()) if idle_gaps.size else 0.0,
        tensor_core_share=tc_time / kernel_sum if kernel_sum else 0.0,
    )
