"""One analysis of one trace: every view the reports show, as plain dataclasses."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from profkit.analysis.findings import Context, Finding, evaluate
from profkit.analysis.operators import Breakdown, GpuTime, cpu_op_breakdown, gpu_time, kernel_breakdown
from profkit.analysis.pipeline_view import PipelineView, build_pipeline_view
from profkit.parsers.tables import TraceTables


@dataclass
class TraceSummary:
    path: str
    source_format: str
    event_count: int
    devices: list[str]
    counts: dict[str, int]
    skipped_events: dict[str, int]
    unknown_categories: dict[str, int]
    warnings: list[str]
    not_captured: list[str]


@dataclass
class AnalysisResult:
    trace: TraceSummary
    view: PipelineView
    gpu: GpuTime | None
    kernels: Breakdown | None
    cpu_ops: Breakdown
    findings: list[Finding]
    run: dict[str, Any] | None = None  # capture metadata when available
    label: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def primary(self) -> Breakdown:
        """Kernels when the trace has GPU activity, CPU operators otherwise."""
        return self.kernels if self.kernels is not None else self.cpu_ops

    @property
    def total_us(self) -> float:
        """Pipeline wall time when profkit ranges exist, else the GPU window, else CPU op span."""
        if self.view.has_ranges:
            return self.view.total_us
        if self.gpu is not None:
            return self.gpu.window_us
        return self.cpu_ops.total_us

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _device_names(tables: TraceTables) -> list[str]:
    return [str(d.get("name", "?")) for d in tables.info.devices]


def analyze_tables(tables: TraceTables, run: dict[str, Any] | None = None, label: str = "") -> AnalysisResult:
    view = build_pipeline_view(tables)
    gpu = gpu_time(tables)
    kernels = kernel_breakdown(tables) if tables.has_gpu_activity else None
    cpu_ops = cpu_op_breakdown(tables)
    info = tables.info
    findings = evaluate(Context(info, view, gpu, kernels, cpu_ops, run))
    trace = TraceSummary(
        path=str(info.path),
        source_format=info.source_format,
        event_count=info.event_count,
        devices=_device_names(tables),
        counts={
            "kernels": len(tables.kernels),
            "launches": len(tables.launches),
            "memops": len(tables.memops),
            "cpu_ops": len(tables.cpu_ops),
            "ranges": len(tables.ranges),
            "syncs": len(tables.syncs),
        },
        skipped_events=info.skipped_events,
        unknown_categories=info.unknown_categories,
        warnings=list(info.warnings),
        not_captured=list(info.not_captured),
    )
    notes = list((run or {}).get("notes", []))
    return AnalysisResult(trace, view, gpu, kernels, cpu_ops, findings, run, label or Path(info.path).name, notes)
