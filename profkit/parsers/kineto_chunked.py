"""Chunked Kineto decoding: a large trace read in blocks, each block decoded and turned into table columns at once.

The file (plain or gzipped) is read ``chunk_size`` bytes at a time. The header before ``"traceEvents": [`` is
decoded on its own; each block of the events array is cut at an event boundary (``}`` ``,`` ``{``), decoded by
msgspec as a JSON array of :class:`KinetoEvent` and turned into per-table columns; its structs are then dropped,
so memory holds a few blocks of structs plus the columns. The rest of the file (the last events and any header
keys after the array) is decoded as a document. String values are interned, so repeated names share one object.

Given a ``mapper`` (an ordered map that the app layer runs in worker processes, :mod:`profkit.app.parallel`),
this process reads and cuts the blocks and the mapper decodes them side by side; results are merged in file order,
so the tables are the same. :func:`decode_block` returns text as distinct values and int32 codes, numbers as
arrays: what crosses between processes is small.

A boundary guess inside a string (``"a},{b"``) always leaves an unterminated string in the block, whose decode
then fails; any failure (that one, a value the typed decode rejects, invalid UTF-8, hostile nesting) raises
:class:`ChunkFallback`, and the caller decodes the whole document the usual way, which keeps its behaviour.
"""

from __future__ import annotations

import gzip
import re
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

import msgspec
import numpy as np

from profkit.errors import ProfkitError
from profkit.jsonio import max_input_bytes, open_regular
from profkit.parsers import kineto as k
from profkit.parsers.registry import BlockMapper
from profkit.parsers.tables import SCHEMAS, TraceTables, build_table

#: bytes decoded per block (about 40k events of a typical trace)
DEFAULT_CHUNK_SIZE = 16 << 20
_EVENTS_KEY = re.compile(rb'"traceEvents"\s*:\s*\[')
_BOUNDARY_TAIL = re.compile(rb"\s*,\s*\{")
_HEAD_LIMIT = 64 << 20
_EVENTS_DECODER = msgspec.json.Decoder(list[k.KinetoEvent])
_NUMERIC = {"int64": np.int64, "float64": np.float64, "bool": bool}


class ChunkFallback(Exception):
    """The chunked decode cannot read this file exactly: decode the whole document instead."""


@contextmanager
def _open(path: Path) -> Iterator[BinaryIO]:
    """The trace's bytes, gunzipped when it is gzip; the file is closed on leaving (a GzipFile given a file object
    leaves it open)."""
    with open_regular(path, "Kineto trace (.json or .json.gz)") as handle:
        packed = handle.read(2) == b"\x1f\x8b"
        handle.seek(0)
        if not packed:
            yield handle
            return
        with gzip.GzipFile(fileobj=handle, mode="rb") as unpacked:
            yield unpacked  # type: ignore[misc]


def _last_boundary(buf: bytes | bytearray, end: int) -> tuple[int, int] | None:
    """(end of one event, start of the next) for the last ``},{`` at or before ``end``; None if there is none."""
    pos = buf.rfind(b"}", 0, end)
    while pos >= 0:
        match = _BOUNDARY_TAIL.match(buf, pos + 1)
        if match:
            return pos + 1, match.end() - 1
        pos = buf.rfind(b"}", 0, pos)
    return None


def _blocks(handle: BinaryIO, path: Path, chunk_size: int) -> Iterator[tuple[str, bytes | memoryview]]:
    """("head", header bytes), then ("events", a JSON array of events)..., then ("tail", the rest as a document)."""
    limit, total = max_input_bytes(), 0
    buf = bytearray()

    def more() -> bool:
        nonlocal total
        data = handle.read(chunk_size)
        total += len(data)
        if total > limit:
            raise ChunkFallback  # the whole-document path refuses it with its own message
        buf.extend(data)
        return bool(data)

    while (match := _EVENTS_KEY.search(buf)) is None:
        if len(buf) > _HEAD_LIMIT or not more():
            raise ChunkFallback
    yield "head", bytes(buf[: match.start()]) + b'"traceEvents":[]}'
    del buf[: match.end() - 1]  # buf starts with the "[" of the events
    eof = False
    while True:
        while not eof and len(buf) < 2 * chunk_size:
            eof = not more()
        if eof:
            buf[:1] = b'{"traceEvents":['
            yield "tail", bytes(buf)
            return
        cut = _last_boundary(buf, chunk_size + chunk_size // 2)
        if cut is None:
            eof = not more()  # one event larger than a block: read on
            continue
        # the block is decoded in place (no copy): "[" + events + "]" written over the separators around it
        buf[cut[0]] = ord("]")
        block = memoryview(buf)[: cut[0] + 1]
        try:
            yield "events", block
        finally:
            block.release()  # buf may be resized again
        del buf[: cut[1] - 1]
        buf[0] = ord("[")


class _Block(NamedTuple):
    """One block's events as columns: numbers as arrays, text as (distinct values, int32 codes); picklable."""

    events: int
    durations: bool
    skipped: Counter[str]
    unknown: Counter[str]
    tables: dict[str, dict[str, Any]]


def _encoded(values: list[Any]) -> tuple[list[Any], np.ndarray]:
    """(distinct values in first-seen order, the code of each value): text crosses processes once per value."""
    distinct = dict.fromkeys(values)
    position = {value: code for code, value in enumerate(distinct)}
    return list(distinct), np.fromiter(map(position.__getitem__, values), dtype=np.int32, count=len(values))


def _objects(values: list[Any]) -> np.ndarray:
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


def _block(events: list[k.KinetoEvent], intern: Callable[[Any, Any], Any] | None = None) -> _Block:
    """The columns of one block of events (and the counters the whole-document path keeps). Text is interned with
    ``intern`` into object arrays, or without it encoded to cross to another process (:func:`_encoded`)."""
    buckets, skipped, unknown = k._bucket(events)
    tables: dict[str, dict[str, Any]] = {}
    for table, bucket in buckets.items():
        kept, ts, dur = k._valid(bucket, skipped)
        if not kept:
            continue
        cols = k._columns(table, kept, ts, dur)
        for col, dtype in SCHEMAS[table].items():
            if col not in cols:
                continue
            if dtype in _NUMERIC:  # numbers held as arrays, not one Python object each
                cols[col] = np.asarray(cols[col], dtype=_NUMERIC[dtype])
            elif intern is None:
                cols[col] = _encoded(cols[col])
            else:
                cols[col] = _objects(list(map(intern, cols[col], cols[col])))
        tables[table] = cols
    return _Block(len(events), any(e.ph == "X" for e in events), skipped, unknown, tables)


class _Columns:
    """Per-table columns grown block by block, with the counters the whole-document path keeps."""

    def __init__(self) -> None:
        self.parts: dict[str, list[dict[str, Any]]] = {}
        self.skipped: Counter[str] = Counter()
        self.unknown: Counter[str] = Counter()
        self.events = 0
        self.durations = False
        self.strings: dict[Any, Any] = {}

    def add(self, block: _Block) -> None:
        self.events += block.events
        self.durations = self.durations or block.durations
        self.skipped += block.skipped
        self.unknown += block.unknown
        intern = self.strings.setdefault
        for table, cols in block.tables.items():
            for col, values in cols.items():
                if isinstance(values, tuple):  # text: one shared object per distinct value across all blocks
                    distinct, codes = values
                    cols[col] = _objects([intern(value, value) for value in distinct])[codes]
            self.parts.setdefault(table, []).append(cols)

    def tables(self) -> dict[str, Any]:
        merged: dict[str, dict[str, Any]] = {}
        for table, parts in self.parts.items():
            merged[table] = {col: np.concatenate([p[col] for p in parts]) for col in parts[0]}
        self.parts.clear()
        origin = min((float(c["ts"].min()) for c in merged.values() if len(c["ts"])), default=0.0)
        tables = {
            table: build_table(table, merged.pop(table, {}), origin) for table in set(k._TABLE_OF_CATEGORY.values())
        }
        return {"origin": origin, **tables}


def _decode(decoder: msgspec.json.Decoder, data: bytes | memoryview) -> Any:
    try:
        return decoder.decode(data)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as error:  # ValidationError is a DecodeError
        raise ChunkFallback from error


def decode_block(data: bytes) -> _Block:
    """One block of the events array (bytes of a JSON array) as columns: what a mapper runs in a worker process."""
    return _block(_decode(_EVENTS_DECODER, data))


def parse_kineto_chunked(
    path: Path, chunk_size: int = DEFAULT_CHUNK_SIZE, mapper: BlockMapper | None = None
) -> TraceTables:
    """Tables of the trace at ``path``, decoded ``chunk_size`` bytes at a time (by ``mapper``, which runs
    :func:`decode_block` over the blocks in order, when given); raises :class:`ChunkFallback` when the file needs
    the whole-document path (the tables are identical to that path's for any file it accepts)."""
    columns, header, tail = _Columns(), {}, []
    intern = columns.strings.setdefault

    def event_blocks(handle: BinaryIO) -> Iterator[bytes | memoryview]:
        for kind, data in _blocks(handle, path, chunk_size):
            if kind == "events":
                yield data if mapper is None else bytes(data)  # another process needs its own copy
                continue
            document = _decode(k._TYPED_DECODER, data)
            for key in ("deviceProperties", *k._HEADER_KEYS):
                if getattr(document, key) is not None:
                    header[key] = getattr(document, key)
            if kind == "tail":
                tail.append(document.traceEvents or [])

    try:
        with _open(path) as handle:
            if mapper is None:
                blocks = (_block(_decode(_EVENTS_DECODER, data), intern) for data in event_blocks(handle))
            else:
                blocks = mapper(decode_block, event_blocks(handle))
            with closing(blocks):  # a mapper's workers end here, also on failure or interrupt
                for block in blocks:
                    columns.add(block)
            for events in tail:
                columns.add(_block(events, intern))
    except (OSError, EOFError, gzip.BadGzipFile) as error:
        raise ChunkFallback from error
    if not columns.durations:
        raise ProfkitError(f"{path}: the trace has no duration events (empty or not a profiler trace)")
    built = columns.tables()
    origin = built.pop("origin")
    return k.tables_from_columns(built, header, path, columns.events, columns.skipped, columns.unknown, origin)
