"""Reading and writing profkit's files: JSON (optionally gzipped) with orjson, atomic writes, output checks.

Every output is written to a temporary file in its folder and then renamed, so a reader never sees half a file
and a failed write leaves nothing behind; an output never replaces an input or another output of the same run.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

try:  # ISA-L inflates gzip about twice as fast as zlib; same API and errors
    from isal import isal_zlib as inflate_lib
except ImportError:  # pragma: no cover - isal is a dependency, but profkit works without it
    inflate_lib = zlib

from profkit.errors import EXIT_BAD_INPUT, OutputExists, ProfkitError


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


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: Read once at import: setting it to read it is not thread-safe.
_UMASK = _umask()


def _cannot_write(path: Path, error: OSError) -> ProfkitError:
    """An output that cannot be written (unwritable folder, not a folder, full disk) is exit 2: the user must
    choose or free another place; nothing was left behind."""
    return ProfkitError(f"cannot write {path}: {error.strerror or error}", EXIT_BAD_INPUT)


def _publish(temp: str, path: Path, force: bool) -> None:
    """Give the finished temporary file its name: replace with ``force``, else only if the name is still free."""
    if force:
        os.replace(temp, path)
        return
    try:
        os.link(temp, path)  # atomic, and fails when the target appeared meanwhile
    except FileExistsError:
        raise OutputExists(path) from None
    except OSError as error:
        if error.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
            raise
        try:  # no hard links on this file system: claim the name, then move the file onto it
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        except FileExistsError:
            raise OutputExists(path) from None
        os.replace(temp, path)
    else:
        os.unlink(temp)


def write_bytes(path: Path, data: bytes, force: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically: a temporary file in the same folder, then renamed.

    Without ``force`` an existing target (one that appeared while profkit worked, too) is refused with
    :class:`OutputExists`. A failed write (unwritable folder, full disk) leaves nothing behind and is one
    :class:`ProfkitError` ("cannot write ...").
    """
    path = Path(path)
    temp = None
    try:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except FileExistsError:  # a file where a folder of the path should be
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR)) from None
        descriptor, temp = tempfile.mkstemp(prefix=f".{path.name[:100]}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        os.chmod(temp, 0o666 & ~_UMASK)  # what a plain open() would give, not mkstemp's 0600
        _publish(temp, path, force)
        temp = None
    except OSError as error:
        raise _cannot_write(path, error) from error
    finally:
        if temp is not None:
            with contextlib.suppress(OSError):
                os.unlink(temp)
    return path


def write_text(path: Path, text: str, force: bool = True) -> Path:
    return write_bytes(path, text.encode("utf-8"), force)


def write_json(path: Path, data: Any, force: bool = True) -> Path:
    return write_bytes(path, dumps(data) + b"\n", force)


def check_writable(path: Path, force: bool) -> None:
    """Refuse to overwrite an existing output unless ``force``; refuse an existing folder always."""
    if path.is_dir():
        raise ProfkitError(f"{path}: is a directory, expected a file name to write")
    if path.exists() and not force:
        raise OutputExists(path)


def _identity(path: Path) -> tuple[Path, tuple[int, int] | None]:
    """The resolved path and, when it exists, its (device, inode): hard links and symlinks share it."""
    try:
        stat = path.stat()
        inode = (stat.st_dev, stat.st_ino)
    except OSError:
        inode = None
    try:
        return path.resolve(), inode
    except (OSError, RuntimeError):  # a symlink loop: compare the path as written
        return path.absolute(), inode


def check_outputs(outputs: Sequence[Path | None], inputs: Sequence[Path | None], force: bool) -> None:
    """Refuse outputs that are an input (symlinks and hard links included) or another output, whatever
    ``force`` says; then refuse existing outputs unless ``force``."""
    seen: list[tuple[Path, tuple[Path, tuple[int, int] | None]]] = []
    for source in inputs:
        if source is not None:
            seen.append((Path(source), _identity(Path(source))))
    first_output = len(seen)
    for target in outputs:
        if target is None:
            continue
        resolved, inode = _identity(Path(target))
        for index, (other, (other_resolved, other_inode)) in enumerate(seen):
            if resolved == other_resolved or (inode is not None and inode == other_inode):
                role = "an input" if index < first_output else "another output of this run"
                raise ProfkitError(f"{target} is {role} ({other}): refusing to write over it; choose another output")
        seen.append((Path(target), (resolved, inode)))
        check_writable(Path(target), force)


def inside(folder: Path, name: str, what: str) -> Path:
    """``folder / name`` for a file name read from data (``what``: the field), refused unless it stays inside."""
    relative = Path(name)
    if not name or relative.is_absolute() or ".." in relative.parts or "\0" in name:
        raise ProfkitError(f"{what} is {name!r}: a file named in a capture folder must stay inside it")
    return folder / relative
