"""The event tables every parser fills: declared columns and dtypes, times in microseconds.

Kineto JSON and Nsight Systems SQLite both become a :class:`TraceTables`; every analysis reads
only these tables, never a raw file. A :class:`Table` is plain numpy columns (no pandas: analyzing a trace does not
pay its import), text as object arrays with ``None`` where missing.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from profkit.parsers.columns import text_column

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


#: the numpy dtype of each schema dtype (text: Python objects, ``None`` where missing)
NUMPY_DTYPES = {"string": object, "float64": np.float64, "int64": np.int64, "bool": bool}


class Table:
    """Columns of one length by name, each a 1-d numpy array.

    ``table["ts"]`` is a column; ``table[rows]`` (a boolean mask or row positions) is a new table of copied rows, and
    ``table[["ts", "end"]]`` a new table of those columns (the same arrays; columns added to it are its own).
    """

    __slots__ = ("_columns", "_length")

    def __init__(self, columns: Mapping[str, Any] | None = None, length: int = 0) -> None:
        self._columns: dict[str, np.ndarray] = {}
        self._length = length
        for index, (name, values) in enumerate((columns or {}).items()):
            if index == 0:
                self._length = len(values)
            self[name] = values

    def __len__(self) -> int:
        return self._length

    @property
    def empty(self) -> bool:
        return self._length == 0

    @property
    def columns(self) -> list[str]:
        return list(self._columns)

    def __iter__(self) -> Iterator[str]:
        return iter(self._columns)

    def __contains__(self, name: object) -> bool:
        return name in self._columns

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return self._columns[key]
        if isinstance(key, list):
            return Table({name: self._columns[name] for name in key}, self._length)
        key = np.asarray(key)
        length = int(np.count_nonzero(key)) if key.dtype == bool else len(key)
        return Table({name: column[key] for name, column in self._columns.items()}, length)

    def __setitem__(self, name: str, values: Any) -> None:
        column = values if isinstance(values, np.ndarray) else np.asarray(values)
        if column.dtype.kind in "US":  # text stays Python objects (a fixed-width array would widen every row)
            column = text_column(values)
        if column.ndim != 1 or len(column) != self._length:
            raise ValueError(f"column {name!r} has {len(column)} rows, the table {self._length}")
        self._columns[name] = column

    def assign(self, **columns: Any) -> Table:
        """A new table with ``columns`` added (or replaced)."""
        table = Table(self._columns, self._length)
        for name, values in columns.items():
            table[name] = values
        return table

    def sorted_by(self, column: str, descending: bool = False) -> Table:
        """Rows in order of ``column`` (stable: ties keep their order)."""
        values = self._columns[column]
        return self[np.argsort(-values if descending else values, kind="stable")]

    def rows(self, *names: str) -> Iterator[tuple[Any, ...]]:
        """The values of ``names`` row by row, as Python objects."""
        return zip(*(self._columns[name].tolist() for name in names), strict=True)

    def to_pandas(self) -> Any:
        """The table as a ``pandas.DataFrame`` (for notebooks; pandas is imported here, not by profkit's analyses)."""
        import pandas as pd

        return pd.DataFrame(dict(self._columns), index=pd.RangeIndex(self._length))

    def __repr__(self) -> str:
        return f"Table({self._length} rows: {', '.join(self._columns)})"


def empty_table(table: str) -> Table:
    return Table({col: np.zeros(0, dtype=NUMPY_DTYPES[dtype]) for col, dtype in SCHEMAS[table].items()})


def build_table(table: str, columns: dict[str, Any], origin: float = 0.0) -> Table:
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
        if dtype == "string":
            data[col] = text_column(values)
        else:
            data[col] = np.asarray(values, dtype=NUMPY_DTYPES[dtype])
    data["ts"] = data["ts"] - origin
    data["end"] = data["ts"] + data["dur"]
    return Table({col: data[col] for col in schema})


class TraceInfo(msgspec.Struct):
    """Facts about the trace file itself, and what parsing had to skip."""

    path: Path
    source_format: str  # kineto | nsys
    devices: list[dict[str, Any]] = []
    event_count: int = 0
    skipped_events: dict[str, int] = {}  # reason -> count
    unknown_categories: dict[str, int] = {}
    warnings: list[str] = []
    not_captured: list[str] = []  # tables the capture did not record
    trace_metadata: dict[str, Any] = {}
    time_origin_us: float = 0.0  # raw timestamp that every table's ts is relative to
    decoder: str = ""  # how the file was decoded: typed | tolerant (Kineto), sqlite (nsys)

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped_events.values())


class DetailLimit(msgspec.Struct, frozen=True):
    """At most ``events`` GPU events (kernels, copies, memsets) read one by one into the tables.

    A format that can aggregate in its own query engine (an nsys SQLite export) then reads events one by one only
    up to the end of the last whole ``call_range`` range (one pipeline call) that fits, and aggregates the rest.
    """

    events: int
    call_range: str  # ranges of this name are the units the window holds whole


class ExportTotals(msgspec.Struct):
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
    kernels: Table  # name, count, total_us, min_us, max_us
    memops: Table  # name, kind, direction, count, bytes, total_us, min_us, max_us
    busy: Table  # device, events, first_us, last_us (per device)
    busy_us: float  # union of all kernel, copy and memset intervals (every device)
    api: Table  # CUDA runtime calls: name, count, total_us
    ranges: Table  # NVTX ranges: name, count, total_us, min_us, max_us


class TraceTables(msgspec.Struct):
    info: TraceInfo
    kernels: Table
    launches: Table
    memops: Table
    cpu_ops: Table
    ranges: Table
    syncs: Table
    totals: ExportTotals | None = None  # set when the tables hold only the start of the trace

    @property
    def has_gpu_activity(self) -> bool:
        return len(self.kernels) > 0 or len(self.memops) > 0
