"""The event tables every parser fills: declared columns and dtypes, times in microseconds.

Kineto JSON and Nsight Systems SQLite both become a :class:`TraceTables`; every analysis reads
only these tables, never a raw file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

#: column -> dtype of each table. ``ts``/``dur``/``end`` are microseconds (float64).
SCHEMAS: dict[str, dict[str, str]] = {
    "kernels": {
        "name": "string",
        "ts": "float64",
        "dur": "float64",
        "end": "float64",
        "device": "int64",
        "stream": "int64",
        "correlation": "int64",
        "external_id": "int64",
        "grid": "string",
        "block": "string",
        "registers": "float64",
        "shared_memory": "float64",
    },
    "launches": {
        "name": "string",
        "ts": "float64",
        "dur": "float64",
        "end": "float64",
        "pid": "string",
        "tid": "string",
        "correlation": "int64",
        "external_id": "int64",
        "api": "string",  # runtime | driver
    },
    "memops": {
        "name": "string",
        "kind": "string",  # memcpy | memset
        "direction": "string",  # H2D | D2H | D2D | P2P | other | memset
        "pageable": "bool",  # host side is pageable (not pinned) memory: the copy is synchronous
        "ts": "float64",
        "dur": "float64",
        "end": "float64",
        "device": "int64",
        "stream": "int64",
        "correlation": "int64",
        "bytes": "float64",
    },
    "cpu_ops": {
        "name": "string",
        "cat": "string",
        "ts": "float64",
        "dur": "float64",
        "end": "float64",
        "pid": "string",
        "tid": "string",
        "external_id": "int64",
    },
    "ranges": {
        "name": "string",
        "ts": "float64",
        "dur": "float64",
        "end": "float64",
        "pid": "string",
        "tid": "string",
        "on_gpu": "bool",  # gpu_user_annotation (GPU-side projection) vs CPU-side range
    },
    "syncs": {
        "name": "string",
        "ts": "float64",
        "dur": "float64",
        "end": "float64",
        "device": "int64",
        "stream": "int64",
    },
}


def empty_table(table: str) -> pd.DataFrame:
    return pd.DataFrame({col: pd.Series(dtype=dtype) for col, dtype in SCHEMAS[table].items()})


def build_table(table: str, columns: dict[str, list[Any]], origin: float = 0.0) -> pd.DataFrame:
    """A table from column lists, with the declared dtypes, ``ts`` rebased to ``origin`` and ``end = ts + dur``.

    Rebasing keeps sub-nanosecond precision: raw Kineto timestamps (~1e12 us) leave float64 only
    about a millisecond-thousandth of resolution, enough to skew unions over thousands of kernels.
    """
    schema = SCHEMAS[table]
    if not columns or len(columns.get("ts", ())) == 0:
        return empty_table(table)
    data: dict[str, Any] = {}
    for col, dtype in schema.items():
        if col == "end":
            continue
        values = columns[col]
        if dtype == "int64":
            data[col] = pd.array(np.asarray(values, dtype=np.int64), dtype="int64")
        elif dtype == "float64":
            data[col] = np.asarray(values, dtype=np.float64)
        elif dtype == "bool":
            data[col] = np.asarray(values, dtype=bool)
        else:
            data[col] = pd.array(values, dtype="string")
    data["ts"] = data["ts"] - origin
    data["end"] = data["ts"] + data["dur"]
    return pd.DataFrame(data)[list(schema)]


@dataclass
class TraceInfo:
    """Facts about the trace file itself, and what parsing had to skip."""

    path: Path
    source_format: str  # kineto | nsys
    devices: list[dict[str, Any]] = field(default_factory=list)
    event_count: int = 0
    skipped_events: dict[str, int] = field(default_factory=dict)  # reason -> count
    unknown_categories: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    not_captured: list[str] = field(default_factory=list)  # tables the capture did not record
    trace_metadata: dict[str, Any] = field(default_factory=dict)
    time_origin_us: float = 0.0  # raw timestamp that every table's ts is relative to
    decoder: str = ""  # how the file was decoded: typed | tolerant (Kineto), sqlite (nsys)

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped_events.values())


@dataclass(frozen=True)
class DetailLimit:
    """At most ``events`` GPU events (kernels, copies, memsets) read one by one into the tables.

    A format that can aggregate in its own query engine (an nsys SQLite export) then reads events one by one only
    up to the end of the last whole ``call_range`` range (one pipeline call) that fits, and aggregates the rest.
    """

    events: int
    call_range: str  # ranges of this name are the units the window holds whole


@dataclass
class ExportTotals:
    """Aggregates over every usable row of a trace whose event tables hold only its start (times in us).

    Relative to the tables' time origin: the event tables hold what starts up to ``window_end_us``.
    """

    detail_limit: int
    window_end_us: float
    export_end_us: float  # the last end of any row
    gpu_events: int  # kernels + copies + memsets, whole export
    gpu_events_in_window: int
    calls_in_window: int  # ``call_range`` ranges starting in the window
    call_durations_us: np.ndarray  # every ``call_range`` range, in start order
    kernels: pd.DataFrame  # name, count, total_us, min_us, max_us
    memops: pd.DataFrame  # name, kind, direction, count, bytes, total_us, min_us, max_us
    busy: pd.DataFrame  # device, events, first_us, last_us (per device)
    busy_us: float  # union of all kernel, copy and memset intervals (every device)
    api: pd.DataFrame  # CUDA runtime calls: name, count, total_us
    ranges: pd.DataFrame  # NVTX ranges: name, count, total_us, min_us, max_us


@dataclass
class TraceTables:
    info: TraceInfo
    kernels: pd.DataFrame
    launches: pd.DataFrame
    memops: pd.DataFrame
    cpu_ops: pd.DataFrame
    ranges: pd.DataFrame
    syncs: pd.DataFrame
    totals: ExportTotals | None = None  # set when the tables hold only the start of the trace

    @property
    def has_gpu_activity(self) -> bool:
        return len(self.kernels) > 0 or len(self.memops) > 0
