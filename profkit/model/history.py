"""The history document (``profkit.history``): bench results collected across runs and commits, per configuration.

Each :class:`HistoryPoint` is one run of one configuration: when it was recorded, at which commit, its latency,
throughput, memory and cost, whether the environment changed since the previous run (torch, driver, GPU ...), and
the change of its end-to-end latency against the previous run of the same configuration, judged by the same
test ``profkit check`` uses (Mann-Whitney U on the raw trials plus a threshold).
"""

from __future__ import annotations

from typing import ClassVar

import msgspec

from profkit.model.base import Document


class HistoryPoint(msgspec.Struct, frozen=True, kw_only=True):
    run: int  # index into History.runs
    p50_ms: float | None
    p95_ms: float | None
    images_per_s: float | None
    peak_allocated_mb: float | None
    usd_per_1000_images: float | None
    trials_ok: int
    change: float | None = None  # relative change of the median e2e latency vs the previous run (+0.10 = 10% slower)
    p_value: float | None = None
    significant: bool = False
    regressed: bool = False


class HistorySeries(msgspec.Struct, frozen=True, kw_only=True):
    config: str  # "<model> <config name>": one line per configuration
    points: tuple[HistoryPoint, ...]


class HistoryRun(msgspec.Struct, frozen=True, kw_only=True):
    source: str  # the result file, relative to the folder read
    recorded_at: str  # ISO time
    time_source: str  # "recorded" (the document's created_at) or "file modified" (older files)
    commit: str | None
    device: str
    environment: dict[str, str]  # the versions that matter for speed
    environment_changes: tuple[str, ...] = ()  # "torch 2.12.0 -> 2.13.0" against the previous run


class History(Document, frozen=True, kw_only=True):
    KIND: ClassVar[str] = "profkit.history"

    folder: str
    metric: str = "e2e_ms"
    threshold: float | None = None
    runs: tuple[HistoryRun, ...]
    series: tuple[HistorySeries, ...]
    skipped: tuple[str, ...] = ()  # files that could not be read, with why

    def regressions(self) -> list[tuple[str, HistoryPoint]]:
        return [(s.config, p) for s in self.series for p in s.points if p.regressed]

    def latest_regressions(self) -> list[tuple[str, HistoryPoint]]:
        """Regressions in the newest run of each configuration (what a CI gate decides on)."""
        found = []
        for series in self.series:
            if series.points and series.points[-1].regressed:
                found.append((series.config, series.points[-1]))
        return found
