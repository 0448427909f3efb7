"""What commands print: a console on stdout for results, one on stderr for progress.

Neither reads console markup: what they print holds names from traces, metadata and the user (``runs[exp1]``),
shown as written; styles are given as ``style=`` or :class:`~rich.text.Text`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from rich.console import Console

#: Width of tables when the output is a file or a pipe (rich would use 80 and wrap sentences mid-way).
PIPE_WIDTH = 160


def _console(stderr: bool) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    piped = not (hasattr(stream, "isatty") and stream.isatty()) and not os.environ.get("COLUMNS")
    if piped:  # a sentence stays on one line; tables get room for their columns
        return Console(stderr=stderr, highlight=False, markup=False, width=PIPE_WIDTH, soft_wrap=True)
    return Console(stderr=stderr, highlight=False, markup=False)


console = _console(stderr=False)
progress_console = _console(stderr=True)


def wrote(what: str, path: Path | None) -> None:
    if path is not None:
        console.print(f"wrote {what}: {path}", markup=False, soft_wrap=True)
