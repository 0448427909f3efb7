"""Nsight Systems SQLite export (``nsys export --type sqlite``) -> the same :class:`TraceTables` as Kineto.

Tables read (columns as nsys's own ``reports/*.py`` scripts use them; times in ns, here turned to us):

* ``NVTX_EVENTS`` push/pop (59) and start/end (60) ranges; text in ``text`` or ``textId`` -> ``StringIds``
* ``CUPTI_ACTIVITY_KIND_KERNEL`` (name ``demangledName`` -> ``StringIds``), ``..._MEMCPY``, ``..._MEMSET``,
  ``..._SYNCHRONIZATION``: GPU work; ``CUPTI_ACTIVITY_KIND_RUNTIME``: CUDA API calls (launches)
* ``OSRT_API``: OS runtime calls, which stand in for CPU operators (nsys records no PyTorch operators)

Kernels join their launch on ``correlationId`` *within a process*: a kernel's ``globalPid`` equals its
launch's ``globalTid & 0xFFFFFFFFFF000000``. Here both sides get one correlation number that folds the
process in, so the analyses join on ``correlation`` alone, exactly as for Kineto.

Each table is one :class:`EventKind` in :data:`EVENT_KINDS`: its columns (required, or optional: read as
NULL where an export of another nsys version lacks them; columns not named are ignored), its name
lookup in ``StringIds`` and the function that turns its rows into columns of a :class:`TraceTables` table.

Rows are checked in SQL before they are fetched: a number column holding anything but an integer (text,
a blob, a real; NULL too where the column is required), ``end < start`` or negative ``bytes`` make the row
unusable; such rows are skipped and counted in :attr:`TraceInfo.skipped_events` by reason and table, as the
Kineto parser counts its unusable events. CUDA runtime calls sharing one correlation id in one process are
skipped too (which call launched the work is unknowable), and text that is not UTF-8 is decoded with
replacement characters and counted in a warning.
"""

from __future__ import annotations

import re
import sqlite3
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from profkit.errors import ProfkitError
from profkit.jsonio import open_regular
from profkit.parsers.columns import factorize, is_missing, object_column
from profkit.parsers.nsys_formats import SQLITE_MAGIC
from profkit.parsers.sqlite_signals import SignalGuard, responsive
from profkit.parsers.tables import (
    SCHEMAS,
    DetailLimit,
    ExportTotals,
    Table,
    TraceInfo,
    TraceTables,
    build_table,
    empty_table,
)

if TYPE_CHECKING:
    import pandas as pd

NVTX_RANGE_TYPES = (59, 60, 70)  # push/pop, start/end, NVTXT push/pop
COPY_KINDS = {
    1: "HtoD",
    2: "DtoH",
    3: "HtoA",
    4: "AtoH",
    5: "AtoA",
    6: "AtoD",
    7: "DtoA",
    8: "DtoD",
    9: "HtoH",
    10: "PtoP",
}
DIRECTIONS = {"HtoD": "H2D", "DtoH": "D2H", "DtoD": "D2D", "PtoP": "P2P", "HtoH": "H2H"}
MEM_KINDS = {
    0: "Unknown",
    1: "Pageable",
    2: "Device",
    3: "Array",
    4: "Managed",
    5: "Device Static",
    6: "Managed Static",
    7: "Pinned",
}
PAGEABLE = 1


def _connect(path: Path, any_thread: bool = False) -> sqlite3.Connection:
    """A read-only connection (``any_thread``: usable from a thread other than the one opening it)."""
    with open_regular(path, "Nsight Systems SQLite export") as handle:  # a FIFO or device is refused, not opened
        if handle.read(16) != SQLITE_MAGIC:
            raise ProfkitError(f"{path}: not an SQLite database (export one with: nsys export --type sqlite REPORT)")
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=not any_thread)
        connection.execute("SELECT name FROM sqlite_master LIMIT 1").fetchall()
    except sqlite3.DatabaseError as error:
        raise ProfkitError(f"{path}: the SQLite file is unreadable or truncated ({error})") from error
    return connection


def _query(connection: sqlite3.Connection, path: Path, table: str, sql: str) -> pd.DataFrame:
    import pandas as pd

    try:
        return pd.read_sql_query(sql, connection)
    except (sqlite3.DatabaseError, pd.errors.DatabaseError) as error:
        raise ProfkitError(f"{path}: cannot read {table} ({error}); is this an nsys SQLite export?") from error


#: rows fetched per batch: the Python objects of one batch are all that exist at once
BATCH_ROWS = 65536

#: one fetched table: column -> numpy array (numbers int64, or float64 with NaN where a NULL was read)
Columns = dict[str, np.ndarray]


def _fetch(connection: sqlite3.Connection, path: Path, table: str, sql: str, batch: int, rows: int) -> Columns:
    """The ``rows`` rows of ``sql`` as compact columns, fetched ``batch`` rows at a time.

    Every column is allocated once at its final length and filled batch by batch (no pieces to join, nothing
    left fragmented); a number column turns float64 (NaN for NULL) at its first NULL. The ``name`` column
    holds one shared ``str`` per distinct name (a pipeline repeats a few thousand names millions of times).
    """
    try:
        cursor = connection.execute(sql)
        fields = [d[0] for d in cursor.description]
        out: Columns = {f: np.empty(rows, dtype=object if f == "name" else np.int64) for f in fields}
        shared: dict[str | None, str | None] = {}
        done = 0
        while chunk := cursor.fetchmany(batch):
            end = done + len(chunk)
            if end > rows:
                raise ProfkitError(f"{path}: {table} changed while it was read")
            for field, values in zip(fields, zip(*chunk, strict=True), strict=True):
                column = out[field]
                if field == "name":
                    column[done:end] = [shared.setdefault(v, v) for v in values]
                elif column.dtype == np.int64:
                    try:
                        column[done:end] = np.array(values, dtype=np.int64)
                    except (TypeError, OverflowError):
                        column = out[field] = column.astype(np.float64)
                        column[done:end] = np.array(values, dtype=np.float64)
                else:
                    column[done:end] = np.array(values, dtype=np.float64)
            done = end
    except sqlite3.DatabaseError as error:
        raise ProfkitError(f"{path}: cannot read {table} ({error}); is this an nsys SQLite export?") from error
    if done != rows:
        raise ProfkitError(f"{path}: {table} changed while it was read")
    return out


class _Strings:
    """``StringIds`` read once, mapping each distinct id fetched to its text (not one joined string per row)."""

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self._connection, self._path = connection, path
        self._texts: dict[int, tuple[str, bool]] | None = None
        self.replaced = 0  # rows whose text was not UTF-8, as the per-row text_factory counts them

    def usable(self) -> bool:
        """Whether ids are unique (as nsys writes them): else a row joins several strings, read by a SQL join."""
        try:
            count, distinct = self._connection.execute("SELECT count(id), count(DISTINCT id) FROM StringIds").fetchone()
        except sqlite3.DatabaseError:
            return False
        return count == distinct

    def _load(self) -> dict[int, tuple[str, bool]]:
        if self._texts is None:
            factory = self._connection.text_factory
            self._connection.text_factory = bytes
            try:
                cursor = self._connection.execute("SELECT id, CAST(value AS TEXT) FROM StringIds WHERE value NOT NULL")
                self._texts = {}
                for key, data in cursor:
                    if isinstance(key, int):
                        try:
                            self._texts[key] = (data.decode("utf-8"), False)
                        except UnicodeDecodeError:
                            self._texts[key] = (data.decode("utf-8", "replace"), True)
            except sqlite3.DatabaseError as error:
                raise ProfkitError(f"{self._path}: cannot read StringIds ({error})") from error
            finally:
                self._connection.text_factory = factory
        return self._texts

    def names(self, ids: np.ndarray) -> np.ndarray:
        """The text of each id ("" where ``StringIds`` has none), one shared ``str`` per distinct id."""
        texts = self._load()
        codes, uniques = factorize(ids)
        found = [texts.get(int(u), ("", False)) for u in uniques]
        names = np.empty(len(uniques), dtype=object)
        names[:] = [text for text, _ in found]
        bad = np.array([replaced for _, replaced in found], dtype=bool)
        if bad.any():
            self.replaced += int(np.bincount(codes, minlength=len(uniques))[bad].sum())
        return names[codes]


def _text(values: np.ndarray, convert: Callable[[Any], str]) -> np.ndarray:
    """``convert`` applied once per distinct value, the results shared by every row holding it."""
    inverse, uniques = factorize(values)
    converted = np.empty(len(uniques), dtype=object)
    converted[:] = [convert(u) for u in uniques]
    return converted[inverse]


def _pid_tid(global_tid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    values = _as_ints(global_tid, 0)
    return _text((values >> 24) & 0xFFFFFF, str), _text(values & 0xFFFFFF, str)


class _Correlations:
    """One correlation number per (process, correlationId): ``process index << 32 | correlationId``."""

    def __init__(self) -> None:
        self._processes: dict[int, int] = {}

    def __call__(self, process: np.ndarray, correlation: np.ndarray) -> np.ndarray:
        process_ids = _as_ints(process, -1)
        codes, seen = factorize(process_ids)  # in order of first appearance, as a per-row loop would number them
        numbers = np.array([self._processes.setdefault(int(p), len(self._processes)) for p in seen], dtype=np.int64)
        index = numbers[codes]
        ids = _as_ints(correlation, -1)
        return np.where(ids >= 0, (index << 32) | (ids & 0xFFFFFFFF), -1)


def memcpy_name(copy_kind: int, src: int, dst: int) -> str:
    kind = COPY_KINDS.get(copy_kind, "other")
    return f"Memcpy {kind} ({MEM_KINDS.get(src, 'Unknown')} -> {MEM_KINDS.get(dst, 'Unknown')})"


class _Context:
    """What every kind's builder shares: the correlation numbering, and the timing made relative later.

    Each table's rows are built as soon as they are fetched (and their fetched columns dropped), before the
    time origin (the earliest start of all tables) is known: :meth:`timing` keeps the raw nanoseconds and
    :meth:`relative` turns them into ``ts``/``dur`` microseconds once it is.
    """

    def __init__(self) -> None:
        self.correlate = _Correlations()

    @staticmethod
    def timing(frame: Columns) -> dict[str, Any]:
        return {"ts": frame["start"].astype(np.float64), "dur": frame["end"].astype(np.float64)}

    @staticmethod
    def relative(columns: dict[str, Any], origin_ns: float) -> None:
        start = columns["ts"]
        start -= origin_ns
        start /= 1000.0
        end = columns["dur"]
        end -= origin_ns
        end /= 1000.0
        end -= start
        np.maximum(end, 0.0, out=end)  # now the duration, computed in place: no extra column per table


def _as_ints(values: np.ndarray, missing: int) -> np.ndarray:
    """A fetched number column as int64, NULLs (NaN) read as ``missing``."""
    if values.dtype == np.int64:
        return values
    return np.where(np.isnan(values), missing, values).astype(np.int64)


def _ints(frame: Columns, column: str, missing: int = -1) -> np.ndarray:
    return _as_ints(frame[column], missing)


def _floats(frame: Columns, column: str) -> np.ndarray:
    """A number column as float64 (NaN where NULL, as an absent optional column is)."""
    return frame[column].astype(np.float64)


def _rows(frame: Columns) -> int:
    return len(frame["start"])


def _names(frame: Columns) -> np.ndarray:
    names = frame["name"]
    missing = np.fromiter(map(is_missing, names.tolist()), dtype=bool, count=len(names))
    if missing.any():
        names[missing] = ""
    return names


def _gpu_place(frame: Columns) -> dict[str, Any]:
    return {"device": _ints(frame, "deviceId"), "stream": _ints(frame, "streamId")}


def _gpu_work(frame: Columns, ctx: _Context) -> dict[str, Any]:
    """Timing, device, stream and the launch correlation of kernels, memcpys and memsets."""
    correlation = ctx.correlate(frame["globalPid"], frame["correlationId"])
    return {**ctx.timing(frame), **_gpu_place(frame), "correlation": correlation}


def _ranges(frame: Columns, ctx: _Context) -> dict[str, Any]:
    pid, tid = _pid_tid(frame["globalTid"])
    return {**ctx.timing(frame), "name": _names(frame), "pid": pid, "tid": tid, "on_gpu": np.zeros(_rows(frame), bool)}


def _dims(frame: Columns, names: tuple[str, str, str]) -> np.ndarray:
    """ "[x, y, z]" (as str() of a list of ints; NULL as 0) per row, one shared ``str`` per distinct triple."""
    x, y, z = (_ints(frame, c, 0) for c in names)
    code = factorize(x)[0]
    for other in (y, z):  # fold one column at a time into one code per distinct prefix (no overflow)
        other_code, other_values = factorize(other)
        code, _ = factorize(code.astype(np.int64) * len(other_values) + other_code)
    first = np.full(code.max() + 1 if len(code) else 0, -1, dtype=np.int64)
    first[code[::-1]] = np.arange(len(code) - 1, -1, -1)  # the first row of each code
    texts = np.empty(len(first), dtype=object)
    texts[:] = [f"[{int(x[i])}, {int(y[i])}, {int(z[i])}]" for i in first]
    return texts[code]


def _kernels(frame: Columns, ctx: _Context) -> dict[str, Any]:
    shared = np.nan_to_num(_floats(frame, "staticSharedMemory")) + np.nan_to_num(_floats(frame, "dynamicSharedMemory"))
    return {
        **_gpu_work(frame, ctx),
        "name": _names(frame),
        "external_id": np.full(_rows(frame), -1, np.int64),
        "grid": _dims(frame, _GRID[:3]),
        "block": _dims(frame, _GRID[3:]),
        "registers": _floats(frame, "registersPerThread"),
        "shared_memory": shared,
    }


def _launches(frame: Columns, ctx: _Context) -> dict[str, Any]:
    pid, tid = _pid_tid(frame["globalTid"])
    # globalTid & 0xFFFFFFFFFF000000: the thread bits cleared (shifts keep it within int64)
    process = (_ints(frame, "globalTid", 0) >> 24) << 24
    return {
        **ctx.timing(frame),
        "name": _text(_names(frame), lambda name: re.sub(r"_v\d+$", "", str(name))),
        "pid": pid,
        "tid": tid,
        "correlation": ctx.correlate(process, frame["correlationId"]),
        "external_id": np.full(_rows(frame), -1, np.int64),
        "api": object_column(_rows(frame), "runtime"),
    }


def _memcpys(frame: Columns, ctx: _Context) -> dict[str, Any]:
    copy, src, dst = (_ints(frame, c, 0) for c in ("copyKind", "srcKind", "dstKind"))
    kinds = [COPY_KINDS.get(int(k), "other") for k in copy]
    return {
        **_gpu_work(frame, ctx),
        "name": [memcpy_name(int(c), int(s), int(d)) for c, s, d in zip(copy, src, dst, strict=True)],
        "kind": ["memcpy"] * len(copy),
        "direction": [DIRECTIONS.get(k, "other") for k in kinds],
        "pageable": (src == PAGEABLE) | (dst == PAGEABLE),
        "bytes": _floats(frame, "bytes"),
    }


def _memsets(frame: Columns, ctx: _Context) -> dict[str, Any]:
    mem = _ints(frame, "memKind", 0)
    return {
        **_gpu_work(frame, ctx),
        "name": [f"Memset ({MEM_KINDS.get(int(k), 'Unknown')})" for k in mem],
        "kind": ["memset"] * len(mem),
        "direction": ["memset"] * len(mem),
        "pageable": mem == PAGEABLE,
        "bytes": _floats(frame, "bytes"),
    }


def _syncs(frame: Columns, ctx: _Context) -> dict[str, Any]:
    names = [f"CUDA sync (type {int(t)})" for t in _ints(frame, "syncType", 0)]
    return {**ctx.timing(frame), "name": names, **_gpu_place(frame)}


def _osrt(frame: Columns, ctx: _Context) -> dict[str, Any]:
    pid, tid = _pid_tid(frame["globalTid"])
    return {
        **ctx.timing(frame),
        "name": _names(frame),
        "cat": object_column(_rows(frame), "osrt"),
        "pid": pid,
        "tid": tid,
        "external_id": np.full(_rows(frame), -1, np.int64),
    }


@dataclass(frozen=True)
class EventKind:
    """How one nsys table becomes rows of one :class:`TraceTables` table."""

    table: str  # the nsys SQLite table
    target: str  # the TraceTables table it fills
    role: str | None  # what it holds, for the "not captured" notes (None: its absence is not reported)
    build: Callable[[Columns, _Context], dict[str, Any]]
    required: tuple[str, ...] = ("start", "end")
    optional: tuple[str, ...] = ()  # read as NULL where an export lacks them
    strings: str | None = None  # the column joined to StringIds (as ``s``)
    name: str = "s.value"  # SQL giving the event name, over the table's row ``t`` and ``s``
    where: str = ""
    sql_only: tuple[str, ...] = ()  # columns only ``name`` and ``where`` read: not fetched (nor ``strings``)

    def _numbers(self, columns: tuple[str, ...]) -> list[str]:
        """The integer columns among ``columns`` (all but the ``StringIds`` key and the SQL-only ones)."""
        return [c for c in columns if c != self.strings and c not in self.sql_only]

    @property
    def reasons(self) -> tuple[str, ...]:
        """Why a row is unusable, indexed by the code ``check`` gives it minus one."""
        return (
            *(f"missing or bad {c}" for c in self._numbers(self.required)),
            *(f"bad {c}" for c in self._numbers(self.optional)),
            "negative dur",
            *(["negative bytes"] if "bytes" in self.required else []),
        )

    def check(self) -> str:
        """SQL giving each row 0 when usable, else the 1-based index of its first reason in ``reasons``."""
        tests = [f"typeof(u.\"{c}\") != 'integer'" for c in self._numbers(self.required)]
        tests += [f"typeof(u.\"{c}\") NOT IN ('integer', 'null')" for c in self._numbers(self.optional)]
        tests += ['u."end" < u."start"', *(['u."bytes" < 0'] if "bytes" in self.required else [])]
        return "CASE " + " ".join(f"WHEN {test} THEN {code}" for code, test in enumerate(tests, 1)) + " ELSE 0 END"

    def source(self, columns: set[str]) -> str:
        """The table as ``t`` with its row checks (``t.bad``), columns absent from this export read as NULL."""
        wanted = (*self.required, *self.optional)
        inner = ", ".join(f'"{c}"' if c in columns else f'NULL AS "{c}"' for c in wanted)
        # checked over the aliased columns: an absent optional column is then NULL, not the string literal
        # that SQLite reads a double-quoted name it cannot resolve as
        return f"(SELECT u.*, {self.check()} AS bad FROM (SELECT {inner} FROM {self.table}) u) t"

    @property
    def by_id(self) -> bool:
        """Whether the name is the ``StringIds`` text of an integer id column (fetched as the id, looked up once)."""
        return self.strings is not None and self.name == "s.value" and self.strings in self.required

    def usable(self, cut: int | None = None) -> str:
        """SQL condition of the usable rows over ``t`` (those starting up to ``cut`` ns when given)."""
        window = [f't."start" <= {int(cut)}'] if cut is not None else []
        return " AND ".join(["t.bad = 0", *([self.where] if self.where else []), *window])

    def sql(self, columns: set[str], by_id: bool = False, cut: int | None = None) -> str:
        """The usable rows (up to ``cut``), with their name joined from ``StringIds`` (or, ``by_id``, its id as
        ``name_id``)."""
        wanted = (*self.required, *self.optional)
        fetched = [f't."{c}"' for c in wanted if c not in self.sql_only and c != self.strings]
        where = self.usable(cut)
        if by_id:
            select = ", ".join([*fetched, f"t.{self.strings} AS name_id"])
            return f"SELECT {select} FROM {self.source(columns)} WHERE {where}"
        # CAST: a name stored as a number or a blob still reads as text (blobs through the UTF-8 text_factory)
        select = "SELECT " + ", ".join(fetched + ([f"CAST({self.name} AS TEXT) AS name"] if self.strings else []))
        join = f" LEFT JOIN StringIds s ON t.{self.strings} = s.id" if self.strings else ""
        return f"{select} FROM {self.source(columns)}{join} WHERE {where}"

    def counts_sql(self, columns: set[str], cut: int | None = None) -> str:
        """Per reason code (0: usable) the rows, those whose ``strings`` id is not an integer, and those starting
        up to ``cut`` ns (all, without one)."""
        where = f" WHERE {self.where}" if self.where else ""
        odd = f"sum(typeof(t.\"{self.strings}\") != 'integer')" if self.strings else "0"
        inside = f'sum(t."start" <= {int(cut)})' if cut is not None else "count(*)"
        return f"SELECT t.bad, count(*), {odd}, {inside} FROM {self.source(columns)}{where} GROUP BY t.bad"


_GPU = ("deviceId", "streamId", "correlationId", "globalPid")
_GRID = ("gridX", "gridY", "gridZ", "blockX", "blockY", "blockZ")

#: every event kind read, in the order of the "not captured" notes
EVENT_KINDS = (
    EventKind(
        "NVTX_EVENTS",
        "ranges",
        "NVTX ranges",
        _ranges,
        required=("start", "end", "eventType"),
        optional=("text", "textId", "globalTid"),
        strings="textId",
        name="coalesce(t.text, s.value)",
        where=f"t.eventType IN {NVTX_RANGE_TYPES}",
        sql_only=("eventType", "text"),
    ),
    EventKind(
        "CUPTI_ACTIVITY_KIND_KERNEL",
        "kernels",
        "GPU kernels",
        _kernels,
        required=("start", "end", "demangledName"),
        optional=(*_GPU, *_GRID, "registersPerThread", "staticSharedMemory", "dynamicSharedMemory"),
        strings="demangledName",
    ),
    EventKind(
        "CUPTI_ACTIVITY_KIND_RUNTIME",
        "launches",
        "CUDA runtime API calls",
        _launches,
        required=("start", "end", "nameId"),
        optional=("globalTid", "correlationId"),
        strings="nameId",
    ),
    EventKind(
        "CUPTI_ACTIVITY_KIND_MEMCPY",
        "memops",
        "GPU memcpys",
        _memcpys,
        required=("start", "end", "bytes", "copyKind"),
        optional=(*_GPU, "srcKind", "dstKind"),
    ),
    EventKind(
        "CUPTI_ACTIVITY_KIND_MEMSET",
        "memops",
        "GPU memsets",
        _memsets,
        required=("start", "end", "bytes"),
        optional=(*_GPU, "memKind"),
    ),
    EventKind(
        "CUPTI_ACTIVITY_KIND_SYNCHRONIZATION", "syncs", None, _syncs, optional=("deviceId", "streamId", "syncType")
    ),
    EventKind(
        "OSRT_API",
        "cpu_ops",
        "OS runtime calls",
        _osrt,
        required=("start", "end", "nameId"),
        optional=("globalTid",),
        strings="nameId",
    ),
)
#: what each table holds, for the "not captured" notes
TABLE_ROLES = {kind.table: kind.role for kind in EVENT_KINDS if kind.role}


def table_columns(connection: sqlite3.Connection, path: Path, kind: EventKind) -> set[str]:
    """The columns of ``kind``'s table in this export; a required one missing is an error."""
    try:
        columns = {row[1] for row in connection.execute(f'PRAGMA table_info("{kind.table}")')}
    except sqlite3.DatabaseError as error:
        raise ProfkitError(f"{path}: cannot read {kind.table} ({error}); is this an nsys SQLite export?") from error
    missing = [c for c in kind.required if c not in columns]
    if missing:
        raise ProfkitError(
            f"{path}: cannot read {kind.table} (no such column: {', '.join(missing)}); is this an nsys SQLite export?"
        )
    return columns


def _read_kind(
    connection: sqlite3.Connection,
    path: Path,
    kind: EventKind,
    skipped: Counter[str],
    batch: int = BATCH_ROWS,
    strings: _Strings | None = None,
    cut: int | None = None,
) -> tuple[Columns, int]:
    """The usable rows of one table (starting up to ``cut`` ns when given) and the count of all its usable rows;
    the unusable ones counted in ``skipped`` as "reason (table)".

    With ``strings`` (``StringIds`` ids unique), names are fetched as ids and looked up once per distinct id.
    """
    columns = table_columns(connection, path, kind)
    usable = inside = odd_ids = 0
    counts = _query(connection, path, kind.table, kind.counts_sql(columns, cut))
    for code, count, odd, in_window in counts.itertuples(index=False):
        if int(code) == 0:
            usable, odd_ids, inside = int(count), int(odd or 0), int(in_window or 0)
        else:
            skipped[f"{kind.reasons[int(code) - 1]} ({kind.table})"] += int(count)
    # an id stored as text or a real joins by SQLite's comparison rules: such a table keeps the SQL join
    by_id = strings is not None and kind.by_id and not odd_ids
    frame = _fetch(connection, path, kind.table, kind.sql(columns, by_id, cut), batch, inside)
    if by_id and strings is not None:
        frame["name"] = strings.names(frame.pop("name_id"))
    return (_unique_launches(frame, kind.table, skipped) if kind.target == "launches" else frame), usable


def _unique_launches(frame: Columns, table: str, skipped: Counter[str]) -> Columns:
    """Drop runtime calls that share a correlation id with another call of their process (counted)."""
    process = _ints(frame, "globalTid", 0) >> 24
    correlation = _floats(frame, "correlationId")
    pairs = np.column_stack([process.astype(np.float64), correlation])
    _, inverse, repeats = np.unique(pairs, axis=0, return_inverse=True, return_counts=True)
    shared = ~np.isnan(correlation) & (repeats[inverse.reshape(-1)] > 1)
    del pairs
    if count := int(shared.sum()):
        skipped[f"duplicate correlationId ({table})"] += count
        keep = ~shared
        return {name: column[keep] for name, column in frame.items()}
    return frame


class _Utf8:
    """A ``text_factory`` decoding text that is not UTF-8 with replacement characters, counting it."""

    def __init__(self) -> None:
        self.replaced = 0

    def __call__(self, data: bytes) -> str:
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            self.replaced += 1
            return data.decode("utf-8", "replace")


def load_nsys_sqlite(path: Path, batch: int = BATCH_ROWS, detail: DetailLimit | None = None) -> TraceTables:
    """The tables of an nsys SQLite export, its rows fetched ``batch`` at a time.

    With ``detail``, an export of more GPU events than it allows gives tables of its first whole calls only and
    :class:`ExportTotals` aggregated by SQLite over every row (memory bounded by the limit, not the file).
    """
    connection = responsive(_connect(path))
    try:
        with SignalGuard():  # Ctrl-C stops a long statement at once, and reads as Ctrl-C
            return _read(connection, path, batch, detail)
    finally:
        connection.close()


def _read(connection: sqlite3.Connection, path: Path, batch: int, detail: DetailLimit | None = None) -> TraceTables:
    utf8 = connection.text_factory = _Utf8()
    tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if "StringIds" not in tables:
        raise ProfkitError(f"{path}: SQLite, but not an Nsight Systems export (no StringIds table)")
    if not any(table in tables for table in TABLE_ROLES):
        raise ProfkitError(f"{path}: the report holds no events (no NVTX, CUDA or OS runtime tables)")
    skipped: Counter[str] = Counter()
    strings = _Strings(connection, path)
    lookup = strings if strings.usable() else None
    ctx = _Context()
    cut = None
    pending: Future[tuple[ExportTotals, int]] | None = None
    if detail is not None:
        from profkit.parsers import nsys_totals  # it reads this module's event kinds: imported when needed

        cut = nsys_totals.detail_cut(connection, path, tables, detail)
        if cut is not None:  # SQLite aggregates the whole export while Python reads the window
            aggregating = _connect(path, any_thread=True)
            aggregating.text_factory = _Utf8()
            pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="profkit-nsys-totals")
            pending = pool.submit(nsys_totals.export_totals, aggregating, path, tables, detail, cut)
    parts: dict[str, list[dict[str, Any]]] = {}
    rows = usable = 0
    try:
        for kind in EVENT_KINDS:
            if kind.table in tables:
                frame, kind_usable = _read_kind(connection, path, kind, skipped, batch, lookup, cut)
                usable += kind_usable
                if count := _rows(frame):
                    rows += count
                    parts.setdefault(kind.target, []).append(kind.build(frame, ctx))
                del frame  # only the built columns stay
        aggregated = pending.result() if pending is not None else None
    finally:
        if pending is not None:
            aggregating.interrupt()  # a read that failed (or was interrupted) stops the aggregation too
            pool.shutdown(wait=True)
            aggregating.close()
    if not rows:
        if skipped:
            raise ProfkitError(f"{path}: the report holds no usable events ({_skipped_detail(skipped)})")
        raise ProfkitError(f"{path}: the report holds no events (its event tables are empty)")

    origin_ns = min(float(piece["ts"].min()) for pieces in parts.values() for piece in pieces)
    built: dict[str, Table] = {}
    for name in SCHEMAS:
        pieces = parts.pop(name, [])
        for piece in pieces:
            ctx.relative(piece, origin_ns)
        if len(pieces) > 1:
            pieces = [{k: np.concatenate([np.asarray(p[k]) for p in pieces]) for k in pieces[0]}]
        built[name] = build_table(name, pieces[0]) if pieces else empty_table(name)
        del pieces
    info = TraceInfo(
        path=path,
        source_format="nsys",
        devices=_devices(connection, tables),
        event_count=usable + sum(skipped.values()),
        skipped_events=dict(skipped),
        time_origin_us=origin_ns / 1000.0,
        decoder="sqlite",
        not_captured=[f"{role} ({table})" for table, role in TABLE_ROLES.items() if table not in tables],
    )
    info.warnings.append(
        "Nsight Systems records no PyTorch operators: the CPU view lists OS runtime calls (OSRT_API) instead"
        if "OSRT_API" in tables
        else "Nsight Systems records no PyTorch operators, and OS runtime calls were not traced"
    )
    if skipped:
        info.warnings.append(f"skipped {sum(skipped.values())} unusable events ({_skipped_detail(skipped)})")
    totals = None
    if aggregated is not None:  # onto the tables' time origin
        export, export_origin_ns = aggregated
        gpu_in_window = sum(len(built[name]) for name in ("kernels", "memops"))
        totals = nsys_totals.rebased(export, (export_origin_ns - origin_ns) / 1000.0, gpu_in_window)
    if replaced := utf8.replaced + strings.replaced:
        info.warnings.append(f"{replaced} text values were not valid UTF-8: decoded with replacement characters")
    return TraceTables(info=info, **built, totals=totals)


def _skipped_detail(skipped: Counter[str]) -> str:
    return ", ".join(f"{count} {reason}" for reason, count in skipped.most_common())


def _devices(connection: sqlite3.Connection, tables: set[str]) -> list[dict[str, Any]]:
    for table in ("TARGET_INFO_GPU", "TARGET_INFO_CUDA_DEVICE"):
        if table in tables:
            try:
                rows = connection.execute(f"SELECT * FROM {table}").fetchall()
                names = [d[0] for d in connection.execute(f"SELECT * FROM {table} LIMIT 0").description]
            except sqlite3.DatabaseError:
                continue
            return [dict(zip(names, row, strict=True)) for row in rows]
    return []
