"""One analysis of one trace: every view the reports show, as msgspec structs.

The structs hold JSON types only, so ``msgspec.convert`` rebuilds an :class:`AnalysisResult` from its
:meth:`~AnalysisResult.to_dict` (the analysis summary document, :mod:`profkit.model.analysis`, relies on it).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from profkit.analysis.attention import AttentionStage, attention_by_stage
from profkit.analysis.attribution import gpu_work, label_times, pipeline_windows
from profkit.analysis.findings import Context, Finding, evaluate
from profkit.analysis.graphs import GraphReplays, graph_replays
from profkit.analysis.groups import Groups
from profkit.analysis.operators import (
    Breakdown,
    GpuTime,
    StageMixRow,
    cpu_op_breakdown,
    cpu_op_frame,
    gpu_time,
    kernel_breakdown,
    stage_mix,
)
from profkit.analysis.pipeline_view import PipelineView, build_pipeline_view, view_notes
from profkit.analysis.taxonomy import runtime_api_classes
from profkit.analysis.timeline import (
    HostBlocking,
    IdleGaps,
    LaunchStats,
    blocking_calls,
    host_blocking,
    idle_gaps,
    launch_stats,
)
from profkit.analysis.timeline_view import TimelineView, build_timeline
from profkit.analysis.whole_export import WholeExport, whole_export, window_note
from profkit.model.capture import CaptureMetadata

if TYPE_CHECKING:
    from profkit.parsers.tables import Table, TraceTables


class TraceSummary(msgspec.Struct):
    path: str
    source_format: str
    event_count: int
    devices: list[str]
    counts: dict[str, int]
    skipped_events: dict[str, int]
    unknown_categories: dict[str, int]
    warnings: list[str]
    not_captured: list[str]


class AnalysisResult(msgspec.Struct):
    trace: TraceSummary
    view: PipelineView
    gpu: GpuTime | None
    kernels: Breakdown | None
    cpu_ops: Breakdown
    findings: list[Finding]
    run: CaptureMetadata | None = None  # capture metadata when available
    gaps: IdleGaps | None = None
    launches: LaunchStats | None = None
    blocking: HostBlocking | None = None
    stage_mix: list[StageMixRow] = []  # kernels (GPU) or CPU self time per stage
    label: str = ""
    notes: list[str] = []
    graphs: GraphReplays | None = None  # CUDA graph replays (GPU traces with launch records)
    attention: list[AttentionStage] = []  # SDPA implementation per stage
    timeline: TimelineView | None = None  # what the reports draw (older summaries have none)
    whole: WholeExport | None = None  # a large export read in part: its totals over every event

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
        """JSON builtins of every field; ``run`` as the whole capture document (with its kind and version)."""
        data = msgspec.to_builtins(self)
        if self.run is not None:
            data["run"] = self.run.to_builtins()
        return data


def _device_names(tables: TraceTables) -> list[str]:
    return [str(d.get("name", "?")) for d in tables.info.devices]


def analyze_tables(tables: TraceTables, run: CaptureMetadata | None = None, label: str = "") -> AnalysisResult:
    windows = pipeline_windows(tables)
    work = gpu_work(tables, windows)
    view = build_pipeline_view(tables, windows, work)
    gpu = gpu_time(work)
    kernels = kernel_breakdown(work) if tables.has_gpu_activity else None
    cpu_frame = cpu_op_frame(tables)
    cpu_ops = cpu_op_breakdown(cpu_frame)
    if gpu is not None:
        mix = stage_mix(
            work["stage"],
            work["category"],
            work["dur"],
            work["tensor_core"].astype(bool, copy=False),
        )
    elif windows is not None:
        cpu_stages = label_times(cpu_frame["ts"], windows)[0]
        mix = stage_mix(cpu_stages, cpu_frame["category"], cpu_frame["time"])
    else:
        mix = []
    api_kinds = runtime_api_classes(tables.launches["name"])
    host_calls = blocking_calls(tables, work, api_kinds)
    gaps = idle_gaps(tables, work, windows, host_calls)
    launches = launch_stats(tables, work, api_kinds)
    blocking = host_blocking(tables, work, windows, host_calls) if gpu is not None else None
    graphs = graph_replays(tables, work, windows) if gpu is not None else None
    if graphs is not None and graphs.steps:
        for step_row, graph_step in zip(view.steps, graphs.steps, strict=False):
            step_row.graph_launches = graph_step.launches
    attention = attention_by_stage(tables, work, windows, run.dtype if run is not None else None)
    info = tables.info
    findings = evaluate(
        Context(
            info,
            view,
            gpu,
            kernels,
            cpu_ops,
            run.to_builtins() if run is not None else None,
            gaps=gaps,
            launches=launches,
            blocking=blocking,
            stage_mix=mix,
            cpu_op_names=_op_counts(cpu_frame),
            work=work,
            graphs=graphs,
            attention=attention,
        )
    )
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
    whole = whole_export(tables)
    notes = [*([window_note(whole)] if whole is not None else []), *(run.notes if run is not None else [])]
    notes += view_notes(view)
    return AnalysisResult(
        trace,
        view,
        gpu,
        kernels,
        cpu_ops,
        findings,
        run=run,
        label=label or Path(info.path).name,
        notes=notes,
        gaps=gaps,
        launches=launches,
        blocking=blocking,
        stage_mix=mix,
        graphs=graphs,
        attention=attention,
        timeline=build_timeline(tables, windows, work, view, host_calls),
        whole=whole,
    )


def _op_counts(cpu_frame: Table) -> dict[str, int]:
    """How often each CPU operator name occurs (rules look for specific operators, e.g. the SDPA math path)."""
    names = Groups(cpu_frame["name"], cpu_frame["time"], names=True)
    return {str(name): int(count) for name, count in zip(names.keys.tolist(), names.count.tolist(), strict=True)}
