"""Reading and writing JSON (optionally gzipped) with orjson, with user-facing errors."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path
from typing import Any

import orjson

from profkit.errors import ProfkitError


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
        try:
            raw = gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as error:
            raise ProfkitError(f"{path}: the gzip data is truncated or corrupt ({error})") from error
    if not raw.strip():
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


def write_json(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(dumps(data) + b"\n")
    return path


def check_writable(path: Path, force: bool) -> None:
    """Refuse to overwrite an existing output unless ``force``."""
    if path.exists() and not force:
        raise ProfkitError(f"{path} already exists: pass --force to overwrite it, or choose --out")
