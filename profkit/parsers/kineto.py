"""Kineto (torch.profiler) chrome-trace JSON, plain or gzipped -> :class:`TraceTables`.

Decoding takes one of two paths that end in the same event structs:

* **typed** (the common case): msgspec decodes the bytes straight into :class:`KinetoEvent` structs,
  keeping only the fields profkit reads. This is several times faster than building dicts and holds
  a fraction of the memory, which is what lets a 1 GB trace analyze on a laptop.
* **tolerant**: when the typed decode rejects the file (an event that is not an object, a ``ts``
  given as a string, ``args`` that is a list...), orjson loads it and each event is coerced one by
  one; unusable events are counted as skipped instead of failing the whole file.

Hostile input stays bounded: both decoders limit nesting depth (msgspec by the recursion limit, orjson at
1024), and a file nested deeper is refused in one line; of the free-form blocks (``deviceProperties``, the
header) only shallow values are kept; numbers outside int64 become "missing" ids, and times beyond 2**53 us
count as bad; invalid UTF-8 is replaced by U+FFFD and counted in a warning.
"""

from __future__ import annotations

import codecs
import gc
import math
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import orjson

from profkit.errors import ProfkitError
from profkit.jsonio import read_bytes
from profkit.parsers.registry import BlockMapper, TraceFormat, register
from profkit.parsers.tables import TraceInfo, TraceTables, build_table

_MEMCPY_DIRECTIONS = (("HtoD", "H2D"), ("DtoH", "D2H"), ("DtoD", "D2D"), ("PtoP", "P2P"), ("HtoH", "H2H"))

#: lower-cased Kineto category -> table. Categories in ``_KNOWN_IGNORED`` are dropped silently,
#: any other one is counted as unknown (and reported).
_TABLE_OF_CATEGORY = {
    "kernel": "kernels",
    "gpu_memcpy": "memops",
    "gpu_memset": "memops",
    "cuda_runtime": "launches",
    "cuda_driver": "launches",
    "cpu_op": "cpu_ops",
    "python_function": "cpu_ops",
    "operator": "cpu_ops",
    "cpu_instant_event": "cpu_ops",
    "user_annotation": "ranges",
    "gpu_user_annotation": "ranges",
    "cuda_sync": "syncs",
}
_KNOWN_IGNORED = {"ac2g", "fwdbwd", "flow_link", "trace", "cuda_profiler_range", "overhead"}


class KinetoArgs(msgspec.Struct, gc=False):
    """The ``args`` keys profkit reads; every other key is skipped by the decoder."""

    correlation: int | None = None
    external_id: int | None = msgspec.field(name="External id", default=None)
    device: int | str | None = None  # ROCm traces can give strings
    stream: int | str | None = None
    grid: list[int] | str | None = None
    block: list[int] | str | None = None
    registers: float | None = msgspec.field(name="registers per thread", default=None)
    shared_memory: float | None = msgspec.field(name="shared memory", default=None)
    bytes: float | None = None


class KinetoEvent(msgspec.Struct, gc=False):
    ph: str | None = None
    cat: str | None = None
    name: str | None = None
    ts: float | None = None
    dur: float | None = None
    pid: int | str | None = None
    tid: int | str | None = None
    args: KinetoArgs | None = None


class KinetoDocument(msgspec.Struct):
    traceEvents: list[KinetoEvent] | None = None
    deviceProperties: Any = None
    schemaVersion: Any = None
    traceName: Any = None
    distributedInfo: Any = None


_TYPED_DECODER = msgspec.json.Decoder(KinetoDocument)
_HEADER_KEYS = ("schemaVersion", "traceName", "distributedInfo")


# ---------------------------------------------------------------- tolerant coercion


_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
#: Larger times (us) lose integer precision in float64 and are 285 years long: not a profiler's.
_MAX_TIME_US = float(2**53)


def _int(value: Any) -> int | None:
    """An int64 from a JSON value, or None (bools, non-numbers and out-of-range numbers)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and math.isfinite(value):
        value = int(value)
    elif isinstance(value, str):
        try:
            value = int(value, 0)
        except ValueError:
            return None
    if isinstance(value, int) and _INT64_MIN <= value <= _INT64_MAX:
        return value
    return None


def _float(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def _int_list(value: Any) -> list[int] | None:
    if isinstance(value, list):
        return [v for v in (_int(item) for item in value) if v is not None]
    return None


def _id(value: Any) -> int | str | None:
    if isinstance(value, (int, str)) and not isinstance(value, bool):
        return value
    return None if value is None else str(value)


def _coerce_event(event: dict[str, Any]) -> KinetoEvent:
    raw_args = event.get("args")
    args = None
    if isinstance(raw_args, dict):
        args = KinetoArgs(
            correlation=_int(raw_args.get("correlation")),
            external_id=_int(raw_args.get("External id")),
            device=_id(raw_args.get("device")),
            stream=_id(raw_args.get("stream")),
            grid=_int_list(raw_args.get("grid")),
            block=_int_list(raw_args.get("block")),
            registers=_float(raw_args.get("registers per thread")),
            shared_memory=_float(raw_args.get("shared memory")),
            bytes=_float(raw_args.get("bytes")),
        )
    name = event.get("name")
    ph = event.get("ph")
    cat = event.get("cat")
    return KinetoEvent(
        ph=ph if isinstance(ph, str) else None,
        cat=cat if isinstance(cat, str) else None,
        name=name if isinstance(name, str) or name is None else str(name),
        ts=_float(event.get("ts")),
        dur=_float(event.get("dur")),
        pid=_id(event.get("pid")),
        tid=_id(event.get("tid")),
        args=args,
    )


def _scalar(value: Any) -> bool:
    """A JSON scalar that profkit can write back (an integer within int64)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return _INT64_MIN <= value <= _INT64_MAX
    return isinstance(value, (str, float, bool, type(None)))


def _shallow(value: Any) -> Any:
    """``value`` cut to one level of writable JSON scalars (None when it is none of those): the free-form blocks
    (``deviceProperties``, header fields) may hold anything, even nesting too deep for any code that walks it
    later (rendering, JSON writing)."""
    if isinstance(value, dict):
        return {str(k): v for k, v in value.items() if _scalar(v)}
    if isinstance(value, list):
        return [v for v in value if _scalar(v)]
    return value if _scalar(value) else None


def _tolerant_document(document: Any, path: Path) -> tuple[list[KinetoEvent], dict[str, Any], int]:
    """Events of a generic JSON document, coerced one by one; returns (events, header, non-object count)."""
    if isinstance(document, dict):
        events = document.get("traceEvents")
        if events is None:
            raise ProfkitError(f"{path}: JSON, but not a Kineto/Chrome trace (no 'traceEvents' array)")
        header = document
    elif isinstance(document, list):
        events, header = document, {}
    else:
        raise ProfkitError(f"{path}: JSON, but not a Kineto/Chrome trace")
    if not isinstance(events, list):
        raise ProfkitError(f"{path}: 'traceEvents' is not an array")
    coerced = [_coerce_event(event) for event in events if isinstance(event, dict)]
    return coerced, header, len(events) - len(coerced)


# ---------------------------------------------------------------- events -> tables


def _memcpy_direction(name: str) -> str:
    for token, direction in _MEMCPY_DIRECTIONS:
        if token in name:
            return direction
    return "other"


def _id_or(value: int | str | None, fallback: int | str | None) -> int:
    for candidate in (value, fallback):
        if (converted := _int(candidate)) is not None:
            return converted
    return -1


def _grid(value: list[int] | str | None) -> str | None:
    return value if value is None or isinstance(value, str) else str(value)


def _bucket(events: list[KinetoEvent]) -> tuple[dict[str, list[KinetoEvent]], Counter[str], Counter[str]]:
    buckets: dict[str, list[KinetoEvent]] = {table: [] for table in set(_TABLE_OF_CATEGORY.values())}
    no_category: Counter[str] = Counter()
    unknown: Counter[str] = Counter()
    table_of = _TABLE_OF_CATEGORY
    for event in events:
        if event.ph != "X":
            continue
        cat = event.cat
        if cat is None:
            no_category["no category"] += 1
            continue
        table = table_of.get(cat) or table_of.get(cat.lower())
        if table is not None:
            buckets[table].append(event)
        elif cat.lower() not in _KNOWN_IGNORED:
            unknown[cat] += 1
    return buckets, no_category, unknown


def _valid(bucket: list[KinetoEvent], skipped: Counter[str]) -> tuple[list[KinetoEvent], np.ndarray, np.ndarray]:
    """Drop events without a usable ``ts``/``dur`` (counted in ``skipped``); return them with ts and dur arrays."""
    ts = np.array([e.ts for e in bucket], dtype=np.float64)
    dur = np.array([e.dur for e in bucket], dtype=np.float64)
    bad_ts = ~(np.abs(ts) <= _MAX_TIME_US)  # NaN (missing) and infinities compare False
    bad_dur = ~bad_ts & ~(np.abs(dur) <= _MAX_TIME_US)
    negative = ~bad_ts & ~bad_dur & (dur < 0)
    keep = ~(bad_ts | bad_dur | negative)
    if keep.all():
        return bucket, ts, dur
    for reason, mask in (("missing or bad ts", bad_ts), ("missing or bad dur", bad_dur), ("negative dur", negative)):
        if count := int(np.count_nonzero(mask)):
            skipped[reason] += count
    kept = [event for event, ok in zip(bucket, keep, strict=True) if ok]
    return kept, ts[keep], dur[keep]


_NO_ARGS = KinetoArgs()


def _ids(values: list[int | None]) -> np.ndarray:
    """Correlation/external ids as int64: -1 for missing ones and for any outside int64 (JSON allows any size)."""
    if None in values:
        values = [-1 if v is None else v for v in values]
    try:
        return np.array(values, dtype=np.int64)
    except OverflowError:  # an id outside int64
        return np.array([v if _INT64_MIN <= v <= _INT64_MAX else -1 for v in values], dtype=np.int64)


def _device_or_row(values: list[int | str | None], rows: list[int | str | None]) -> Any:
    """``args`` device/stream where it is an int64, else the Kineto pid/tid row (which numbers them for GPU events)."""
    if set(map(type, values)) <= {int}:  # the common case: all ints
        try:
            return np.array(values, dtype=np.int64)
        except OverflowError:
            pass
    return [
        v if type(v) is int and _INT64_MIN <= v <= _INT64_MAX else _id_or(v, row)
        for v, row in zip(values, rows, strict=True)
    ]


def _device_stream(events: list[KinetoEvent], args: list[KinetoArgs]) -> dict[str, Any]:
    """GPU device and stream from ``args``, else Kineto's pid/tid rows (which number them for GPU events)."""
    return {
        "device": _device_or_row([a.device for a in args], [e.pid for e in events]),
        "stream": _device_or_row([a.stream for a in args], [e.tid for e in events]),
    }


def _grids(values: list[list[int] | str | None]) -> list[str | None]:
    """Grid/block dimensions as text (a list as Python prints it), formatted once per distinct value (kernels of a
    model repeat a few launch shapes)."""
    keys = [tuple(v) if type(v) is list else v for v in values]
    text_of = {key: _grid(list(key) if type(key) is tuple else key) for key in set(keys)}
    return list(map(text_of.__getitem__, keys))


def _per_value(values: list[Any], convert: Any) -> list[Any]:
    """``convert(value)`` for each value, computed once per distinct value (pids, tids and categories repeat)."""
    lookup = {value: convert(value) for value in set(values)}
    return list(map(lookup.__getitem__, values))


def _is_cat(wanted: str) -> Any:
    return lambda cat: (cat or "").lower() == wanted


def _columns(table: str, events: list[KinetoEvent], ts: np.ndarray, dur: np.ndarray) -> dict[str, Any]:
    args = [e.args or _NO_ARGS for e in events]
    names = [e.name if e.name is not None else "" for e in events]
    cols: dict[str, Any] = {"name": names, "ts": ts, "dur": dur}
    if table == "kernels":
        cols |= {
            **_device_stream(events, args),
            "correlation": _ids([a.correlation for a in args]),
            "external_id": _ids([a.external_id for a in args]),
            "grid": _grids([a.grid for a in args]),
            "block": _grids([a.block for a in args]),
            "registers": [a.registers for a in args],
            "shared_memory": [a.shared_memory for a in args],
        }
    elif table == "memops":
        kinds = _per_value([e.cat for e in events], lambda cat: "memset" if _is_cat("gpu_memset")(cat) else "memcpy")
        cols |= {
            "kind": kinds,
            "direction": [
                _memcpy_direction(n) if k == "memcpy" else "memset" for n, k in zip(names, kinds, strict=True)
            ],
            "pageable": ["Pageable" in n for n in names],
            **_device_stream(events, args),
            "correlation": _ids([a.correlation for a in args]),
            "bytes": [a.bytes for a in args],
        }
    elif table == "launches":
        cols |= {
            "pid": _per_value([e.pid for e in events], str),
            "tid": _per_value([e.tid for e in events], str),
            "correlation": _ids([a.correlation for a in args]),
            "external_id": _ids([a.external_id for a in args]),
            "api": _per_value(
                [e.cat for e in events], lambda cat: "driver" if _is_cat("cuda_driver")(cat) else "runtime"
            ),
        }
    elif table == "cpu_ops":
        cols |= {
            "cat": [e.cat for e in events],
            "pid": _per_value([e.pid for e in events], str),
            "tid": _per_value([e.tid for e in events], str),
            "external_id": _ids([a.external_id for a in args]),
        }
    elif table == "ranges":
        cols |= {
            "pid": _per_value([e.pid for e in events], str),
            "tid": _per_value([e.tid for e in events], str),
            "on_gpu": _per_value([e.cat for e in events], _is_cat("gpu_user_annotation")),
        }
    elif table == "syncs":
        cols |= {
            **_device_stream(events, args),
        }
    return cols


def tables_from_events(
    events: list[KinetoEvent],
    header: dict[str, Any],
    path: Path,
    non_objects: int = 0,
    decoder: str = "typed",
    notes: Iterable[str] = (),
) -> TraceTables:
    if not any(event.ph == "X" for event in events):
        raise ProfkitError(f"{path}: the trace has no duration events (empty or not a profiler trace)")
    buckets, skipped, unknown = _bucket(events)
    if non_objects:
        skipped["not an object"] += non_objects
    valid = {table: _valid(bucket, skipped) for table, bucket in buckets.items()}
    origin = min((float(ts.min()) for _, ts, _ in valid.values() if ts.size), default=0.0)
    built = {
        table: build_table(table, _columns(table, kept, ts, dur) if kept else {}, origin)
        for table, (kept, ts, dur) in valid.items()
    }
    return tables_from_columns(built, header, path, len(events) + non_objects, skipped, unknown, origin, decoder, notes)


def tables_from_columns(
    built: dict[str, Any],
    header: dict[str, Any],
    path: Path,
    event_count: int,
    skipped: Counter[str],
    unknown: Counter[str],
    origin: float,
    decoder: str = "typed",
    notes: Iterable[str] = (),
) -> TraceTables:
    """:class:`TraceTables` from built tables and what decoding counted (shared by the whole and chunked paths)."""
    devices = header.get("deviceProperties")
    info = TraceInfo(
        path=path,
        source_format="kineto",
        devices=[_shallow(d) for d in devices if isinstance(d, dict)] if isinstance(devices, list) else [],
        event_count=event_count,
        skipped_events=dict(skipped),
        unknown_categories=dict(unknown),
        trace_metadata={key: _shallow(header[key]) for key in _HEADER_KEYS if header.get(key) is not None},
        time_origin_us=origin,
        decoder=decoder,
    )
    info.warnings.extend(notes)
    if header.get("deviceProperties") is None:
        info.warnings.append("the trace has no deviceProperties block: GPU model unknown")
    if skipped:
        detail = ", ".join(f"{count} {reason}" for reason, count in skipped.most_common())
        info.warnings.append(f"skipped {sum(skipped.values())} unusable events ({detail})")
    return TraceTables(info=info, **built)


def parse_kineto_document(document: Any, path: Path, notes: Iterable[str] = ()) -> TraceTables:
    """Tables from an already-loaded JSON document (the tolerant path)."""
    events, header, non_objects = _tolerant_document(document, path)
    return tables_from_events(events, header, path, non_objects, decoder="tolerant", notes=notes)


_REPLACEMENT = "\ufffd".encode()


def repair_utf8(raw: bytes) -> tuple[bytes, int]:
    """``raw`` with each invalid UTF-8 sequence replaced by U+FFFD, and how many were replaced (decoded in
    chunks: a large file is never held as one ``str``)."""
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    view, chunk = memoryview(raw), 1 << 24
    parts = [decoder.decode(view[start : start + chunk]).encode() for start in range(0, len(raw), chunk)]
    parts.append(decoder.decode(b"", final=True).encode())
    repaired = b"".join(parts)
    return repaired, repaired.count(_REPLACEMENT) - raw.count(_REPLACEMENT)


def _too_deep(path: Path) -> ProfkitError:
    return ProfkitError(f"{path}: not a trace: its JSON is nested deeper than profkit reads (about 1000 levels)")


class _InvalidUtf8(Exception):
    """The bytes hold invalid UTF-8 (raised by either decoder), to be repaired and decoded again."""


def _typed(raw: bytes, path: Path) -> KinetoDocument | None:
    """The typed decode; None when the file needs the tolerant path."""
    try:
        return _TYPED_DECODER.decode(raw)
    except msgspec.ValidationError as error:
        if str(error).endswith("at `$.traceEvents`"):  # no events to coerce: refuse before building it all
            raise ProfkitError(f"{path}: 'traceEvents' is not an array") from error
        return None
    except msgspec.DecodeError as error:
        raise ProfkitError(f"{path}: not valid JSON ({error})") from error
    except UnicodeDecodeError as error:
        raise _InvalidUtf8 from error
    except RecursionError:  # msgspec bounds nesting (skipped fields too) by the recursion limit
        raise _too_deep(path) from None


def _generic(raw: bytes, path: Path) -> Any:
    """The orjson decode (nesting bounded at 1024)."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        if "not valid UTF-8" in str(error):
            raise _InvalidUtf8 from error
        if "depth limit" in str(error):
            raise _too_deep(path) from error
        raise ProfkitError(f"{path}: not valid JSON ({error})") from error


def _parse(raw: bytes, path: Path, notes: list[str]) -> TraceTables:
    document = _typed(raw, path)
    if document is None:
        return parse_kineto_document(_generic(raw, path), path, notes)
    if document.traceEvents is None:
        raise ProfkitError(f"{path}: JSON, but not a Kineto/Chrome trace (no 'traceEvents' array)")
    header = {key: getattr(document, key) for key in ("deviceProperties", *_HEADER_KEYS)}
    return tables_from_events(document.traceEvents, header, path, notes=notes)


def parse_kineto_bytes(raw: bytes, path: Path) -> TraceTables:
    """Tables from the bytes of a trace: typed decode first, the tolerant path when the file needs it; invalid
    UTF-8 (written by broken tools) is replaced and counted in a warning."""
    try:
        return _parse(raw, path, [])
    except _InvalidUtf8:
        raw, replaced = repair_utf8(raw)
    return _parse(raw, path, [f"replaced {max(replaced, 1)} invalid UTF-8 sequences in strings with U+FFFD"])


#: traces at least this large (decoded JSON) are decoded in blocks (:mod:`profkit.parsers.kineto_chunked`), over
#: worker processes when given a mapper. Smaller ones decode faster whole, in this process: measured on 2 cores, a
#: 40 MB trace took 0.30 s whole and 0.45 s in blocks over two workers, a 100 MB one the same time either way (but
#: 450 MB of memory whole, 255 MB in blocks), a 250 MB one 2.1 s whole and 1.5 s in blocks.
CHUNKED_MIN_BYTES = 96 << 20
#: a gzip trailer gives the decoded size modulo 4 GiB: never trust it below this many times the compressed size
_MIN_GZIP_RATIO = 10


def load_kineto(path: Path, mapper: BlockMapper | None = None) -> TraceTables:
    """The tables of a Kineto trace; a large file is decoded in blocks, by ``mapper`` when given."""
    # millions of small objects are created and none is garbage: cycle collection would only rescan them
    collecting = gc.isenabled()
    gc.disable()
    try:
        if _decoded_size(path) >= CHUNKED_MIN_BYTES:
            from profkit.parsers.kineto_chunked import ChunkFallback, parse_kineto_chunked

            try:
                return parse_kineto_chunked(path, mapper=mapper)
            except ChunkFallback:
                pass
        raw = read_bytes(path, "Kineto trace (.json or .json.gz)")
        return parse_kineto_bytes(raw, path)
    finally:
        if collecting:
            gc.enable()


def _file_size(path: Path) -> int:
    """Size of a regular file, 0 for anything else (left to :func:`read_bytes` to refuse)."""
    try:
        return path.stat().st_size if path.is_file() else 0
    except OSError:
        return 0


def _decoded_size(path: Path) -> int:
    """About how many bytes of JSON a trace file holds: its size, or for a gzip file the size its trailer records
    (at least :data:`_MIN_GZIP_RATIO` times the compressed size, as the trailer wraps at 4 GiB)."""
    size = _file_size(path)
    if size < 18:  # no room for a gzip header and trailer
        return size
    try:
        with path.open("rb") as handle:
            if handle.read(2) != b"\x1f\x8b":
                return size
            handle.seek(-4, 2)
            recorded = int.from_bytes(handle.read(4), "little")
    except OSError:
        return size
    return max(recorded, size * _MIN_GZIP_RATIO)


def looks_like_kineto(head: bytes) -> bool:
    """A JSON object (Kineto writes ``traceEvents`` after a header of variable length, so not looked for)."""
    return head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{")


KINETO = register(
    TraceFormat(
        "kineto", suffixes=(".json.gz", ".json", ".gz"), sniff=looks_like_kineto, load=load_kineto, load_in_blocks=True
    ),
    default=True,
)
