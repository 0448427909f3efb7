"""What rules read: the views of one analysed trace, or two analyses and their comparison."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from profkit.analysis.attention import AttentionStage
from profkit.analysis.graphs import GraphReplays
from profkit.analysis.operators import Breakdown, GpuTime, StageMixRow
from profkit.analysis.pipeline_view import PipelineView, StageRow
from profkit.analysis.timeline import HostBlocking, IdleGaps, LaunchStats
from profkit.parsers.tables import TraceInfo

if TYPE_CHECKING:  # the comparison module imports this package
    from profkit.analysis.compare import ComparisonResult
    from profkit.analysis.summary import AnalysisResult
    from profkit.parsers.tables import Table


def _get(record: Any, key: str) -> Any:
    if record is None:
        return None
    return record.get(key) if isinstance(record, dict) else getattr(record, key, None)


def run_dtype(run: Any) -> str | None:
    """The captured dtype (``fp32`` ...) from capture metadata, a dict or a typed document."""
    return _get(run, "dtype")


def run_device_type(run: Any) -> str | None:
    """The captured device type (``cpu``, ``cuda``) from capture metadata."""
    return _get(_get(run, "device"), "type")


class Context(msgspec.Struct):
    """The views of one analysed trace (trace rules read this)."""

    info: TraceInfo
    view: PipelineView
    gpu: GpuTime | None
    kernels: Breakdown | None
    cpu_ops: Breakdown
    run: Any  # capture metadata, when the trace came from a profkit capture
    gaps: IdleGaps | None = None
    launches: LaunchStats | None = None
    blocking: HostBlocking | None = None
    stage_mix: list[StageMixRow] = []
    cpu_op_names: dict[str, int] = {}  # CPU operator name -> count
    work: Table | None = None  # every GPU kernel/copy (``gpu_work``): rules that must see past the top rows
    graphs: GraphReplays | None = None  # CUDA graph replays (graph_rules.py)
    attention: list[AttentionStage] = []  # SDPA implementation per stage (attention_rules.py)

    @property
    def window_us(self) -> float:
        """The analysed wall time: the pipeline call(s) when known, else the GPU window."""
        if self.view.has_ranges:
            return self.view.total_us
        return self.gpu.window_us if self.gpu else 0.0

    @property
    def dtype(self) -> str | None:
        return run_dtype(self.run)

    @property
    def device_type(self) -> str | None:
        return run_device_type(self.run)

    def stage(self, name: str) -> StageRow | None:
        return next((s for s in self.view.stages if s.stage == name), None)


class ComparisonContext(msgspec.Struct):
    """A comparison and the two analyses behind it (comparison rules read this)."""

    result: ComparisonResult
    a: AnalysisResult
    b: AnalysisResult
