"""Finding and running the Nsight Systems command-line tools (nsys, QdstrmImporter).

Shared by the nsys capture and by :mod:`profkit.app.nsys_export`, which exports ``.nsys-rep`` files to SQLite.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from profkit.errors import EXIT_RUN_FAILED, ProfkitError, SettingError
from profkit.jsonio import restrict_to_umask

INSTALL_HINT = (
    "install it with `bash scripts/install-nsys.sh` (Debian/Ubuntu), or from "
    "https://developer.nvidia.com/nsight-systems"
)
_USUAL_PLACES = (
    "/usr/lib/nsight-systems/bin/nsys",
    "/usr/local/cuda/bin/nsys",
    "/opt/nvidia/nsight-systems/*/bin/nsys",
    "/opt/nvidia/nsight-systems-cli/*/bin/nsys",
    "/usr/local/cuda-*/bin/nsys",
)


@dataclass(frozen=True)
class NsysTool:
    nsys: Path
    importer: Path | None  # QdstrmImporter, for installs whose `nsys profile` leaves only a .qdstrm

    def version(self) -> str:
        try:
            completed = subprocess.run(
                [str(self.nsys), "--version"], capture_output=True, text=True, errors="replace", timeout=60
            )
        except (OSError, subprocess.SubprocessError):
            return "unknown"
        return completed.stdout.strip().splitlines()[0] if completed.stdout.strip() else "unknown"


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def find_nsys(explicit: str | Path | None = None) -> NsysTool:
    """nsys from ``explicit`` (the binary or its install folder), PATH, or the usual install folders."""
    candidates: list[Path] = []
    if explicit:
        path = Path(explicit)
        candidates = [path, path / "nsys", path / "bin" / "nsys"]
        found = next((c for c in candidates if _executable(c)), None)
        if found is None:
            raise SettingError("nsys_path", f"{explicit}: no nsys executable there")
    else:
        on_path = shutil.which("nsys")
        candidates = [Path(on_path)] if on_path else []
        places = os.environ.get("PROFKIT_NSYS_PLACES")  # os.pathsep-separated globs replacing the usual places
        for pattern in places.split(os.pathsep) if places is not None else _USUAL_PLACES:
            if not pattern:
                continue
            candidates += [Path(p) for p in sorted(glob.glob(pattern), reverse=True)]
        found = next((c for c in candidates if _executable(c)), None)
        if found is None:
            raise ProfkitError(
                f"Nsight Systems (nsys) not found: {INSTALL_HINT}, or point {{nsys_path}} at it",
                settings=("nsys_path",),
            )
    return NsysTool(found, find_importer(found))


def _install_roots(nsys: Path) -> list[Path]:
    """Folders that may hold the install next to ``nsys``, following each symlink step by step.

    Debian links /usr/bin/nsys -> /usr/lib/nsight-systems/bin/nsys -> .../target-linux-x64/nsys while
    the importer lives in /usr/lib/nsight-systems/host-linux-x64: only an intermediate link leads there.
    """
    roots: list[Path] = []
    current = Path(os.path.abspath(nsys))
    for _ in range(8):
        roots += [current.parent.parent, current.parent]
        if not current.is_symlink():
            break
        current = Path(os.path.abspath(current.parent / os.readlink(current)))
    return list(dict.fromkeys(roots))


def find_importer(nsys: Path) -> Path | None:
    for root in _install_roots(nsys):
        for candidate in [
            root / "host-linux-x64" / "QdstrmImporter",
            *map(Path, glob.glob(str(root / "*" / "QdstrmImporter"))),
        ]:
            if _executable(candidate):
                return candidate
    return None


def _run(command: list[str], what: str, timeout: float | None = None) -> subprocess.CompletedProcess[str]:
    try:
        completed = subprocess.run(command, capture_output=True, text=True, errors="replace", timeout=timeout)
    except OSError as error:
        raise ProfkitError(f"{what}: cannot run {command[0]} ({error.strerror or error})", EXIT_RUN_FAILED) from error
    except subprocess.TimeoutExpired as error:
        raise ProfkitError(f"{what}: {command[0]} did not finish in {timeout:.0f} s", EXIT_RUN_FAILED) from error
    if completed.returncode != 0:
        raise ToolFailed(what, completed.returncode, (completed.stderr or completed.stdout).strip().splitlines()[-3:])
    return completed


class ToolFailed(ProfkitError):
    """An nsys tool ran and exited non-zero; ``lines``: the last lines it printed."""

    def __init__(self, what: str, returncode: int, lines: list[str]) -> None:
        self.returncode, self.lines = returncode, lines
        super().__init__(f"{what} failed (exit {returncode}): {' | '.join(lines)}", EXIT_RUN_FAILED)


def finish_report(tool: NsysTool, base: Path) -> Path:
    """``base.nsys-rep``, importing ``base.qdstrm`` when nsys stopped there."""
    report = base.with_name(base.name + ".nsys-rep")
    stream = base.with_name(base.name + ".qdstrm")
    if not report.exists() and stream.exists():
        if tool.importer is None:
            raise ProfkitError(
                f"nsys left {stream} and no QdstrmImporter was found next to {tool.nsys} to turn it into a report",
                EXIT_RUN_FAILED,
            )
        _run([str(tool.importer), "-i", str(stream)], "importing the .qdstrm (QdstrmImporter)")
    if not report.exists():
        raise ProfkitError(f"nsys wrote no report ({report} is missing)", EXIT_RUN_FAILED)
    stream.unlink(missing_ok=True)
    return restrict_to_umask(report)  # nsys may write it 0666 whatever the user's umask


def export_sqlite(tool: NsysTool, report: Path, sqlite_path: Path | None = None) -> Path:
    sqlite_path = sqlite_path or report.with_suffix(".sqlite")
    _run(
        [
            str(tool.nsys),
            "export",
            "--type",
            "sqlite",
            "--force-overwrite",
            "true",
            "-o",
            str(sqlite_path),
            str(report),
        ],
        f"exporting {report.name} to SQLite (nsys export)",
    )
    if not sqlite_path.exists():
        raise ProfkitError(f"nsys export wrote no {sqlite_path}", EXIT_RUN_FAILED)
    return restrict_to_umask(sqlite_path)
