"""Impact on every finding, on the real H100 captures (issue 11, point 1).

Each impact-aware rule fires where its cause is in the trace and stays quiet elsewhere; its recoverable time is
checked against a value computed here from the raw event tables (not through the analysis helpers); severity
follows the impact, and nothing below the floor is a warning.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from msgspec.structs import replace

from profkit.analysis import analyze_tables
from profkit.analysis.findings import THRESHOLDS, Finding, Impact, Severity
from profkit.analysis.findings.facts import FP32_TO_TF32_RATIO, PINNED_COPY_GB_PER_S
from profkit.analysis.findings.registry import severity_of
from profkit.analysis.summary import AnalysisResult
from profkit.analysis.taxonomy import classify_kernel, guess_precision, uses_tensor_cores
from profkit.app.inputs import analyze_input, resolve_input
from profkit.parsers import load_trace
from profkit.parsers.kineto import parse_kineto_document
from profkit.parsers.tables import SCHEMAS, TraceTables
from tests.conftest import REPO
from tests.tracebuilder import launch_bound_trace

CORPUS = Path(os.environ.get("PROFKIT_CORPUS", REPO.parent / "shared" / "corpus"))
H100 = CORPUS / "h100"
FP32_64 = "tiny-sd_fp32_20steps_64x64_b1"
FP16_64 = "tiny-sd_fp16_20steps_64x64_b1"
DIT = "tiny-dit_fp32_20steps_256x256_b1"
COMPILED = "tiny-sd_fp16_compiled_reduce-overhead_10steps_256x256_b1"
STEP_PATTERN = r"profkit/denoise/step_\d+"
SYNC_NAMES = ("cudaStreamSynchronize", "cudaDeviceSynchronize", "cudaEventSynchronize", "cudaMemcpy", "cudaMemset")


def _need_corpus() -> None:
    if not (H100 / FP32_64 / "trace.json.gz").exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"real H100 captures not found at {H100} (set PROFKIT_CORPUS)")
        pytest.skip(f"real H100 captures not found at {H100}")


@pytest.fixture(scope="module")
def h100() -> dict[str, tuple[AnalysisResult, TraceTables]]:
    _need_corpus()
    return {
        name: (analyze_input(resolve_input(H100 / name)), _pandas(load_trace(H100 / name / "trace.json.gz")))
        for name in (FP32_64, FP16_64, DIT, COMPILED)
    }


@pytest.fixture(scope="module")
def kineto() -> dict[str, AnalysisResult]:
    _need_corpus()
    return {path.name: analyze_tables(load_trace(path)) for path in sorted((CORPUS / "kineto").glob("*.json.gz"))}


def _pandas(tables: TraceTables) -> TraceTables:
    """The event tables as DataFrames: the expected numbers below are computed with pandas, independently."""
    return replace(tables, **{name: getattr(tables, name).to_pandas() for name in SCHEMAS})


def _by_rule(result: AnalysisResult) -> dict[str, Finding]:
    return {finding.rule: finding for finding in result.findings}


# ---------------------------------------------------------------- independent numbers from the raw tables


def _cpu_ranges(tables: TraceTables, pattern: str) -> pd.DataFrame:
    """The CPU-side ranges whose name matches ``pattern`` (GPU-side annotations of the same name left out)."""
    ranges = tables.ranges[~tables.ranges["on_gpu"].astype(bool)]
    return ranges[ranges["name"].astype(str).str.fullmatch(pattern).to_numpy()]


def _wall_us(tables: TraceTables) -> float:
    return float(_cpu_ranges(tables, "profkit/pipeline")["dur"].sum())


def _inside(ts: np.ndarray, ranges: pd.DataFrame) -> np.ndarray:
    starts, ends = ranges["ts"].to_numpy(dtype=float), ranges["end"].to_numpy(dtype=float)
    return ((ts[:, None] >= starts[None, :]) & (ts[:, None] < ends[None, :])).any(axis=1)


def _blocking_calls(tables: TraceTables) -> pd.DataFrame:
    """Host calls that wait for the GPU: syncs, blocking copies/sets, async copies of pageable memory."""
    calls = tables.launches
    pageable = tables.memops.loc[tables.memops["pageable"].astype(bool), "correlation"].to_numpy()
    names = calls["name"].astype(str)
    blocking = names.isin(SYNC_NAMES) | (names.str.startswith("cudaMemcpy") & calls["correlation"].isin(pageable))
    return calls[blocking.to_numpy()]


def _gaps(tables: TraceTables) -> pd.DataFrame:
    """The idle gaps between GPU work launched inside the pipeline call: length, whether the work on both sides
    was launched in a denoise step, and the cause (``host``: launched after the GPU went idle; ``after_sync``: a
    blocking call spanned the start of the gap and returned inside it)."""
    launch_ts = dict(zip(tables.launches["correlation"], tables.launches["ts"], strict=False))
    work = pd.concat(
        [tables.kernels[["ts", "end", "correlation"]], tables.memops[["ts", "end", "correlation"]]], ignore_index=True
    )
    work["launch"] = work["correlation"].map(launch_ts).astype(float)
    pipeline = _cpu_ranges(tables, "profkit/pipeline")
    steps = _cpu_ranges(tables, STEP_PATTERN)
    launched = work["launch"].to_numpy()
    work = work[_inside(np.nan_to_num(launched, nan=-1.0), pipeline)].copy()
    work["denoise"] = _inside(work["launch"].to_numpy(), steps)
    work = work.sort_values(["ts", "end"], kind="stable").reset_index(drop=True)
    blocking = _blocking_calls(tables)
    rows = []
    block_end, last_denoise = -np.inf, False
    for item in work.itertuples():
        if item.ts > block_end and np.isfinite(block_end):
            gap_start, gap_end = block_end, item.ts
            spans = blocking[(blocking["end"] <= gap_end) & (blocking["end"] >= gap_start - 5)]
            spans = spans[spans["ts"] <= gap_start + 5]
            cause = "host" if item.launch > gap_start - 5 else "queued"
            if len(spans):
                cause = "after_sync"
            rows.append({"length": gap_end - gap_start, "cause": cause, "loop": last_denoise and item.denoise})
        if item.end >= block_end:
            block_end, last_denoise = item.end, item.denoise
    return pd.DataFrame(rows)


def _ms(frame: pd.DataFrame, cause: str, loop: bool | None = None) -> float:
    chosen = frame[frame["cause"] == cause]
    if loop is not None:
        chosen = chosen[chosen["loop"] == loop] if not loop else chosen[chosen["loop"]]
    return float(chosen["length"].sum()) / 1000


# ---------------------------------------------------------------- launch-bound


@pytest.mark.parametrize("name", [FP32_64, FP16_64])
def test_launch_bound_impact_is_the_host_idle_inside_the_loop(h100, name: str) -> None:
    result, tables = h100[name]
    finding = _by_rule(result)["launch_bound_denoise"]
    gaps = _gaps(tables)
    expected_ms = _ms(gaps, "host", loop=True)
    assert finding.impact is not None
    assert finding.impact.recoverable_ms == pytest.approx(expected_ms, rel=1e-3)
    assert finding.impact.share == pytest.approx(expected_ms * 1000 / _wall_us(tables), rel=1e-3)
    assert "upper bound" in finding.impact.method and "CUDA graphs" in finding.impact.method
    assert finding.severity == Severity.CRITICAL  # most of the 64x64 loop is the GPU waiting on the host


def test_launch_bound_stays_quiet_on_a_gpu_bound_loop() -> None:
    busy = launch_bound_trace(kernel_us=19.5, host_gap_us=20.0, sync_each_step=False)
    result = analyze_tables(parse_kineto_document(busy.document(), Path("busy.json")))
    assert "launch_bound_denoise" not in _by_rule(result)
    bound = analyze_tables(parse_kineto_document(launch_bound_trace().document(), Path("bound.json")))
    assert _by_rule(bound)["launch_bound_denoise"].impact.recoverable_ms > 0


# ---------------------------------------------------------------- host syncs


def test_host_sync_impact_is_blocked_time_capped_at_the_idle_after_syncs(h100) -> None:
    for name in (FP16_64, COMPILED, DIT):
        result, tables = h100[name]
        finding = _by_rule(result)["host_sync_calls"]
        syncs = tables.launches[tables.launches["name"].astype(str).str.endswith("Synchronize")]
        pipeline = _cpu_ranges(tables, "profkit/pipeline")
        in_pipeline = syncs[_inside(syncs["ts"].to_numpy(dtype=float), pipeline)]
        blocked_ms = float(syncs[syncs["name"].isin(in_pipeline["name"])]["dur"].sum()) / 1000
        idle_ms = _ms(_gaps(tables), "after_sync")
        assert finding.numbers["blocked_ms"] == pytest.approx(blocked_ms, rel=1e-6), name
        assert finding.numbers["idle_after_sync_ms"] == pytest.approx(idle_ms, rel=1e-3), name
        if name != COMPILED:
            assert finding.impact.recoverable_ms == pytest.approx(min(blocked_ms, idle_ms), rel=1e-3), name
    # 64x64 fp16: ~1 ms blocked over 122 tiny syncs, the loop is launch-bound anyway: info, not a warning
    assert _by_rule(h100[FP16_64][0])["host_sync_calls"].severity == Severity.INFO
    # the compiled run blocks 85 ms in syncs and the GPU idles ~10 ms after them; with CUDA graphs that idle is the
    # idle between replays, whose finding counts it: this one stays as uncounted context
    compiled = _by_rule(h100[COMPILED][0])["host_sync_calls"]
    assert compiled.impact is None and compiled.severity == Severity.INFO
    assert "counted in: The denoiser runs as CUDA graphs" in compiled.evidence
    # the DiT run: the GPU idled only 0.6% of the window after syncs, so the finding does not claim it "idles"
    dit = _by_rule(h100[DIT][0])["host_sync_calls"]
    assert "barely idled" in dit.title and "drains" not in dit.evidence and "sat idle" not in dit.evidence


def test_sync_every_step_is_info_when_each_step_blocks_only_0_05_ms(h100) -> None:
    for name in (FP32_64, FP16_64):
        finding = _by_rule(h100[name][0])["sync_every_step"]
        assert finding.numbers["sync_ms_per_step"] < 0.1
        assert finding.impact.recoverable_ms < THRESHOLDS["impact_floor_ms"]
        assert finding.severity == Severity.INFO
    compiled = _by_rule(h100[COMPILED][0])["sync_every_step"]
    assert compiled.numbers["idle_after_sync_ms"] == pytest.approx(
        _ms(_gaps(h100[COMPILED][1]), "after_sync", True), rel=1e-3
    )
    assert compiled.impact is None and "counted in" in compiled.evidence  # the graph-replay idle counts it
    replays = _by_rule(h100[COMPILED][0])["idle_between_graph_replays"]
    assert replays.impact.recoverable_ms >= compiled.numbers["idle_after_sync_ms"]


# ---------------------------------------------------------------- pageable copies


@pytest.mark.parametrize("name", [FP32_64, FP16_64, DIT, COMPILED])
def test_pageable_impact_is_copy_time_minus_the_pinned_rate(h100, name: str) -> None:
    result, tables = h100[name]
    finding = _by_rule(result)["pageable_memcpy"]
    pageable = tables.memops[tables.memops["pageable"].astype(bool)]
    copy_us = float(pageable["dur"].sum())
    expected_ms = max(copy_us - float(pageable["bytes"].sum()) / (PINNED_COPY_GB_PER_S * 1e9) * 1e6, 0.0) / 1000
    assert finding.impact.recoverable_ms == pytest.approx(expected_ms, abs=1e-9)
    assert finding.impact.estimate and f"{PINNED_COPY_GB_PER_S:.0f} GB/s" in finding.impact.method
    assert finding.severity == Severity.INFO  # a few kB, 0.00 ms of copy time: not a warning


# ---------------------------------------------------------------- FP32 GEMMs without TF32


def test_fp32_gemm_without_tf32_fires_on_the_fp32_h100_runs_with_the_ratio_estimate(h100) -> None:
    assert FP32_TO_TF32_RATIO[9] == pytest.approx(495 / 67, rel=0.01)  # H100 SXM dense TF32 / FP32 peak
    assert FP32_TO_TF32_RATIO[8] == pytest.approx(156 / 19.5, rel=0.01)  # A100
    for name in (FP32_64, DIT):
        result, tables = h100[name]
        finding = _by_rule(result)["fp32_gemm_without_tf32"]
        names = tables.kernels["name"].astype(str)
        matmul = [classify_kernel(n)[0] in ("gemm", "convolution") for n in names]
        plain = [
            m and guess_precision(n) == "fp32" and not uses_tensor_cores(n) for m, n in zip(matmul, names, strict=True)
        ]
        fp32_ms = float(tables.kernels.loc[plain, "dur"].sum()) / 1000
        assert finding.numbers["fp32_ms"] == pytest.approx(fp32_ms, rel=1e-6)
        assert finding.impact.recoverable_ms == pytest.approx(fp32_ms * (1 - 1 / FP32_TO_TF32_RATIO[9]), rel=1e-6)
        assert finding.impact.estimate and "compute capability 9.x" in finding.impact.method
    for name in (FP16_64, COMPILED):  # half precision: the TF32 rule does not apply
        assert "fp32_gemm_without_tf32" not in _by_rule(h100[name][0])


def test_fp32_gemm_rule_needs_a_gpu_with_tf32(kineto) -> None:
    assert "fp32_gemm_without_tf32" in _by_rule(kineto["a100_alexnet.json.gz"])
    for name in ("v100_training_rank0.json.gz", "mi250_rocm_minitoy.json.gz", "cpu_only.json.gz"):
        assert "fp32_gemm_without_tf32" not in _by_rule(kineto[name]), name


# ---------------------------------------------------------------- severity from impact, everywhere


def _all(h100, kineto) -> list[tuple[str, Finding]]:
    found = [(name, f) for name, (result, _) in h100.items() for f in result.findings]
    return found + [(name, f) for name, result in kineto.items() for f in result.findings]


def test_severity_follows_impact_and_nothing_below_the_floor_warns(h100, kineto) -> None:
    floor, warn = THRESHOLDS["impact_floor_ms"], THRESHOLDS["impact_warning_share"]
    with_impact = 0
    for name, finding in _all(h100, kineto):
        if finding.impact is None:
            continue
        with_impact += 1
        assert finding.severity == severity_of(finding.impact), (name, finding.rule)
        if finding.impact.recoverable_ms < floor or finding.impact.share < warn:
            assert finding.severity == Severity.INFO, (name, finding.rule)
    assert with_impact >= 20


def test_findings_without_impact_are_info(h100, kineto) -> None:
    for name, finding in _all(h100, kineto):
        if finding.impact is None:
            assert finding.severity == Severity.INFO, (name, finding.rule)


def test_severity_table() -> None:
    def impact(ms: float, share: float) -> Impact:
        return Impact(recoverable_ms=ms, share=share, method="m")

    assert severity_of(impact(50.0, THRESHOLDS["impact_critical_share"])) == Severity.CRITICAL
    assert severity_of(impact(50.0, THRESHOLDS["impact_warning_share"])) == Severity.WARNING
    assert severity_of(impact(50.0, THRESHOLDS["impact_warning_share"] / 2)) == Severity.INFO
    assert severity_of(impact(THRESHOLDS["impact_floor_ms"] / 2, 0.5)) == Severity.INFO  # big share, tiny time


def test_findings_are_ordered_by_impact(h100) -> None:
    for result, _ in h100.values():
        impacts = [f.impact.recoverable_ms for f in result.findings if f.impact is not None]
        assert impacts == sorted(impacts, reverse=True)
        assert result.findings[0].impact is not None  # the largest recoverable time leads


def test_impact_is_rendered_in_html_terminal_and_json(h100) -> None:
    import msgspec
    from rich.console import Console

    from profkit.report.html import analysis_html
    from profkit.report.terminal import print_analysis

    result = h100[FP16_64][0]
    launch = _by_rule(result)["launch_bound_denoise"]
    page = analysis_html(result)
    assert f"Impact: {launch.impact.headline()}" in page and "method: GPU idle inside the denoise loop" in page
    assert "of wall time), estimate" in page  # the pageable-copy estimate is labelled
    console = Console(record=True, width=200)
    print_analysis(result, console)
    assert f"impact: {launch.impact.headline()}; method:" in console.export_text()
    data = msgspec.json.decode(msgspec.json.encode(result.to_dict()))
    impacts = {f["rule"]: f["impact"] for f in data["findings"]}
    assert impacts["launch_bound_denoise"]["recoverable_ms"] == launch.impact.recoverable_ms
    assert impacts["pageable_memcpy"]["estimate"] is True and impacts["denoise_dominates"] is None
