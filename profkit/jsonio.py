"""Reading and writing profkit's files: JSON (optionally gzipped) with orjson, atomic writes, output checks.

Reading is bounded: only regular files are opened (a FIFO or a device is refused before anything blocks), and
no input may hold or inflate to more than :func:`max_input_bytes` (a gzip bomb stops at the limit).
Every output is written to a temporary file in its folder and then renamed, so a reader never sees half a file
and a failed write leaves nothing behind; an output never replaces an input or another output of the same run.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO

import orjson

try:  # ISA-L inflates gzip about twice as fast as zlib; same API and errors
    from isal import isal_zlib as inflate_lib
except ImportError:  # pragma: no cover - isal is a dependency, but profkit works without it
    inflate_lib = zlib

from profkit.errors import EXIT_BAD_INPUT, OutputExists, ProfkitError

GZIP_MAGIC = b"\x1f\x8b"
#: Environment variable that overrides the input size limit (bytes; K/M/G/T suffixes allowed).
MAX_INPUT_ENV = "PROFKIT_MAX_TRACE_BYTES"
_GIB = 1 << 30
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": _GIB, "T": 1 << 40}
_NOT_REGULAR = (
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def max_input_bytes() -> int:
    """The most bytes one input may hold once gunzipped: ``PROFKIT_MAX_TRACE_BYTES``, else a third of the memory
    available now (a trace needs about twice its size again to decode and analyze), within 1 to 8 GiB."""
    text = os.environ.get(MAX_INPUT_ENV, "").strip()
    if not text:
        return min(8 * _GIB, max(_GIB, _available_memory() // 3))
    number, unit = text.rstrip("bB").upper(), ""
    if number[-1:] in _UNITS:
        number, unit = number[:-1], number[-1]
    try:
        limit = int(float(number) * _UNITS[unit])
    except (ValueError, OverflowError):
        limit = 0
    if limit <= 0:
        raise ProfkitError(f"{MAX_INPUT_ENV} must be a positive number of bytes such as 8G (got {text!r})")
    return limit


def _available_memory() -> int:
    """Bytes of memory available now: Linux's MemAvailable (what psutil reports, without its 30 ms import)."""
    try:
        with open("/proc/meminfo", "rb") as meminfo:
            for line in meminfo:
                if line.startswith(b"MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    import psutil

    return psutil.virtual_memory().available


def _size_text(size: int) -> str:
    for unit, scale in (("GiB", _GIB), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} bytes"


def _too_large(path: Path, limit: int, gunzipped: bool) -> ProfkitError:
    holds = "inflates to" if gunzipped else "holds"
    return ProfkitError(
        f"{path}: {holds} more than the {_size_text(limit)} profkit reads from one file "
        f"(set {MAX_INPUT_ENV} to raise the limit)"
    )


def _refuse_irregular(path: Path, mode: int, what: str) -> None:
    if stat.S_ISDIR(mode):
        raise ProfkitError(f"{path}: is a directory, expected a {what}")
    if not stat.S_ISREG(mode):
        kind = next((name for test, name in _NOT_REGULAR if test(mode)), "not a regular file")
        raise ProfkitError(f"{path}: is {kind}, not a regular file: expected a {what}")


def open_regular(path: Path, what: str = "file") -> BinaryIO:
    """``path`` opened for binary reading when it is a regular file (after symlinks); anything else (a FIFO, a
    device, a socket, a directory) is refused with one clear :class:`ProfkitError`, without blocking."""
    try:
        _refuse_irregular(path, os.stat(path).st_mode, what)
        # O_NONBLOCK: should a FIFO replace the file after the check, opening it must not wait for a writer
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise ProfkitError(f"{path}: no such file") from None
    except OSError as error:
        raise ProfkitError(f"{path}: cannot read it ({error.strerror or error})") from error
    try:
        _refuse_irregular(path, os.fstat(fd).st_mode, what)
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "rb")


def _read_bounded(handle: BinaryIO, path: Path, limit: int) -> bytes:
    """All of an open regular file, refused past ``limit`` bytes."""
    size = os.fstat(handle.fileno()).st_size
    if size > limit:
        raise _too_large(path, limit, gunzipped=False)
    raw = handle.read(size + 1)
    if len(raw) <= size:
        return raw
    # it grew meanwhile, or its size is not known up front (/proc): read on, in chunks, up to the limit
    parts, total = [raw], len(raw)
    while total <= limit and (chunk := handle.read(min(1 << 24, limit + 1 - total))):
        parts.append(chunk)
        total += len(chunk)
    if total > limit:
        raise _too_large(path, limit, gunzipped=False)
    return b"".join(parts)


def _gunzip(data: bytes, path: Path, limit: int | None = None) -> bytes:
    """All members of a gzip stream (zlib checks each CRC; faster than the gzip module), inflated at most to
    ``limit`` bytes: a bomb stops there, holding no more than the limit."""
    limit = max_input_bytes() if limit is None else limit
    parts, total = [], 0
    try:
        while data[:2] == GZIP_MAGIC:
            inflater = inflate_lib.decompressobj(wbits=31)
            part = inflater.decompress(data, limit - total + 1)  # stops one byte past the limit
            total += len(part)
            if total > limit:
                raise _too_large(path, limit, gunzipped=True)
            parts.append(part)
            if not inflater.eof:
                raise ProfkitError(f"{path}: the gzip data is truncated or corrupt (unexpected end of file)")
            data = inflater.unused_data
    except (zlib.error, inflate_lib.error) as error:
        raise ProfkitError(f"{path}: the gzip data is truncated or corrupt ({error})") from error
    return parts[0] if len(parts) == 1 else b"".join(parts)


def read_bytes(path: Path, what: str = "file", limit: int | None = None) -> bytes:
    """The content of ``path``, gunzipped when it is gzip data, at most ``limit`` bytes (default
    :func:`max_input_bytes`); every failure is one clear :class:`ProfkitError`."""
    path = Path(path)
    limit = max_input_bytes() if limit is None else limit
    with open_regular(path, what) as handle:
        try:
            raw = _read_bounded(handle, path, limit)
        except OSError as error:
            raise ProfkitError(f"{path}: cannot read it ({error.strerror or error})") from error
    if raw[:2] == GZIP_MAGIC:
        raw = _gunzip(raw, path, limit)
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


def set_umask(mask: int) -> None:
    """Set the process umask and the mode of files written from now on (a child that a tool started with umask 0
    restores the user's)."""
    global _UMASK
    os.umask(mask & 0o777)
    _UMASK = mask & 0o777


def restrict_to_umask(path: Path) -> Path:
    """Take from ``path`` (a file or folder another program made, e.g. nsys with umask 0) the permission bits the
    user's umask withholds; nothing is added."""
    with contextlib.suppress(OSError):
        os.chmod(path, stat.S_IMODE(os.stat(path).st_mode) & ~_UMASK)
    return path


def writable(folder: Path) -> bool:
    """Whether profkit may create files in ``folder`` (its permissions, a read-only mount)."""
    return os.access(folder, os.W_OK | os.X_OK)


def output_folder(folder: Path, what: str = "the outputs") -> tuple[Path, str | None]:
    """Where outputs meant for ``folder`` (an input's folder) go: ``folder`` itself when it is writable, else the
    current folder, with the one line that says so."""
    if writable(folder):
        return folder, None
    here = Path.cwd()
    return here, f"{folder} is not writable: writing {what} to the current folder ({here})"


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
