"""GPU timeline analyses on built fixtures: attribution, idle-gap causes, launch stats, expert rules."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from profkit.analysis.attribution import gpu_work, pipeline_windows
from profkit.analysis.compare import compare_results
from profkit.analysis.summary import AnalysisResult, analyze_tables
from profkit.analysis.timeline import idle_gaps
from profkit.model.capture import CaptureMetadata
from profkit.parsers.kineto import parse_kineto_document
from tests.tracebuilder import FLASH, GEMM_F16, SOFTMAX, TraceBuilder, diffusion_trace, launch_bound_trace


def analyze(builder: TraceBuilder, run: dict | None = None) -> AnalysisResult:
    metadata = msgspec.convert(run, CaptureMetadata) if run else None
    return analyze_tables(parse_kineto_document(builder.document(), Path("fixture.json")), run=metadata)


def rules(result: AnalysisResult) -> dict[str, object]:
    return {finding.rule: finding for finding in result.findings}


# ---------------------------------------------------------------- attribution


def test_kernels_are_attributed_by_launch_even_when_they_run_after_the_range() -> None:
    builder = TraceBuilder()
    builder.range("profkit/pipeline", 0, 1000)
    builder.range("profkit/denoise/step_000", 100, 100)
    builder.range("profkit/denoise/step_001", 200, 100)
    builder.kernel(GEMM_F16, launch_ts=150, start=450, dur=40)  # launched in step 0, runs much later
    builder.kernel(GEMM_F16, launch_ts=250, start=500, dur=40)  # launched in step 1
    result = analyze(builder)
    assert [step.gpu_busy_us for step in result.view.steps] == [40.0, 40.0]
    assert result.view.gpu_attribution == {"launch": 2}
    assert result.view.gpu_unattributed_share == 0.0


def test_gpu_annotation_attribution_when_no_launch_was_recorded() -> None:
    result = analyze(launch_bound_trace(steps=3, launches=False, gpu_annotations=True, sync_each_step=False))
    attribution = result.view.gpu_attribution
    assert attribution["gpu_annotation"] == 3 * 12
    # text encoder and VAE kernels have neither a launch nor a GPU-side range
    assert attribution["none"] == 2
    denoise = next(s for s in result.view.stages if s.stage == "denoise")
    assert denoise.gpu_busy_us == pytest.approx(3 * 12 * 5.0)
    assert [step.gpu_busy_us for step in result.view.steps] == [60.0, 60.0, 60.0]
    assert result.view.gpu_unattributed_share == pytest.approx(110 / (110 + 180))


def test_stage_gpu_utilization_is_busy_over_wall() -> None:
    result = analyze(diffusion_trace(steps=2, step_us=1000, kernel_fraction=0.5))
    denoise = next(s for s in result.view.stages if s.stage == "denoise")
    assert denoise.gpu_utilization == pytest.approx(0.5)


# ---------------------------------------------------------------- idle gaps


def gap_fixture() -> TraceBuilder:
    builder = TraceBuilder()
    builder.range("profkit/pipeline", 0, 1000)
    builder.range("profkit/denoise/step_000", 0, 400)
    builder.range("profkit/denoise/step_001", 400, 400)
    builder.kernel(GEMM_F16, 0, 5, 10)  # busy 5-15
    builder.kernel(GEMM_F16, 50, 55, 10)  # host: launched at 50, after the GPU went idle at 15
    builder.kernel(GEMM_F16, 60, 100, 20)  # queued: launched at 60, before the GPU went idle at 65
    builder.api("cudaStreamSynchronize", 110, 12)  # waits from 110, returns at 122 (GPU idle at 120)
    builder.kernel(GEMM_F16, 410, 415, 10)  # next step, after the sync: gap 120 -> 415
    return builder


def test_idle_gaps_get_their_cause_and_place() -> None:
    builder = gap_fixture()
    tables = parse_kineto_document(builder.document(), Path("gaps.json"))
    windows = pipeline_windows(tables)
    gaps = idle_gaps(tables, gpu_work(tables, windows), windows)
    assert gaps is not None
    causes = {c.key: (c.count, c.total_us) for c in gaps.by_cause}
    assert causes == {"host": (1, 40.0), "queued": (1, 35.0), "after_sync": (1, 295.0)}
    where = {c.key: c.count for c in gaps.by_where}
    assert where == {"inside a denoise step": 2, "between denoise steps": 1}
    assert gaps.idle_us == pytest.approx(370.0)
    assert gaps.busy_us == pytest.approx(50.0)
    assert gaps.largest[0].length_us == 295.0
    assert gaps.largest[0].step_after == 1


def test_launch_stats_percentiles() -> None:
    builder = TraceBuilder()
    for index, delay in enumerate([2, 4, 6, 8, 100]):
        builder.kernel("vectorized_elementwise_kernel", index * 1000, index * 1000 + delay, 5 + index * 5)
    result = analyze(builder)
    launches = result.launches
    assert launches is not None
    assert launches.delay_p50_us == 6.0
    assert launches.delay_max_us == 100.0
    assert launches.short_kernel_share == pytest.approx(1 / 5)  # only the 5 us kernel is under 10 us
    assert launches.kernels_with_launch == 5


# ---------------------------------------------------------------- rules: trigger and not


def test_launch_bound_loop_is_found_with_host_as_the_cause() -> None:
    found = rules(analyze(launch_bound_trace()))
    assert found["launch_bound_denoise"].severity == "critical"
    assert "waits on the host" in found["launch_bound_denoise"].evidence
    busy = rules(analyze(launch_bound_trace(kernel_us=19.0, host_gap_us=20.0, sync_each_step=False)))
    assert "launch_bound_denoise" not in busy


def test_sync_and_d2h_in_every_step() -> None:
    found = rules(analyze(launch_bound_trace(steps=4)))
    assert "5 of" not in found["sync_every_step"].evidence
    assert "4 of 4 steps" in found["sync_every_step"].evidence
    assert found["host_sync_calls"].scope == "denoise"
    assert "cudaStreamSynchronize ×4" in found["host_sync_calls"].evidence
    assert "pageable_memcpy" in found
    clean = rules(analyze(launch_bound_trace(steps=4, sync_each_step=False)))
    assert not {"sync_every_step", "host_sync_calls", "pageable_memcpy"} & set(clean)


def test_sync_in_one_step_only_is_not_every_step() -> None:
    builder = launch_bound_trace(steps=5, sync_each_step=False)
    builder.api("cudaStreamSynchronize", 120, 3)  # inside step 0 only
    found = rules(analyze(builder))
    assert "sync_every_step" not in found
    assert "host_sync_calls" in found


def test_synchronous_memcpy_rule() -> None:
    builder = diffusion_trace(steps=2)
    builder.api("cudaMemcpy", 300, 50)
    found = rules(analyze(builder))
    assert "cudaMemcpy ×1" in found["synchronous_memcpy_memset"].evidence
    assert "synchronous_memcpy_memset" not in rules(analyze(diffusion_trace(steps=2)))


def test_gpu_starvation_gaps() -> None:
    builder = TraceBuilder()
    builder.kernel(GEMM_F16, 0, 5, 100)
    builder.kernel(GEMM_F16, 3000, 3005, 100)  # a 2.9 ms hole
    found = rules(analyze(builder))
    assert "2.90 ms" in found["gpu_starvation"].evidence
    dense = TraceBuilder()
    dense.kernel(GEMM_F16, 0, 5, 100).kernel(GEMM_F16, 100, 110, 100)
    assert "gpu_starvation" not in rules(analyze(dense))


def test_attention_on_the_math_path() -> None:
    unfused = rules(analyze(launch_bound_trace(attention="softmax")))
    assert "softmax" in unfused["attention_math_path"].evidence
    fused = rules(analyze(launch_bound_trace(attention="flash")))
    assert "attention_math_path" not in fused
    by_op = launch_bound_trace(attention="none")
    by_op.cpu_op("aten::_scaled_dot_product_attention_math", 110, 5)
    assert (
        "1 calls of aten::_scaled_dot_product_attention_math" in rules(analyze(by_op))["attention_math_path"].evidence
    )


def test_fp32_gemm_in_half_run() -> None:
    half_run = {"dtype": "fp16", "device": {"type": "cuda"}}
    sgemm = rules(analyze(diffusion_trace(kernel_name="volta_sgemm_128x64_nn"), run=half_run))
    assert "fp32_matmul_in_half_run" in sgemm
    half_vae = "void cudnn::cnn::conv2d_grouped_direct_kernel<__half>"
    tensor_cores = rules(analyze(diffusion_trace(kernel_name=GEMM_F16, vae_kernel=half_vae), run=half_run))
    assert "fp32_matmul_in_half_run" not in tensor_cores
    fp32_vae = rules(analyze(diffusion_trace(kernel_name=GEMM_F16), run=half_run))  # the VAE conv stayed FP32
    assert "conv2d_grouped_direct_kernel<float>" in fp32_vae["fp32_matmul_in_half_run"].evidence


def test_vae_share_and_first_step_rules() -> None:
    slow_first = rules(analyze(diffusion_trace(steps=5, first_step_extra_us=2000)))
    assert "first_step_outlier" in slow_first
    even = rules(analyze(diffusion_trace(steps=5)))
    assert "first_step_outlier" not in even
    assert "step_variance" not in even
    big_vae = rules(analyze(diffusion_trace(steps=1, step_us=100)))
    assert "vae_decode_large" in big_vae
    assert "vae_decode_large" not in rules(analyze(diffusion_trace(steps=10, step_us=2000)))


# ---------------------------------------------------------------- compare alignment


def test_compare_aligns_different_kernel_names_by_stage_and_category() -> None:
    a = analyze(diffusion_trace(kernel_name="volta_sgemm_128x64_nn"))
    b = analyze(diffusion_trace(kernel_name=GEMM_F16, kernel_fraction=0.2))
    comparison = compare_results(a, b)
    gemm = next(row for row in comparison.aligned if (row.stage, row.category) == ("denoise", "gemm"))
    assert gemm.speedup == pytest.approx(2.5)
    assert (gemm.a_tensor_core, gemm.b_tensor_core) == (0.0, 1.0)
    assert (gemm.a_count, gemm.b_count) == (4, 4)
    assert comparison.tensor_core_share[1] > comparison.tensor_core_share[0]
    # the GPU work got 2x faster, the (host-side) wall time did not: that is said, per stage too
    findings = {f.rule: f for f in comparison.findings}
    assert findings["gpu_vs_wall_speedup"].severity == "warning"
    assert "largest_stage_change" not in findings  # no stage's wall time changed
    denoise_gpu = next(row for row in comparison.stage_gpu if row.key == "denoise")
    assert denoise_gpu.speedup == pytest.approx(2.5)
    same = compare_results(a, analyze(diffusion_trace(kernel_name="volta_sgemm_128x64_nn")))
    assert {f.rule: f for f in same.findings}["gpu_vs_wall_speedup"].severity == "info"


def test_compare_refuses_to_align_gpu_with_cpu_only() -> None:
    cpu = TraceBuilder()
    cpu.range("profkit/pipeline", 0, 100).cpu_op("aten::mm", 10, 50)
    comparison = compare_results(analyze(diffusion_trace()), analyze(cpu))
    assert comparison.aligned == []
    assert comparison.aligned_kind.startswith("not comparable")


def test_flash_kernel_counts_as_attention() -> None:
    result = analyze(launch_bound_trace(attention="flash"))
    categories = {c.category for c in result.kernels.categories}
    assert "attention" in categories and "softmax" not in categories
    assert SOFTMAX not in {row.name for row in result.kernels.rows}
    assert FLASH in {row.name for row in result.kernels.rows}
