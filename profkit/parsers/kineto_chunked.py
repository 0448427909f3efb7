"""Chunked Kineto decoding: a large trace read in blocks, each block decoded and turned into table columns at once.

The file (plain or gzipped) is read ``chunk_size`` bytes at a time. The header before ``"traceEvents": [`` is
decoded on its own; each block of the events array is cut at an event boundary (``}`` ``,`` ``{``), decoded by
msgspec as a JSON array of :class:`KinetoEvent` and turned into per-table column lists; its structs are then
dropped, so memory holds one block of structs plus the columns. The rest of the file (the last events and any
header keys after the array) is decoded as a document. String values are interned, so repeated names share one
object.

A boundary guess inside a string (``"a},{b"``) always leaves an unterminated string in the block, whose decode
then fails; any failure (that one, a value the typed decode rejects, invalid UTF-8, hostile nesting) raises
:class:`ChunkFallback`, and the caller decodes the whole document the usual way, which keeps its behaviour.
"""

from __future__ import annotations

import gzip
import re
from collections import Counter
from collections.abc import Iterator
from itertools import chain
from pathlib import Path
from typing import Any, BinaryIO

import msgspec
import numpy as np

from profkit.errors import ProfkitError
from profkit.jsonio import max_input_bytes, open_regular
from profkit.parsers import kineto as k
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


def _open(path: Path) -> BinaryIO:
    handle = open_regular(path, "Kineto trace (.json or .json.gz)")
    if handle.read(2) == b"\x1f\x8b":
        handle.seek(0)
        return gzip.GzipFile(fileobj=handle, mode="rb")  # type: ignore[return-value]
    handle.seek(0)
    return handle


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


class _Columns:
    """Per-table column lists grown block by block, with the counters the whole-document path keeps."""

    def __init__(self) -> None:
        self.parts: dict[str, list[dict[str, Any]]] = {}
        self.skipped: Counter[str] = Counter()
        self.unknown: Counter[str] = Counter()
        self.events = 0
        self.durations = False
        self.strings: dict[str | None, str | None] = {}

    def add(self, events: list[k.KinetoEvent]) -> None:
        self.events += len(events)
        self.durations = self.durations or any(e.ph == "X" for e in events)
        buckets, skipped, unknown = k._bucket(events)
        self.skipped += skipped
        self.unknown += unknown
        intern = self.strings.setdefault
        for table, bucket in buckets.items():
            kept, ts, dur = k._valid(bucket, self.skipped)
            if not kept:
                continue
            cols = k._columns(table, kept, ts, dur)
            for col, dtype in SCHEMAS[table].items():
                if col not in cols:
                    continue
                if dtype in _NUMERIC:  # numbers held as arrays, not one Python object each
                    cols[col] = np.asarray(cols[col], dtype=_NUMERIC[dtype])
                else:
                    cols[col] = list(map(intern, cols[col], cols[col]))  # one object per distinct text
            self.parts.setdefault(table, []).append(cols)

    def tables(self) -> dict[str, Any]:
        merged: dict[str, dict[str, Any]] = {}
        for table, parts in self.parts.items():
            merged[table] = {
                col: np.concatenate([p[col] for p in parts])
                if isinstance(parts[0][col], np.ndarray)
                else list(chain.from_iterable(p[col] for p in parts))
                for col in parts[0]
            }
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


def parse_kineto_chunked(path: Path, chunk_size: int = DEFAULT_CHUNK_SIZE) -> TraceTables:
    """Tables of the trace at ``path``, decoded ``chunk_size`` bytes at a time; raises :class:`ChunkFallback` when
    the file needs the whole-document path (the tables are identical to that path's for any file it accepts)."""
    columns, header = _Columns(), {}
    with _open(path) as handle:
        try:
            for kind, data in _blocks(handle, path, chunk_size):
                if kind == "events":
                    columns.add(_decode(_EVENTS_DECODER, data))
                    continue
                document = _decode(k._TYPED_DECODER, data)
                for key in ("deviceProperties", *k._HEADER_KEYS):
                    if getattr(document, key) is not None:
                        header[key] = getattr(document, key)
                if kind == "tail":
                    columns.add(document.traceEvents or [])
        except (OSError, EOFError, gzip.BadGzipFile) as error:
            raise ChunkFallback from error
    if not columns.durations:
        raise ProfkitError(f"{path}: the trace has no duration events (empty or not a profiler trace)")
    built = columns.tables()
    origin = built.pop("origin")
    return k.tables_from_columns(built, header, path, columns.events, columns.skipped, columns.unknown, origin)
