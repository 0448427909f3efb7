"""The index of a folder analysis (``profkit.analysis-index``): one row of key numbers per trace, ranks side by side."""

from __future__ import annotations

from typing import ClassVar

import msgspec

from profkit.model.base import Document


class IndexRow(msgspec.Struct, frozen=True, kw_only=True):
    item: str  # the trace file or capture folder analyzed
    label: str
    ok: bool
    error: str | None = None
    report: str | None = None
    summary: str | None = None
    devices: tuple[str, ...] = ()
    events: int = 0
    total_ms: float | None = None  # pipeline wall time, else the GPU window, else CPU op span
    gpu_busy_share: float | None = None  # of the GPU window
    denoise_steps: int = 0
    median_step_ms: float | None = None
    iterations: int = 0  # ProfilerStep#N ranges (training / serving loops)
    median_iteration_ms: float | None = None
    top_finding: str | None = None
    top_finding_severity: str | None = None
    rank: int | None = None
    world_size: int | None = None
    detail_calls: int | None = None  # a large export: the pipeline calls its step and finding columns cover
    calls_total: int | None = None  # ... of its pipeline calls (total and GPU busy count every event)


class RankRow(msgspec.Struct, frozen=True, kw_only=True):
    rank: int
    label: str
    step_ms: float | None  # median iteration (ProfilerStep) or denoise step time
    vs_fastest: float | None  # +0.12 = 12% slower than the fastest rank
    slowest: bool


class AnalysisIndex(Document, frozen=True, kw_only=True):
    KIND: ClassVar[str] = "profkit.analysis-index"

    folder: str
    jobs: int
    rows: tuple[IndexRow, ...]
    ranks: tuple[RankRow, ...] = ()

    @property
    def failed(self) -> list[IndexRow]:
        return [row for row in self.rows if not row.ok]
