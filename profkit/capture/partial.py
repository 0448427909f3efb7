"""Capture runs that do not finish: marked from the start, kept when interrupted, recognised when run again.

A run folder gets a ``metadata.json`` with status "running" as soon as it is made; the finished run replaces it
(status complete). Ctrl-C or SIGTERM rewrites it with status "interrupted" and what was measured so far (the
settings, load and warm-up times, and the trace of the recorded call when the profiler had started); a crash marks
it "failed" (a run that failed before its pipeline was loaded measured nothing: its folder is removed); a killed
process leaves "running". A capture into such a folder is refused with a line saying what it
holds (``force`` replaces it), so an unfinished folder never looks complete and never blocks a rerun unexplained.
"""

from __future__ import annotations

import shutil
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from profkit.capture.run import run_metadata
from profkit.capture.settings import CaptureSettings
from profkit.errors import Interrupted, ProfkitError, signal_name
from profkit.model.capture import (
    METADATA_FILE,
    CaptureMetadata,
    ProfilerInfo,
    RunFiles,
    Timing,
)

RUNNING = "running"
INTERRUPTED = "interrupted"
FAILED = "failed"


@dataclass
class RunState:
    """What one capture run has done so far; the capture updates it as it goes."""

    settings: CaptureSettings
    dtype: str
    device: str
    folder: Path
    phase: str = "loading the pipeline"
    loaded: Any = None  # a LoadedPipeline once loaded
    components: dict[str, str] = field(default_factory=dict)
    warmup_seconds: list[float] = field(default_factory=list)
    profiler: ProfilerInfo | None = None
    files: RunFiles = field(default_factory=lambda: RunFiles(images=[]))
    notes: list[str] = field(default_factory=list)
    #: Another process (the nsys child) writes the run's metadata: keep what it wrote, add status, notes, report.
    adopt_written: bool = False

    def metadata(self, status: str) -> CaptureMetadata:
        """The run's metadata as far as it got (the complete run writes the full one instead)."""
        pipeline = self.loaded.pipeline if self.loaded is not None else None
        return run_metadata(
            self.settings,
            self.dtype,
            self.device,
            self.loaded,
            pipeline,
            self.components,
            timing=Timing(
                load=self.loaded.load_seconds if self.loaded is not None else None,
                warmup_calls=list(self.warmup_seconds),
            ),
            profiler=self.profiler,
            files=self.files,
            notes=self.notes,
            status=status,
        )

    def write(self, status: str) -> CaptureMetadata:
        """Write the metadata with ``status``; the written document."""
        metadata = self.metadata(status)
        written = _written(self.folder) if self.adopt_written else None
        if written is not None and written.status != RUNNING:
            report = self.files.nsys_report or written.files.nsys_report
            metadata = msgspec.structs.replace(
                written,
                status=status,
                notes=[*written.notes, *self.notes],
                files=msgspec.structs.replace(written.files, nsys_report=report),
            )
        metadata.write(self.folder / METADATA_FILE)
        return metadata

    def start(self) -> RunState:
        """Mark the folder as holding a run that has not finished."""
        self.write(RUNNING)
        return self

    def interrupted(self, interrupt: BaseException) -> Interrupted:
        """Keep what was measured, marked interrupted; the error that says so."""
        self.notes.append(f"interrupted ({signal_name(interrupt)}) during {self.phase}: the run is partial")
        metadata = self.write(INTERRUPTED)
        warmups = len(metadata.timing_seconds.warmup_calls)
        kept = [f"{warmups} warm-up call{'s' if warmups != 1 else ''} timed"]
        if metadata.files.trace:
            kept.append(f"the partial trace {metadata.files.trace}")
        if metadata.files.nsys_report:
            kept.append(f"the partial report {metadata.files.nsys_report}")
        return Interrupted(
            f"the {self.dtype} run stopped during {self.phase} ({', '.join(kept)}); what it measured is kept in "
            f"{self.folder}, marked {INTERRUPTED} in its {METADATA_FILE}",
            interrupt,
        )

    def failed(self, error: BaseException) -> None:
        """Mark the run failed (what it measured stays); the caller reports the error. A run that failed before
        its pipeline was loaded measured nothing: its folder is removed, so a rerun is not refused for it."""
        if self.loaded is None and not self.adopt_written and _holds_only_metadata(self.folder):
            shutil.rmtree(self.folder, ignore_errors=True)
            return
        self.notes.append(f"failed during {self.phase}: {type(error).__name__}: {error}"[:500])
        with suppress(OSError, ProfkitError):  # the original error matters more than this mark
            self.write(FAILED)


def _holds_only_metadata(folder: Path) -> bool:
    try:
        return [p.name for p in folder.iterdir()] == [METADATA_FILE]
    except OSError:
        return False


def _written(folder: Path) -> CaptureMetadata | None:
    path = folder / METADATA_FILE
    try:
        return CaptureMetadata.load(path) if path.is_file() else None
    except ProfkitError:
        return None


def unfinished_status(folder: Path) -> str | None:
    """The status of an unfinished run in ``folder`` ("running", "interrupted", "failed"), else ``None``.

    An empty folder is an unfinished run too (its process died before writing anything); a folder with complete,
    foreign or unreadable metadata is not.
    """
    if not (folder / METADATA_FILE).is_file():
        return RUNNING if folder.is_dir() and not any(folder.iterdir()) else None
    written = _written(folder)
    return None if written is None or written.status == "complete" else written.status
