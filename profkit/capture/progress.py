"""The one progress protocol of long-running work (capture runs, bench calls), and a silent default."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """What a runner reports: a bar of ``total`` units per run, phases, and each unit done."""

    def start(self, name: str, total: int) -> None: ...
    def phase(self, text: str) -> None: ...
    def advance(self, text: str | None = None) -> None: ...


class NoProgress:
    """Reports nowhere (library use)."""

    def start(self, name: str, total: int) -> None:
        pass

    def phase(self, text: str) -> None:
        pass

    def advance(self, text: str | None = None) -> None:
        pass
