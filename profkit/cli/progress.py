"""One Rich progress display for every long-running command (capture runs and bench calls).

It implements both progress protocols the runners accept: ``capture.run.CaptureProgress`` (one bar per run,
advanced per denoising step) and ``capture.bench.runner.BenchProgress`` (one bar over all pipeline calls).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class RichProgress:
    """A Rich ``Progress`` seen through the capture and bench progress protocols."""

    def __init__(self, progress: Any) -> None:
        self._progress = progress
        self._task: Any = None

    # bench: one bar over every call
    def start(self, total_calls: int) -> None:
        self._task = self._progress.add_task("starting", total=total_calls, run="")

    def advance(self, text: str) -> None:
        self._progress.update(self._task, description=text, advance=1)

    # capture: one bar per run
    def start_run(self, name: str, total_steps: int) -> None:
        self.finish()
        self._task = self._progress.add_task("starting", total=total_steps, run=name)

    def phase(self, text: str) -> None:
        self._progress.update(self._task, description=text)

    def step(self) -> None:
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
        TextColumn("{task.fields[run]}"),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(unit),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=progress_console, transient=False) as progress:
        display = RichProgress(progress)
        yield display
        display.finish()
