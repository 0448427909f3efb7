"""What commands print: a console on stdout for results, one on stderr for progress."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

console = Console(highlight=False)
progress_console = Console(stderr=True, highlight=False)


def wrote(what: str, path: Path | None) -> None:
    if path is not None:
        console.print(f"wrote {what}: {path}", markup=False, soft_wrap=True)
