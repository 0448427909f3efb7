"""CUDA graph replays on the real H100 captures (issue 11, point 4), checked against the raw events."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from profkit.analysis.summary import analyze_tables
from profkit.parsers.kineto import parse_kineto_document
from tests.analysis.h100raw import CAPTURES, COMPILED, DIT, FP16, FP32, analyzed, idle_inside, raw, spans, union
from tests.tracebuilder import diffusion_trace


def _graph_launches(name: str) -> list[dict]:
    return sorted((e for e in raw(name).runtime if e["name"] == "cudaGraphLaunch"), key=lambda e: e["ts"])


def _replayed(name: str, launch: dict) -> list[dict]:
    return [item for item in raw(name).work if item["args"].get("correlation") == launch["args"]["correlation"]]


def test_graph_replays_are_counted_per_step_and_attributed_to_the_launching_step() -> None:
    result, events = analyzed(COMPILED), raw(COMPILED)
    launches = _graph_launches(COMPILED)
    graphs = result.graphs
    assert graphs.launches == len(launches) == 10
    replayed = [item for launch in launches for item in _replayed(COMPILED, launch)]
    assert graphs.replayed_items == len(replayed) > 2000
    assert graphs.replay_busy_us == pytest.approx(union(spans(replayed)), abs=0.01)
    assert graphs.replay_share == pytest.approx(union(spans(replayed)) / union(spans(events.work)), abs=1e-6)
    assert graphs.replay_share > 0.9
    for row, step, graph_step in zip(result.view.steps, events.steps(), graphs.steps, strict=True):
        inside = [g for g in launches if step["ts"] <= g["ts"] <= step["ts"] + step["dur"]]
        assert row.graph_launches == graph_step.launches == len(inside) == 1
        mine = _replayed(COMPILED, inside[0])
        assert graph_step.replayed_us == pytest.approx(union(spans(mine)), abs=0.01)
        # the replayed kernels run long after the launch call returned, yet count in the launching step
        assert row.projection.work_items >= len(mine)
        assert row.projection.start_us <= min(i["ts"] for i in mine)


def test_idle_between_replays_and_the_sync_that_causes_it() -> None:
    result, events = analyzed(COMPILED), raw(COMPILED)
    launches = _graph_launches(COMPILED)
    expected = 0.0
    for first, second in itertools.pairwise(launches):
        end = max(i["ts"] + i["dur"] for i in _replayed(COMPILED, first))
        start = min(i["ts"] for i in _replayed(COMPILED, second))
        expected += idle_inside(events.work, end, start)
    graphs = result.graphs
    assert graphs.gaps_between == 9
    assert graphs.idle_between_us == pytest.approx(expected, abs=0.05)
    syncs = [e for e in events.runtime if e["name"] == "cudaStreamSynchronize" and launches[0]["ts"] < e["ts"]]
    syncs = [e for e in syncs if e["ts"] < launches[-1]["ts"]]
    assert graphs.sync_calls_between == {"cudaStreamSynchronize": len(syncs)}
    assert graphs.sync_op == "aten::_local_scalar_dense" and graphs.sync_range == "scheduler"
    finding = next(f for f in result.findings if f.rule == "idle_between_graph_replays")
    assert finding.impact.recoverable_ms == pytest.approx(expected / 1000, abs=1e-4)
    assert finding.impact.share == pytest.approx(expected / result.view.total_us, abs=1e-6)
    assert "aten::_local_scalar_dense" in finding.evidence and "cudaStreamSynchronize" in finding.evidence
    assert "scheduler" in finding.evidence


@pytest.mark.parametrize("name", CAPTURES)
def test_graph_findings_fire_only_where_the_trace_shows_their_cause(name: str) -> None:
    result = analyzed(name)
    rules = {finding.rule for finding in result.findings}
    assert ("idle_between_graph_replays" in rules) == (name == COMPILED)
    launch_bound = next((f for f in result.findings if f.rule == "launch_bound_denoise"), None)
    assert (launch_bound is not None) == (name in (FP32, FP16, DIT))
    if launch_bound is not None:  # a launch-bound loop without graphs says so, once
        assert "No cudaGraphLaunch in the trace" in launch_bound.evidence
    if name != COMPILED:
        assert result.graphs.launches == 0 and result.graphs.replay_share == 0


@pytest.mark.parametrize("name", [FP32, FP16])
def test_gpu_idle_inside_steps_of_a_loop_without_graphs(name: str) -> None:
    result, events = analyzed(name), raw(name)
    idle = sum(idle_inside(events.work, s["ts"], s["ts"] + s["dur"]) for s in events.steps())
    assert result.graphs.idle_in_steps_us == pytest.approx(idle, abs=0.1)
    finding = next(f for f in result.findings if f.rule == "launch_bound_denoise")
    assert finding.numbers["idle_share"] > 0.9  # the 64x64 captures are launch-bound
    assert finding.impact.recoverable_ms <= idle / 1000  # the host-launch part of that idle
    assert "torch.compile" in finding.next_step
    # the whole-pipeline utilization finding is the same idle: context, not counted twice
    low = next(f for f in result.findings if f.rule == "low_gpu_utilization")
    assert low.impact is None and low.severity == "info" and "counted in" in low.evidence


def test_a_gpu_bound_loop_without_graphs_is_not_launch_bound() -> None:
    trace = diffusion_trace(steps=6, kernel_fraction=0.95)
    result = analyze_tables(parse_kineto_document(trace.document(), Path("fixture.json")))
    assert result.graphs is not None and result.graphs.launches == 0
    assert "launch_bound_denoise" not in {f.rule for f in result.findings}
