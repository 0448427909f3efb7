"""One Rich progress display for every long-running command, through the one protocol
:class:`profkit.capture.progress.Progress` (a bar per capture run counting steps; one bar over all bench calls).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class RichProgress:
    """A Rich ``Progress`` seen through :class:`profkit.capture.progress.Progress`."""

    def __init__(self, progress: Any) -> None:
        self._progress = progress
        self._task: Any = None
        self.started = False

    def start(self, name: str, total: int) -> None:
        self.finish()
        if not self.started:  # shown from the first run on: a command refused before any work prints nothing
            self._progress.start()
            self.started = True
        self._task = self._progress.add_task("starting", total=total, run=name)

    def phase(self, text: str) -> None:
        self._progress.update(self._task, description=text)

    def advance(self, text: str | None = None) -> None:
        if text is not None:
            self._progress.update(self._task, description=text)
        self._progress.advance(self._task)

    def finish(self) -> None:
        if self._task is not None:
            self._progress.update(self._task, description="done")


@contextmanager
def progress_display(unit: str) -> Iterator[RichProgress]:
    """A progress display on stderr counting ``unit`` ("steps", "calls"); closed (and finished) on exit."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from profkit.cli.output import progress_console

    columns = (
        TextColumn("{task.fields[run]}", markup=False),
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(unit),
        TimeElapsedColumn(),
    )
    progress = Progress(*columns, console=progress_console, transient=False)
    display = RichProgress(progress)
    try:
        yield display
        display.finish()
    finally:
        if display.started:
            progress.stop()
