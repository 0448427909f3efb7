"""The whole of a trace whose event tables hold only its first pipeline calls (a large nsys export).

The parser aggregated every row in SQL (:class:`~profkit.parsers.tables.ExportTotals`); this turns those totals
into the numbers a report shows beside the detailed views of the window: kernels by name, GPU busy time,
copies, CUDA runtime calls, and the wall time of pipeline calls, steps and stages over every call.
"""

from __future__ import annotations

import msgspec
import numpy as np

from profkit.analysis.attribution import STAGE_KINDS, parse_range
from profkit.analysis.operators import Breakdown, CategoryRow, OpRow
from profkit.analysis.taxonomy import kernel_classes
from profkit.parsers.columns import factorize, object_column, percentiles, text_column
from profkit.parsers.tables import ExportTotals, Table, TraceTables


class DetailWindow(msgspec.Struct):
    """What the detailed views cover: the export's start, up to the end of a whole pipeline call."""

    limit: int  # GPU events read one by one at most (the detail limit)
    end_us: float  # the detailed views hold what starts before this (from the trace's first event)
    export_end_us: float
    calls: int  # pipeline calls in the window
    calls_total: int
    gpu_events: int  # kernels, copies and memsets in the window
    gpu_events_total: int
    kernel_time_share: float  # of the export's kernel time, the share inside the window


class CallTimes(msgspec.Struct):
    """Wall time of every pipeline call of the export (profkit's pipeline ranges)."""

    count: int
    mean_us: float
    p50_us: float
    p90_us: float
    p99_us: float
    min_us: float
    max_us: float


class StageTotal(msgspec.Struct):
    """Summed wall time of one stage's ranges over every call."""

    stage: str
    ranges: int
    total_us: float
    share: float  # of the summed pipeline call time (0 without pipeline ranges)


class MemopTotal(msgspec.Struct):
    name: str
    kind: str  # memcpy | memset
    direction: str
    count: int
    bytes: float
    total_us: float


class ApiTotal(msgspec.Struct):
    name: str
    count: int
    total_us: float


class WholeExport(msgspec.Struct):
    window: DetailWindow
    kernels: Breakdown  # kernels, copies and memsets by name, over every event
    kernel_count: int
    kernel_sum_us: float
    memop_count: int
    memop_sum_us: float
    busy_us: float  # union of every kernel, copy and memset interval
    span_us: float  # first GPU start -> last GPU end
    utilization: float  # busy / span
    devices: list[int] = []
    calls: CallTimes | None = None
    step_count: int = 0  # denoise step ranges over every call
    step_mean_us: float | None = None
    stages: list[StageTotal] = []
    memops: list[MemopTotal] = []
    api: list[ApiTotal] = []


def _breakdown(totals: ExportTotals, limit: int) -> Breakdown:
    """Kernels (classified by name) and copies/memsets (by kind) as the breakdown ``kernel_breakdown`` gives."""
    kernels, memops = totals.kernels, totals.memops
    classes = kernel_classes(text_column(kernels["name"]))

    def joined(kernel_values: np.ndarray, memop_values: np.ndarray, dtype: type = object) -> np.ndarray:
        return np.concatenate([np.asarray(kernel_values, dtype=dtype), np.asarray(memop_values, dtype=dtype)])

    rows = Table(
        {
            "name": joined(kernels["name"], memops["name"]),
            "category": joined(classes["category"], memops["kind"]),
            "tensor_core": joined(classes["tensor_core"], np.zeros(len(memops)), bool),
            "precision": joined(classes["precision"], object_column(len(memops), "n/a")),
            "count": joined(kernels["count"], memops["count"], np.int64),
            "total_us": joined(kernels["total_us"], memops["total_us"], np.float64),
            "min_us": joined(kernels["min_us"], memops["min_us"], np.float64),
            "max_us": joined(kernels["max_us"], memops["max_us"], np.float64),
        }
    )
    total = float(rows["total_us"].sum())
    top = rows.sorted_by("total_us", descending=True)[np.arange(min(limit, len(rows)))]
    op_rows = [
        OpRow(
            name=str(name),
            category=str(category),
            count=int(count),
            total_us=float(total_us),
            mean_us=float(total_us) / int(count) if count else 0.0,
            min_us=float(min_us),
            max_us=float(max_us),
            share=float(total_us) / total if total else 0.0,
            tensor_core=bool(tensor_core),
            precision=str(precision),
        )
        for name, category, count, total_us, min_us, max_us, tensor_core, precision in top.rows(
            "name", "category", "count", "total_us", "min_us", "max_us", "tensor_core", "precision"
        )
    ]
    codes, keys = factorize(rows["category"])  # categories in order of first appearance
    keyed = codes >= 0
    count = np.bincount(codes[keyed], weights=rows["count"][keyed], minlength=len(keys))
    category_total = np.bincount(codes[keyed], weights=rows["total_us"][keyed], minlength=len(keys))
    tc_time = np.where(rows["tensor_core"], rows["total_us"], 0.0)
    tc = np.bincount(codes[keyed], weights=tc_time[keyed], minlength=len(keys))
    categories = [
        CategoryRow(
            category=str(keys[group]),
            count=int(count[group]),
            total_us=float(category_total[group]),
            share=float(category_total[group]) / total if total else 0.0,
            tensor_core_us=float(tc[group]),
        )
        for group in np.argsort(-category_total, kind="stable").tolist()
    ]
    return Breakdown("gpu_kernels", op_rows, categories, total, len(factorize(rows["name"])[1]))


def _call_times(durations: np.ndarray) -> CallTimes | None:
    if not len(durations):
        return None
    p50, p90, p99 = percentiles(durations, [50, 90, 99]).tolist()
    return CallTimes(
        count=len(durations),
        mean_us=float(durations.mean()),
        p50_us=float(p50),
        p90_us=float(p90),
        p99_us=float(p99),
        min_us=float(durations.min()),
        max_us=float(durations.max()),
    )


def _stages(ranges: Table, call_total_us: float) -> tuple[list[StageTotal], int, float | None]:
    """Summed wall time per stage (the range kinds a stage's wall time is made of), and the denoise steps."""
    sums: dict[str, list[float]] = {}
    for name, count, total in ranges.rows("name", "count", "total_us"):
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
        devices=[int(d) for d in busy["device"].tolist()],
        calls=_call_times(durations),
        step_count=step_count,
        step_mean_us=step_mean,
        stages=stages,
        memops=[
            MemopTotal(str(name), str(kind), str(direction), int(count), float(size), float(total_us))
            for name, kind, direction, count, size, total_us in totals.memops.rows(
                "name", "kind", "direction", "count", "bytes", "total_us"
            )
        ],
        api=[
            ApiTotal(str(name), int(count), float(total_us))
            for name, count, total_us in totals.api[np.arange(min(limit, len(totals.api)))].rows(
                "name", "count", "total_us"
            )
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
