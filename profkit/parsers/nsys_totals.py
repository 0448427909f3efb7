"""A large nsys SQLite export read in part: the window of whole pipeline calls its event tables hold, and
:class:`~profkit.parsers.tables.ExportTotals` that SQLite aggregates over every row.

SQLite does the work in its own memory (``GROUP BY`` over distinct names, a window function over the time-sorted
GPU intervals for their union, sorting through its temporary files), so what Python holds grows with the number
of distinct names and pipeline calls, not with the number of events. Rows pass the same checks as the event
tables (``EventKind.usable``).
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
from msgspec.structs import replace

from profkit.errors import ProfkitError
from profkit.parsers.nsys import (
    COPY_KINDS,
    DIRECTIONS,
    EVENT_KINDS,
    MEM_KINDS,
    EventKind,
    memcpy_name,
    table_columns,
)
from profkit.parsers.tables import DetailLimit, ExportTotals, Table

#: time buckets of the GPU start histogram that places the window's end (the cut lands within one bucket of it)
BUCKETS = 8192
#: ``StringIds`` with one text per id (an export with duplicate ids would otherwise multiply the rows it joins)
_STRINGS = "(SELECT id, min(value) AS value FROM StringIds GROUP BY id)"
_GPU_TARGETS = ("kernels", "memops")


def _kind(table: str) -> EventKind:
    return next(kind for kind in EVENT_KINDS if kind.table == table)


def _rows(connection: sqlite3.Connection, path: Path, table: str, sql: str, *params: object) -> list[tuple]:
    try:
        return connection.execute(sql, params).fetchall()
    except sqlite3.DatabaseError as error:
        raise ProfkitError(f"{path}: cannot aggregate {table} ({error}); is this an nsys SQLite export?") from error


def _gpu_sources(connection: sqlite3.Connection, path: Path, tables: set[str], columns: str) -> str:
    """``columns`` of the usable kernels, copies and memsets as one ``UNION ALL``."""
    parts = []
    for kind in EVENT_KINDS:
        if kind.target in _GPU_TARGETS and kind.table in tables:
            parts.append(
                f"SELECT {columns} FROM {kind.source(table_columns(connection, path, kind))} WHERE {kind.usable()}"
            )
    return " UNION ALL ".join(parts)


def _calls(connection: sqlite3.Connection, path: Path, tables: set[str], name: str) -> np.ndarray:
    """Start and end (ns, int64, shape (n, 2)) of every usable NVTX range called ``name``, in start order."""
    if "NVTX_EVENTS" not in tables:
        return np.zeros((0, 2), dtype=np.int64)
    kind = _kind("NVTX_EVENTS")
    source = kind.source(table_columns(connection, path, kind))
    sql = (
        f'SELECT t."start", t."end" FROM {source} LEFT JOIN {_STRINGS} s ON t.{kind.strings} = s.id '
        f'WHERE {kind.usable()} AND CAST({kind.name} AS TEXT) = ? ORDER BY t."start"'
    )
    rows = _rows(connection, path, kind.table, sql, name)
    return np.array(rows, dtype=np.int64).reshape(-1, 2)


def detail_cut(connection: sqlite3.Connection, path: Path, tables: set[str], detail: DetailLimit) -> int | None:
    """The time (ns) up to which rows are read one by one, or ``None`` when every GPU event fits the limit.

    The end of the last whole call (no call runs across it) before which at most ``detail.events`` GPU events
    start; the end of the first such cut when even one call holds more (the window then holds that one call);
    without calls, the end of the last start-time bucket that fits.
    """
    # every integer start counts, usable row or not (a cheap pass without the row checks): the window may hold
    # fewer usable events than the limit, never more
    starts = " UNION ALL ".join(
        f'SELECT "start" AS s FROM {kind.table} WHERE typeof("start") = \'integer\''
        for kind in EVENT_KINDS
        if kind.target in _GPU_TARGETS and kind.table in tables
    )
    if not starts:
        return None
    first, last = _rows(connection, path, "GPU tables", f"SELECT min(s), max(s) FROM ({starts})")[0]
    if first is None:
        return None
    width = max(1, (int(last) - int(first)) // BUCKETS + 1)
    sql = f"SELECT (s - ?) / ?, count(*) FROM ({starts}) GROUP BY 1 ORDER BY 1"
    histogram = _rows(connection, path, "GPU tables", sql, first, width)
    counts = np.cumsum([n for _, n in histogram])
    if not len(counts) or counts[-1] <= detail.events:
        return None
    buckets = np.array([b for b, _ in histogram], dtype=np.int64)
    overflow = int(buckets[np.argmax(counts > detail.events)])  # the first bucket that takes the count past it
    limit = int(first) + overflow * width  # the events starting before this fit
    calls = _calls(connection, path, tables, detail.call_range)
    if len(calls):
        reach = np.maximum.accumulate(calls[:, 1])  # the latest end of the calls so far
        whole = reach < np.append(calls[1:, 0], np.iinfo(np.int64).max)  # no later call starts before that end
        cuts = reach[whole]
        inside = cuts[cuts < limit]
        return int(inside[-1]) if len(inside) else int(cuts[0])
    return max(limit - 1, int(first))


def _table(frame: pd.DataFrame) -> Table:
    """The numpy columns of an aggregated frame (text as objects), as the event tables hold them."""
    return Table(
        {c: frame[c].to_numpy(dtype=object if frame[c].dtype == object else None) for c in frame.columns},
        len(frame),
    )


def _frame(rows: list[tuple], columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=columns) if rows else pd.DataFrame({c: [] for c in columns})


def _by_name(frame: pd.DataFrame, microseconds: tuple[str, ...]) -> pd.DataFrame:
    """Rows of one name merged (ids sharing a text), sorted by total time; ns columns turned to us."""
    frame["name"] = frame["name"].fillna("").astype(str)
    for column in microseconds:
        frame[column] = frame[column].astype(np.float64) / 1000.0
    rule = {"min_us": "min", "max_us": "max", "kind": "first", "direction": "first"}
    merged = {c: rule.get(c, "sum") for c in frame.columns if c != "name"}
    grouped = frame.groupby("name", sort=False).agg(merged).reset_index()
    return grouped.sort_values("total_us", ascending=False, kind="stable").reset_index(drop=True)


def _named_totals(
    connection: sqlite3.Connection, path: Path, tables: set[str], table: str, with_extremes: bool = True
) -> pd.DataFrame:
    """Count and total (min, max) duration per name of one table with names.

    Grouped by the columns the name comes from (the ``StringIds`` id, NVTX's own text), then joined to its text:
    one join per group, not per row.
    """
    kind = _kind(table)
    columns = ["name", "count", "total_us", *(["min_us", "max_us"] if with_extremes else [])]
    if table not in tables:
        return _frame([], columns)
    source = kind.source(table_columns(connection, path, kind))
    keys = [*dict.fromkeys([*re.findall(r"\bt\.(\w+)", kind.name), kind.strings])]
    inner = ", ".join(f"t.{key} AS {key}" for key in keys)
    extremes = ', min(t."end" - t."start") AS lo, max(t."end" - t."start") AS hi' if with_extremes else ""
    grouped = (
        f'SELECT {inner}, count(*) AS c, sum(t."end" - t."start") AS d{extremes} FROM {source} '
        f"WHERE {kind.usable()} GROUP BY {', '.join(f't.{key}' for key in keys)}"
    )
    name = re.sub(r"\bt\.", "g.", kind.name)
    values = ", ".join(f"g.{i}" for i in ("c", "d", *(["lo", "hi"] if with_extremes else [])))
    sql = f"SELECT CAST({name} AS TEXT), {values} FROM ({grouped}) g LEFT JOIN {_STRINGS} s ON g.{kind.strings} = s.id"
    return _by_name(_frame(_rows(connection, path, table, sql), columns), tuple(columns[2:]))


def _memops(connection: sqlite3.Connection, path: Path, tables: set[str]) -> pd.DataFrame:
    columns = ["name", "kind", "direction", "count", "bytes", "total_us", "min_us", "max_us"]
    rows: list[tuple] = []
    measures = 'count(*), sum(t."bytes"), sum(t."end" - t."start"), min(t."end" - t."start"), max(t."end" - t."start")'
    if "CUPTI_ACTIVITY_KIND_MEMCPY" in tables:
        kind = _kind("CUPTI_ACTIVITY_KIND_MEMCPY")
        keys = "coalesce(t.copyKind, 0), coalesce(t.srcKind, 0), coalesce(t.dstKind, 0)"
        source = kind.source(table_columns(connection, path, kind))
        for copy, src, dst, *values in _rows(
            connection,
            path,
            kind.table,
            f"SELECT {keys}, {measures} FROM {source} WHERE {kind.usable()} GROUP BY 1, 2, 3",
        ):
            direction = DIRECTIONS.get(COPY_KINDS.get(int(copy), "other"), "other")
            rows.append((memcpy_name(int(copy), int(src), int(dst)), "memcpy", direction, *values))
    if "CUPTI_ACTIVITY_KIND_MEMSET" in tables:
        kind = _kind("CUPTI_ACTIVITY_KIND_MEMSET")
        source = kind.source(table_columns(connection, path, kind))
        sql = f"SELECT coalesce(t.memKind, 0), {measures} FROM {source} WHERE {kind.usable()} GROUP BY 1"
        for mem, *values in _rows(connection, path, kind.table, sql):
            rows.append((f"Memset ({MEM_KINDS.get(int(mem), 'Unknown')})", "memset", "memset", *values))
    frame = _frame(rows, columns)
    frame["bytes"] = frame["bytes"].astype(np.float64)
    return _by_name(frame, ("total_us", "min_us", "max_us")).astype({"count": np.int64})


def _api(connection: sqlite3.Connection, path: Path, tables: set[str]) -> pd.DataFrame:
    """CUDA runtime calls by name, the version suffix dropped as in the launches table."""
    frame = _named_totals(connection, path, tables, "CUPTI_ACTIVITY_KIND_RUNTIME", with_extremes=False)
    frame["name"] = [re.sub(r"_v\d+$", "", name) for name in frame["name"]]
    return _by_name(frame, ()) if len(frame) else frame


def export_totals(
    connection: sqlite3.Connection, path: Path, tables: set[str], detail: DetailLimit, cut: int
) -> tuple[ExportTotals, int]:
    """What SQLite aggregates over every usable row, and the time origin (ns: the earliest start) its times are
    relative to. ``gpu_events_in_window`` is left 0 for the caller, who read the window."""
    interval = 't."start" AS s, t."end" AS e, coalesce(t.deviceId, -1) AS device'
    intervals = _gpu_sources(connection, path, tables, interval)
    devices: list[tuple] = []
    if intervals:
        # each interval adds what reaches past every earlier-starting one on its device: their union, summed in one
        # sorted pass (SQLite sorts through its temporary files, not Python's memory)
        per_device = (
            "SELECT device, count(*), min(s), max(e), coalesce(sum(max(0, e - max(s, coalesce(reach, s)))), 0) FROM "
            "(SELECT device, s, e, max(e) OVER (PARTITION BY device ORDER BY s, e ROWS BETWEEN UNBOUNDED PRECEDING "
            f"AND 1 PRECEDING) AS reach FROM ({intervals})) GROUP BY device ORDER BY device"
        )
        devices = _rows(connection, path, "GPU tables", per_device)
    busy_ns = sum(int(row[4]) for row in devices)
    if len(devices) > 1:  # the union over every device, as the event tables' GPU busy time is
        union = (
            "SELECT coalesce(sum(max(0, e - max(s, coalesce(reach, s)))), 0) FROM (SELECT s, e, max(e) OVER "
            f"(ORDER BY s, e ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS reach FROM ({intervals}))"
        )
        busy_ns = int(_rows(connection, path, "GPU tables", union)[0][0])
    spans = [(row[2], row[3]) for row in devices]
    for kind in EVENT_KINDS:
        if kind.table in tables and kind.target not in _GPU_TARGETS:
            source = kind.source(table_columns(connection, path, kind))
            sql = f'SELECT min(t."start"), max(t."end") FROM {source} WHERE {kind.usable()}'
            spans += [row for row in _rows(connection, path, kind.table, sql) if row[0] is not None]
    origin = min(int(first) for first, _ in spans)
    busy = _frame([row[:4] for row in devices], ["device", "events", "first_us", "last_us"])
    for column in ("first_us", "last_us"):
        busy[column] = (busy[column].to_numpy(dtype=np.int64) - origin) / 1000.0
    calls = _calls(connection, path, tables, detail.call_range)
    kernels = _named_totals(connection, path, tables, "CUPTI_ACTIVITY_KIND_KERNEL")
    memops = _memops(connection, path, tables)
    totals = ExportTotals(
        detail_limit=detail.events,
        window_end_us=(cut - origin) / 1000.0,
        export_end_us=(max(int(last) for _, last in spans) - origin) / 1000.0,
        gpu_events=int(kernels["count"].sum() + memops["count"].sum()),
        gpu_events_in_window=0,
        calls_in_window=int(np.count_nonzero(calls[:, 0] <= cut)),
        call_durations_us=(calls[:, 1] - calls[:, 0]).astype(np.float64) / 1000.0,
        kernels=_table(kernels),
        memops=_table(memops),
        busy=_table(busy),
        busy_us=busy_ns / 1000.0,
        api=_table(_api(connection, path, tables)),
        ranges=_table(_named_totals(connection, path, tables, "NVTX_EVENTS")),
    )
    return totals, origin


def rebased(totals: ExportTotals, shift_us: float, gpu_events_in_window: int) -> ExportTotals:
    """``totals`` with its times moved by ``shift_us`` (onto the tables' origin) and the window's GPU events."""
    busy = totals.busy.assign(first_us=totals.busy["first_us"] + shift_us, last_us=totals.busy["last_us"] + shift_us)
    return replace(
        totals,
        window_end_us=totals.window_end_us + shift_us,
        export_end_us=totals.export_end_us + shift_us,
        busy=busy,
        gpu_events_in_window=gpu_events_in_window,
    )
