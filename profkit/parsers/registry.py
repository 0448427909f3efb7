"""The trace formats profkit reads: each parser registers a name, its file suffixes and a content sniff.

:func:`load_trace` picks a format by content first (the file's first bytes, gunzipped), by suffix
second, and falls back to the default format (Kineto), whose parser then says what is wrong with the
file. A format registered without a loader (an Nsight Systems ``.nsys-rep``) must be converted
before parsing: the app layer does that, since parsers never run programs.

Add a trace format: a module ``profkit/parsers/<format>.py`` whose loader returns
:class:`~profkit.parsers.tables.TraceTables` and that calls :func:`register` at its end, imported
by ``profkit/parsers/__init__.py``.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from profkit.errors import ProfkitError
from profkit.jsonio import GZIP_MAGIC, open_regular

if TYPE_CHECKING:
    from profkit.parsers.tables import DetailLimit, TraceTables

SNIFF_BYTES = 4096

#: ``mapper(function, items)``: ``function`` applied to each item, results in order, items taken lazily (the app
#: layer's may run them in worker processes: parsers never start processes themselves)
BlockMapper = Callable[[Callable[[Any], Any], Iterable[Any]], Iterator[Any]]


class TraceFormat(msgspec.Struct, frozen=True):
    """One kind of trace file."""

    name: str
    suffixes: tuple[str, ...]  # lower-case; ``run/trace.json.gz`` -> report base ``run/trace``
    sniff: Callable[[bytes], bool] | None = None  # on the content's first bytes (gunzipped), True if it is this
    load: Callable[[Path], TraceTables] | None = None  # None: the file must be converted first
    convert_hint: str = ""  # what to do with a file that must be converted first
    load_in_blocks: bool = False  # ``load(path, mapper=...)`` decodes a large file's blocks with a BlockMapper
    limits_detail: bool = False  # ``load(path, detail=...)`` reads events one by one up to a DetailLimit

    @property
    def needs_conversion(self) -> bool:
        return self.load is None


_FORMATS: dict[str, TraceFormat] = {}
_DEFAULT: list[str] = []  # the format tried when neither content nor suffix decides


def register(trace_format: TraceFormat, default: bool = False) -> TraceFormat:
    """Add (or replace, by name) a trace format; ``default`` makes it the fallback for unrecognised files."""
    _FORMATS[trace_format.name] = trace_format
    if default:
        _DEFAULT[:] = [trace_format.name]
    return trace_format


def formats() -> list[TraceFormat]:
    return list(_FORMATS.values())


def get_format(name: str) -> TraceFormat:
    return _FORMATS[name]


def trace_suffixes() -> list[str]:
    """Every registered suffix, longest first (so ``.json.gz`` is stripped before ``.gz``)."""
    return sorted({suffix for f in _FORMATS.values() for suffix in f.suffixes}, key=len, reverse=True)


def read_head(path: Path, size: int = SNIFF_BYTES) -> bytes:
    """The first ``size`` bytes of the file's content (gunzipped when gzip); empty when unreadable.

    Anything but a regular file (missing, a directory, a FIFO, a device) is refused with a :class:`ProfkitError`
    before it is opened for good: a FIFO would block the read, ``/dev/zero`` would never end.
    """
    try:
        with open_regular(Path(path), "trace file") as handle:
            head = handle.read(size)
    except OSError:
        return b""
    if head[:2] == GZIP_MAGIC:
        try:
            return zlib.decompressobj(wbits=31).decompress(head, size)
        except zlib.error:
            return b""
    return head


def sniff_format(head: bytes) -> TraceFormat | None:
    if not head:
        return None
    return next((f for f in _FORMATS.values() if f.sniff is not None and f.sniff(head)), None)


def suffix_format(path: Path) -> TraceFormat | None:
    name = Path(path).name.lower()
    matches = [(len(s), f) for f in _FORMATS.values() for s in f.suffixes if name.endswith(s)]
    return max(matches, key=lambda match: match[0])[1] if matches else None


def detect_format(path: Path) -> TraceFormat | None:
    """The format of ``path``: by content, else by suffix; None when neither tells. A path that is not a regular
    file is refused (:class:`ProfkitError`)."""
    return sniff_format(read_head(path)) or suffix_format(path)


def load_trace(path: Path, mapper: BlockMapper | None = None, detail: DetailLimit | None = None) -> TraceTables:
    """Parse a trace file with the parser of its format (content sniff first, suffix second); a format that
    decodes in blocks uses ``mapper`` for them when given, one that can aggregate what lies beyond ``detail``
    does so."""
    path = Path(path)
    trace_format = detect_format(path) or (_FORMATS[_DEFAULT[0]] if _DEFAULT else None)
    if trace_format is None:
        raise ProfkitError(f"{path}: not a trace format profkit reads")
    if trace_format.load is None:
        raise ProfkitError(f"{path}: {trace_format.convert_hint}")
    if mapper is not None and trace_format.load_in_blocks:
        return trace_format.load(path, mapper=mapper)
    if detail is not None and trace_format.limits_detail:
        return trace_format.load(path, detail=detail)
    return trace_format.load(path)
