"""The whole of a trace whose event tables hold only its first pipeline calls (a large nsys export).

The parser aggregated every row in SQL (:class:`~profkit.parsers.tables.ExportTotals`); this turns those totals
into the numbers a report shows beside the detailed views of the window: kernels by name, GPU busy time,
copies, CUDA runtime calls, and the wall time of pipeline calls, steps and stages over every call.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from profkit.analysis.attribution import STAGE_KINDS, parse_range
from profkit.analysis.operators import Breakdown, CategoryRow, OpRow
from profkit.analysis.taxonomy import kernel_classes
from profkit.parsers.tables import ExportTotals, TraceTables


@dataclass
class DetailWindow:
    """What the detailed views cover: the export's start, up to the end of a whole pipeline call."""

    limit: int  # GPU events read one by one at most (the detail limit)
    end_us: float  # the detailed views hold what starts before this (from the trace's first event)
    export_end_us: float
    calls: int  # pipeline calls in the window
    calls_total: int
    gpu_events: int  # kernels, copies and memsets in the window
    gpu_events_total: int
    kernel_time_share: float  # of the export's kernel time, the share inside the window


@dataclass
class CallTimes:
    """Wall time of every pipeline call of the export (profkit's pipeline ranges)."""

    count: int
    mean_us: float
    p50_us: float
    p90_us: float
    p99_us: float
    min_us: float
    max_us: float


@dataclass
class StageTotal:
    """Summed wall time of one stage's ranges over every call."""

    stage: str
    ranges: int
    total_us: float
    share: float  # of the summed pipeline call time (0 without pipeline ranges)


@dataclass
class MemopTotal:
    name: str
    kind: str  # memcpy | memset
    direction: str
    count: int
    bytes: float
    total_us: float


@dataclass
class ApiTotal:
    name: str
    count: int
    total_us: float


@dataclass
class WholeExport:
    window: DetailWindow
    kernels: Breakdown  # kernels, copies and memsets by name, over every event
    kernel_count: int
    kernel_sum_us: float
    memop_count: int
    memop_sum_us: float
    busy_us: float  # union of every kernel, copy and memset interval
    span_us: float  # first GPU start -> last GPU end
    utilization: float  # busy / span
    devices: list[int] = field(default_factory=list)
    calls: CallTimes | None = None
    step_count: int = 0  # denoise step ranges over every call
    step_mean_us: float | None = None
    stages: list[StageTotal] = field(default_factory=list)
    memops: list[MemopTotal] = field(default_factory=list)
    api: list[ApiTotal] = field(default_factory=list)


def _breakdown(totals: ExportTotals, limit: int) -> Breakdown:
    """Kernels (classified by name) and copies/memsets (by kind) as the breakdown ``kernel_breakdown`` gives."""
    kernels, memops = totals.kernels, totals.memops
    classes = kernel_classes(kernels["name"].astype("string"))
    rows = pd.DataFrame(
        {
            "name": [*kernels["name"], *memops["name"]],
            "category": [*classes["category"], *memops["kind"]],
            "tensor_core": [*classes["tensor_core"].astype(bool), *([False] * len(memops))],
            "precision": [*classes["precision"], *(["n/a"] * len(memops))],
            "count": [*kernels["count"], *memops["count"]],
            "total_us": [*kernels["total_us"], *memops["total_us"]],
            "min_us": [*kernels["min_us"], *memops["min_us"]],
            "max_us": [*kernels["max_us"], *memops["max_us"]],
        }
    )
    total = float(rows["total_us"].sum())
    top = rows.sort_values("total_us", ascending=False, kind="stable").head(limit)
    op_rows = [
        OpRow(
            name=str(row.name),
            category=str(row.category),
            count=int(row.count),
            total_us=float(row.total_us),
            mean_us=float(row.total_us) / int(row.count) if row.count else 0.0,
            min_us=float(row.min_us),
            max_us=float(row.max_us),
            share=float(row.total_us) / total if total else 0.0,
            tensor_core=bool(row.tensor_core),
            precision=str(row.precision),
        )
        for row in top.itertuples(index=False)
    ]
    rows["tc_us"] = np.where(rows["tensor_core"].to_numpy(dtype=bool), rows["total_us"], 0.0)
    by_category = rows.groupby("category", sort=False)[["count", "total_us", "tc_us"]].sum()
    categories = [
        CategoryRow(
            category=str(category),
            count=int(row["count"]),
            total_us=float(row["total_us"]),
            share=float(row["total_us"]) / total if total else 0.0,
            tensor_core_us=float(row["tc_us"]),
        )
        for category, row in by_category.sort_values("total_us", ascending=False).iterrows()
    ]
    return Breakdown("gpu_kernels", op_rows, categories, total, int(rows["name"].nunique()))


def _call_times(durations: np.ndarray) -> CallTimes | None:
    if not len(durations):
        return None
    p50, p90, p99 = np.percentile(durations, [50, 90, 99])
    return CallTimes(
        count=len(durations),
        mean_us=float(durations.mean()),
        p50_us=float(p50),
        p90_us=float(p90),
        p99_us=float(p99),
        min_us=float(durations.min()),
        max_us=float(durations.max()),
    )


def _stages(ranges: pd.DataFrame, call_total_us: float) -> tuple[list[StageTotal], int, float | None]:
    """Summed wall time per stage (the range kinds a stage's wall time is made of), and the denoise steps."""
    sums: dict[str, list[float]] = {}
    for name, count, total in zip(ranges["name"], ranges["count"], ranges["total_us"], strict=True):
        info = parse_range(str(name))
        if info is not None and info.kind in STAGE_KINDS.get(info.stage, ()):
            entry = sums.setdefault(info.stage, [0, 0.0])
            entry[0] += int(count)
            entry[1] += float(total)
    stages = [
        StageTotal(stage, int(sums[stage][0]), sums[stage][1], sums[stage][1] / call_total_us if call_total_us else 0.0)
        for stage in STAGE_KINDS
        if stage in sums
    ]
    steps = sums.get("denoise")
    return stages, int(steps[0]) if steps else 0, steps[1] / steps[0] if steps and steps[0] else None


def whole_export(tables: TraceTables, limit: int = 25) -> WholeExport | None:
    """The whole-export numbers of a trace read in part; ``None`` when its tables hold all of it."""
    totals = tables.totals
    if totals is None:
        return None
    kernel_sum = float(totals.kernels["total_us"].sum())
    window_kernel_sum = float(tables.kernels["dur"].sum())
    busy = totals.busy
    span = float(busy["last_us"].max() - busy["first_us"].min()) if len(busy) else 0.0
    durations = np.asarray(totals.call_durations_us, dtype=np.float64)
    stages, step_count, step_mean = _stages(totals.ranges, float(durations.sum()))
    return WholeExport(
        window=DetailWindow(
            limit=totals.detail_limit,
            end_us=totals.window_end_us,
            export_end_us=totals.export_end_us,
            calls=totals.calls_in_window,
            calls_total=len(durations),
            gpu_events=totals.gpu_events_in_window,
            gpu_events_total=totals.gpu_events,
            kernel_time_share=window_kernel_sum / kernel_sum if kernel_sum else 0.0,
        ),
        kernels=_breakdown(totals, limit),
        kernel_count=int(totals.kernels["count"].sum()),
        kernel_sum_us=kernel_sum,
        memop_count=int(totals.memops["count"].sum()),
        memop_sum_us=float(totals.memops["total_us"].sum()),
        busy_us=totals.busy_us,
        span_us=span,
        utilization=totals.busy_us / span if span > 0 else 0.0,
        devices=[int(d) for d in busy["device"]],
        calls=_call_times(durations),
        step_count=step_count,
        step_mean_us=step_mean,
        stages=stages,
        memops=[
            MemopTotal(str(r.name), str(r.kind), str(r.direction), int(r.count), float(r.bytes), float(r.total_us))
            for r in totals.memops.itertuples(index=False)
        ],
        api=[
            ApiTotal(str(r.name), int(r.count), float(r.total_us))
            for r in totals.api.head(limit).itertuples(index=False)
        ],
    )


def window_note(whole: WholeExport) -> str:
    """The caveat every view of a window carries: what it covers of the export."""
    w = whole.window
    calls = f"its first {w.calls} of {w.calls_total} pipeline calls" if w.calls_total else "its start"
    return (
        f"Large export: the detailed views (stages, steps, kernels, gaps, launches, timeline, findings) cover {calls}, "
        f"{w.gpu_events:,} of its {w.gpu_events_total:,} GPU events ({w.kernel_time_share:.1%} of its kernel time; "
        f"up to {w.end_us / 1e6:.3f} s of {w.export_end_us / 1e6:.3f} s), the detail limit being {w.limit:,} events. "
        "Whole-export totals (the report's 'Whole export' section) aggregate every event in SQLite."
    )
