"""Where the time goes by kernel / CPU operator and by category, and GPU busy-time truth."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from profkit.analysis.intervals import gaps, union_length
from profkit.analysis.taxonomy import cpu_op_classes
from profkit.parsers.tables import TraceTables


@dataclass
class OpRow:
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


@dataclass
class CategoryRow:
    category: str
    count: int
    total_us: float
    share: float
    tensor_core_us: float | None = None


@dataclass
class GpuTime:
    kernel_count: int
    kernel_sum_us: float  # plain sum of kernel durations (overlaps counted twice)
    memop_count: int
    memop_sum_us: float
    busy_us: float  # union of kernel + memcpy + memset intervals over all streams
    window_us: float  # first GPU activity start -> last end
    idle_us: float
    utilization: float  # busy / window
    streams: int
    devices: list[int] = field(default_factory=list)
    short_kernel_share: float = 0.0  # kernels shorter than 10 us
    idle_gap_count: int = 0
    largest_gap_us: float = 0.0
    tensor_core_share: float = 0.0  # of kernel time, by name guess


@dataclass
class Breakdown:
    kind: str  # "gpu_kernels" | "cpu_ops"
    rows: list[OpRow]
    categories: list[CategoryRow]
    total_us: float
    distinct_names: int


def cpu_self_times(cpu_ops: pd.DataFrame) -> np.ndarray:
    """Self time of each CPU op: its duration minus that of its direct children on the same thread."""
    if cpu_ops.empty:
        return np.zeros(0)
    self_time = cpu_ops["dur"].to_numpy(dtype=np.float64).tolist()
    pids = pd.factorize(cpu_ops["pid"], use_na_sentinel=False)[0]
    tids, tid_values = pd.factorize(cpu_ops["tid"], use_na_sentinel=False)
    thread_codes = pids * (len(tid_values) + 1) + tids  # one code per (pid, tid)
    order = np.lexsort((-cpu_ops["dur"].to_numpy(), cpu_ops["ts"].to_numpy(), thread_codes)).tolist()
    ts = cpu_ops["ts"].to_numpy().tolist()  # plain floats: indexing numpy scalars one by one is slow
    end = cpu_ops["end"].to_numpy().tolist()
    thread = thread_codes.tolist()
    stack: list[int] = []
    current_thread = -1
    for index in order:
        if thread[index] != current_thread:
            stack.clear()
            current_thread = thread[index]
        start = ts[index]
        while stack and start >= end[stack[-1]]:
            stack.pop()
        if stack:
            parent = stack[-1]
            self_time[parent] -= min(end[index], end[parent]) - start
        stack.append(index)
    return np.maximum(np.asarray(self_time), 0.0)


def _rows(frame: pd.DataFrame, total: float, limit: int, with_tc: bool) -> list[OpRow]:
    grouped = frame.groupby("name", sort=False, observed=True).agg(
        category=("category", "first"),
        count=("time", "size"),
        total_us=("time", "sum"),
        mean_us=("time", "mean"),
        min_us=("time", "min"),
        max_us=("time", "max"),
        **({"tensor_core": ("tensor_core", "first"), "precision": ("precision", "first")} if with_tc else {}),
    )
    grouped = grouped.sort_values("total_us", ascending=False).head(limit)
    rows = []
    for name, row in grouped.iterrows():
        rows.append(
            OpRow(
                name=str(name),
                category=str(row["category"]),
                count=int(row["count"]),
                total_us=float(row["total_us"]),
                mean_us=float(row["mean_us"]),
                min_us=float(row["min_us"]),
                max_us=float(row["max_us"]),
                share=float(row["total_us"]) / total if total else 0.0,
                tensor_core=bool(row["tensor_core"]) if with_tc else None,
                precision=str(row["precision"]) if with_tc else None,
            )
        )
    return rows


def _categories(frame: pd.DataFrame, total: float, with_tc: bool) -> list[CategoryRow]:
    grouped = frame.groupby("category", observed=True)["time"].agg(["size", "sum"]).sort_values("sum", ascending=False)
    tc = frame[frame["tensor_core"]].groupby("category")["time"].sum() if with_tc else None
    return [
        CategoryRow(
            category=str(category),
            count=int(row["size"]),
            total_us=float(row["sum"]),
            share=float(row["sum"]) / total if total else 0.0,
            tensor_core_us=float(tc.get(category, 0.0)) if tc is not None else None,
        )
        for category, row in grouped.iterrows()
    ]


def kernel_breakdown(work: pd.DataFrame, limit: int = 25) -> Breakdown:
    """Kernels, memcpys and memsets by name and category (rows of the ``gpu_work`` table)."""
    frame = pd.DataFrame(
        {
            "name": work["name"].to_numpy(),
            "time": work["dur"].to_numpy(),
            "category": work["category"].to_numpy(),
            "tensor_core": work["tensor_core"].to_numpy(dtype=bool),
            "precision": work["precision"].to_numpy(),
        }
    )
    total = float(frame["time"].sum())
    return Breakdown(
        "gpu_kernels",
        _rows(frame, total, limit, True),
        _categories(frame, total, True),
        total,
        int(frame["name"].nunique()),
    )


def cpu_op_frame(tables: TraceTables) -> pd.DataFrame:
    """CPU operators with their self time and category: name, ts, time, category."""
    cpu_ops = tables.cpu_ops
    classes = cpu_op_classes(cpu_ops["name"], cpu_ops["cat"])
    return pd.DataFrame(
        {
            "name": cpu_ops["name"].to_numpy(dtype=object),
            "ts": cpu_ops["ts"].to_numpy(),
            "time": cpu_self_times(cpu_ops),
            "category": classes["category"].to_numpy(dtype=object),
        }
    )


def cpu_op_breakdown(frame: pd.DataFrame, limit: int = 25) -> Breakdown:
    total = float(frame["time"].sum())
    return Breakdown(
        "cpu_ops",
        _rows(frame, total, limit, False),
        _categories(frame, total, False),
        total,
        int(frame["name"].nunique()),
    )


@dataclass
class StageMixRow:
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
    frame = pd.DataFrame({"stage": stages, "category": categories, "time": times})
    frame["stage"] = frame["stage"].replace("", "outside pipeline")
    frame["tc"] = np.where(tensor_core, times, 0.0) if tensor_core is not None else 0.0
    grouped = frame.groupby(["stage", "category"], sort=False).agg(
        count=("time", "size"), total_us=("time", "sum"), tc=("tc", "sum")
    )
    return [
        StageMixRow(
            str(stage),
            str(category),
            int(row["count"]),
            float(row["total_us"]),
            float(row["tc"]) if tensor_core is not None else None,
        )
        for (stage, category), row in grouped.sort_values("total_us", ascending=False).iterrows()
    ]


def gpu_time(work: pd.DataFrame) -> GpuTime | None:
    """Busy-time truth over the whole trace: union of all kernel/memcpy/memset intervals."""
    if work.empty:
        return None
    starts, ends = work["ts"].to_numpy(), work["end"].to_numpy()
    is_kernel = (work["kind"] == "kernel").to_numpy()
    durations = work["dur"].to_numpy()
    busy = union_length(starts, ends)
    window = float(ends.max() - starts.min())
    idle_gaps = gaps(starts, ends)
    kernel_sum = float(durations[is_kernel].sum())
    tc_time = float(durations[is_kernel & work["tensor_core"].to_numpy(dtype=bool)].sum())
    return GpuTime(
        kernel_count=int(is_kernel.sum()),
        kernel_sum_us=kernel_sum,
        memop_count=int((~is_kernel).sum()),
        memop_sum_us=float(durations[~is_kernel].sum()),
        busy_us=busy,
        window_us=window,
        idle_us=max(window - busy, 0.0),
        utilization=busy / window if window > 0 else 1.0,
        streams=int(work["stream"].nunique()),
        devices=sorted(int(d) for d in work["device"].unique()),
        short_kernel_share=float((durations[is_kernel] < 10).mean()) if is_kernel.any() else 0.0,
        idle_gap_count=int(np.count_nonzero(idle_gaps > 0)),
        largest_gap_us=float(idle_gaps.max()) if idle_gaps.size else 0.0,
        tensor_core_share=tc_time / kernel_sum if kernel_sum else 0.0,
    )
