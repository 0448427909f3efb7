"""Reading and writing JSON (optionally gzipped) with orjson, with user-facing errors."""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any

import orjson

try:  # ISA-L inflates gzip about twice as fast as zlib; same API and errors
    from isal import isal_zlib as inflate_lib
except ImportError:  # pragma: no cover - isal is a dependency, but profkit works without it
    inflate_lib = zlib

from profkit.errors import OutputExists, ProfkitError


def _gunzip(data: bytes, path: Path) -> bytes:
    """All members of a gzip stream (zlib checks each CRC; faster than the gzip module)."""
    parts = []
    try:
        while data[:2] == b"\x1f\x8b":
            inflater = inflate_lib.decompressobj(wbits=31)
            parts.append(inflater.decompress(data))
            if not inflater.eof:
                raise ProfkitError(f"{path}: the gzip data is truncated or corrupt (unexpected end of file)")
            data = inflater.unused_data
    except (zlib.error, inflate_lib.error) as error:
        raise ProfkitError(f"{path}: the gzip data is truncated or corrupt ({error})") from error
    return parts[0] if len(parts) == 1 else b"".join(parts)


def read_bytes(path: Path, what: str = "file") -> bytes:
    """The content of ``path``, gunzipped when it is gzip data; every failure is one clear :class:`ProfkitError`."""
    if not path.exists():
        raise ProfkitError(f"{path}: no such file")
    if path.is_dir():
        raise ProfkitError(f"{path}: is a directory, expected a {what}")
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise ProfkitError(f"{path}: cannot read it ({error.strerror or error})") from error
    if raw[:2] == b"\x1f\x8b":
        raw = _gunzip(raw, path)
    if not raw or raw.isspace():
        raise ProfkitError(f"{path}: the file is empty")
    return raw


def read_json(path: Path, what: str = "file") -> Any:
    """Load ``path`` (``.gz`` or plain) as JSON; every failure is one clear :class:`ProfkitError`."""
    raw = read_bytes(path, what)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise ProfkitError(f"{path}: not valid JSON ({error})") from error


def dumps(data: Any) -> bytes:
    return orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)


def write_bytes(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def write_json(path: Path, data: Any) -> Path:
    return write_bytes(path, dumps(data) + b"\n")


def check_writable(path: Path, force: bool) -> None:
    """Refuse to overwrite an existing output unless ``force``."""
    if path.exists() and not force:
        raise OutputExists(path)
