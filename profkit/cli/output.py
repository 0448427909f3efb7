"""What commands print: a console on stdout for results, one on stderr for progress.

Neither reads console markup: what they print holds names from traces, metadata and the user (``runs[exp1]``),
shown as written; styles are given as ``style=`` or :class:`~rich.text.Text`.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

console = Console(highlight=False, markup=False)
progress_console = Console(stderr=True, highlight=False, markup=False)


def wrote(what: str, path: Path | None) -> None:
    if path is not None:
        console.print(f"wrote {what}: {path}", markup=False, soft_wrap=True)
