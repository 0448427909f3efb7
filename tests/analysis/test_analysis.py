"""Analyses on fixtures with known answers, on real GPU traces, and on the built-in capture."""

from __future__ import annotations

import msgspec
import numpy as np
import pytest

from profkit.analysis import analyze_tables
from profkit.analysis.intervals import locate, merge, merge_blocks, union_length
from profkit.analysis.operators import cpu_self_times
from profkit.analysis.taxonomy import classify_kernel, guess_precision, uses_tensor_cores
from profkit.model.capture import CaptureMetadata
from profkit.parsers import load_trace
from profkit.parsers.kineto import parse_kineto_document
from profkit.parsers.tables import build_table
from tests.conftest import corpus_traces
from tests.tracebuilder import TraceBuilder, diffusion_trace


def test_union_never_double_counts_overlaps():
    starts, ends = np.array([0, 5, 20, 21]), np.array([10, 12, 25, 22])
    assert union_length(starts, ends) == 12 + 5
    merged = merge(starts, ends)
    assert merged[0].tolist() == [0, 20] and merged[1].tolist() == [12, 25]
    assert locate(np.array([3, 15, 24, 30]), *merge(starts, ends)).tolist() == [0, -1, 1, -1]
    block_starts, block_ends, first, last = merge_blocks(starts, ends)
    assert starts[first].tolist() == block_starts.tolist() == [0, 20]  # the interval that opens each block
    assert ends[last].tolist() == block_ends.tolist() == [12, 25]  # and the one that reaches its end
    assert last.tolist() == [1, 2]


def test_cpu_self_time_subtracts_direct_children():
    ops = build_table(
        "cpu_ops",
        {
            "name": ["parent", "child", "grandchild", "other_thread"],
            "cat": ["cpu_op"] * 4,
            "ts": [0.0, 10.0, 12.0, 0.0],
            "dur": [100.0, 30.0, 5.0, 50.0],
            "pid": ["1"] * 4,
            "tid": ["1", "1", "1", "2"],
            "external_id": [1, 2, 3, 4],
        },
    )
    assert cpu_self_times(ops).tolist() == [70.0, 25.0, 5.0, 50.0]


def test_stages_steps_and_gpu_attribution_on_a_gpu_fixture(tmp_path):
    tables = load_trace(diffusion_trace(steps=4, step_us=1000).write(tmp_path / "t.json"))
    result = analyze_tables(tables)
    view = result.view
    stages = {s.stage: s for s in view.stages}
    assert view.total_us == pytest.approx(200 + 4000 + 400 + 100)
    assert stages["denoise"].wall_us == pytest.approx(4000)
    assert stages["vae"].wall_us == pytest.approx(400)
    assert stages["text_encoder"].wall_us == pytest.approx(150)
    assert stages["other"].wall_us == pytest.approx(4700 - 4000 - 400 - 150)
    assert sum(s.share for s in view.stages) == pytest.approx(1.0)
    # kernels are attributed by their launch (correlation id), not by when they ran
    assert stages["denoise"].gpu_busy_us == pytest.approx(4 * 500)
    assert stages["vae"].gpu_busy_us == pytest.approx(300 + 20)
    assert stages["text_encoder"].gpu_busy_us == pytest.approx(50)
    assert view.gpu_unattributed_share == pytest.approx(0.0)
    assert [s.step for s in view.steps] == [0, 1, 2, 3]
    assert all(s.gpu_busy_us == pytest.approx(500) for s in view.steps)
    assert view.step_stats.median == pytest.approx(1000)
    assert result.gpu.busy_us <= result.gpu.window_us
    assert result.gpu.busy_us <= result.gpu.kernel_sum_us + result.gpu.memop_sum_us


@pytest.mark.corpus
@pytest.mark.parametrize("path", corpus_traces(), ids=lambda p: p.name)
def test_every_corpus_trace_analyzes_and_says_what_is_missing(corpus, path):
    result = analyze_tables(load_trace(path))
    rules = {f.rule for f in result.findings}
    assert "no_profkit_ranges" in rules
    if result.gpu is None:
        assert "no_gpu_activity" in rules and result.kernels is None
        assert result.cpu_ops.rows
    else:
        assert result.gpu.busy_us <= result.gpu.window_us + 1e-6
        assert result.gpu.busy_us <= result.gpu.kernel_sum_us + result.gpu.memop_sum_us + 1e-6
        assert result.kernels.total_us == pytest.approx(result.gpu.kernel_sum_us + result.gpu.memop_sum_us)
        assert sum(c.share for c in result.kernels.categories) == pytest.approx(1.0)
        gaps = result.gaps
        # no profkit ranges: the gap window is the whole trace and agrees with the GPU time view
        assert gaps.busy_us == pytest.approx(result.gpu.busy_us)
        assert gaps.busy_us + gaps.idle_us == pytest.approx(gaps.window_us)
        assert sum(c.total_us for c in gaps.by_cause) == pytest.approx(gaps.idle_us)
        assert sum(c.count for c in gaps.by_cause) == gaps.count
        assert result.view.gpu_attribution == {} and result.launches.kernels == result.gpu.kernel_count


def _raw_events(path):
    import gzip

    import orjson

    return orjson.loads(gzip.decompress(path.read_bytes()))["traceEvents"]


@pytest.mark.corpus
@pytest.mark.parametrize("name", ["a100_alexnet.json.gz", "a100_80gb_training_rank0.json.gz"])
def test_host_blocking_calls_match_a_plain_count_of_the_raw_trace(corpus, name):
    path = corpus / name
    events = _raw_events(path)
    syncs = sum(1 for e in events if e.get("cat") == "cuda_runtime" and "Synchronize" in e.get("name", ""))
    pageable = sum(1 for e in events if e.get("cat") == "gpu_memcpy" and "Pageable" in e.get("name", ""))
    result = analyze_tables(load_trace(path))
    blocking = result.blocking
    assert sum(c.count for c in blocking.calls if c.kind == "sync") == syncs
    assert blocking.pageable_copies == pageable > 0
    rules = {f.rule for f in result.findings}
    assert {"pageable_memcpy", "host_sync_calls"} <= rules


@pytest.mark.corpus
def test_real_kernel_names_get_the_right_category(corpus):
    names = {}
    for path in corpus_traces():
        names.update({n: path.name for n in dict.fromkeys(load_trace(path).kernels["name"].tolist())})

    def find(fragment):
        return next(n for n in names if fragment in n)

    assert (
        classify_kernel(find("ncclDevKernel") if any("ncclDevKernel" in n for n in names) else find("nccl"))[0]
        == "communication"
    )
    assert classify_kernel(find("triton_poi_fused"))[0] == "triton"
    assert classify_kernel(find("Cijk_"))[0] == "gemm"  # ROCm rocBLAS/Tensile GEMM
    assert classify_kernel(find("sgemm"))[0] == "gemm"
    assert classify_kernel(find("vectorized_elementwise_kernel"))[0] == "elementwise"
    assert classify_kernel(find("reduce_kernel"))[0] == "reduction"
    assert guess_precision(find("sgemm")) == "fp32"
    assert not uses_tensor_cores(find("sgemm"))


def test_taxonomy_on_diffusion_kernel_names():
    cases = {
        "void pytorch_flash::flash_fwd_kernel<Flash_fwd_kernel_traits<128, 64, 4, false, cutlass::half_t>>": (
            "attention",
            "fp16",
            True,
        ),
        "fmha_cutlassF_f16_aligned_64x64_rf_sm80": ("attention", "fp16", True),
        "sm80_xmma_fprop_implicit_gemm_f16f16_f16f32_f32_nhwckrsc_nhwc_tilesize128x128x32": (
            "convolution",
            "fp16",
            True,
        ),
        "ampere_sgemm_128x64_nn": ("gemm", "fp32", False),
        "ampere_s16816gemm_fp16_128x128_ldg8_stages_32x5_tn": ("gemm", "fp16", True),
        "void at::native::(anonymous namespace)::RowwiseMomentsCUDAKernel<float>": ("normalization", "fp32", False),
        "void at::native::(anonymous namespace)::cunn_SoftMaxForward<4, float, float, float>": (
            "softmax",
            "fp32",
            False,
        ),
    }
    for name, (category, precision, tensor_core) in cases.items():
        assert classify_kernel(name)[0] == category, name
        assert guess_precision(name) == precision, name
        assert uses_tensor_cores(name) == tensor_core, name


def _rules(builder, run=None):
    return {
        f.rule
        for f in analyze_tables(
            parse_kineto_document(builder.document(), __import__("pathlib").Path("x")),
            run=msgspec.convert(run, CaptureMetadata) if run else None,
        ).findings
    }


def test_findings_fire_only_when_their_condition_holds():
    steady = diffusion_trace(steps=6)
    assert "first_step_outlier" not in _rules(steady)
    assert "step_variance" not in _rules(steady)
    slow_first = diffusion_trace(steps=6, first_step_extra_us=3000)
    assert {"first_step_outlier", "step_variance"} <= _rules(slow_first)
    assert "low_gpu_utilization" in _rules(diffusion_trace(steps=6, kernel_fraction=0.2))
    assert "low_gpu_utilization" not in _rules(diffusion_trace(steps=6, kernel_fraction=0.9))
    busy = TraceBuilder().kernel("sgemm", 0, 10, 1000).kernel("sgemm", 5, 1010, 1000)
    assert "low_gpu_utilization" not in _rules(busy)


def test_fp32_matmul_in_a_half_precision_run_is_flagged():
    fp32_gemm = diffusion_trace(steps=3, kernel_name="ampere_sgemm_128x64_nn")
    run = {"dtype": "fp16", "device": {"type": "cuda"}}
    assert "fp32_matmul_in_half_run" in _rules(fp32_gemm, run)
    assert "fp32_matmul_in_half_run" not in _rules(fp32_gemm, {"dtype": "fp32", "device": {"type": "cuda"}})
    half_vae = "sm80_xmma_fprop_implicit_gemm_f16f16_f16f32_f32_nhwckrsc_nhwc"
    assert "fp32_matmul_in_half_run" not in _rules(diffusion_trace(steps=3, vae_kernel=half_vae), run)
    # an FP32 VAE conv in a half-precision run is exactly what the rule is for
    assert "fp32_matmul_in_half_run" in _rules(diffusion_trace(steps=3), run)


@pytest.mark.slow
def test_own_capture_analysis(captured):
    settings, outputs = captured
    result = outputs.reports[0].result
    assert result.view.has_ranges and result.gpu is None
    assert [s.step for s in result.view.steps] == list(range(settings.steps))
    assert {s.stage for s in result.view.stages} >= {"text_encoder", "denoise", "vae", "other"}
    assert result.view.total_us > 0 and sum(s.share for s in result.view.stages) == pytest.approx(1.0)
    assert result.cpu_ops.rows[0].total_us >= result.cpu_ops.rows[-1].total_us
    fp16 = outputs.reports[1].result
    assert "half_precision_on_cpu" in {f.rule for f in fp16.findings}


def _self_times_reference(cpu_ops):
    """Plain per-op definition: duration minus the overlap of every direct child (slow, obviously right).

    An op is inside another when it starts within it and comes later in (start, longest first, file order).
    """
    ops = list(cpu_ops.to_pandas().itertuples(index=False))
    result = []
    for i, op in enumerate(ops):
        inside = [
            j
            for j, other in enumerate(ops)
            if j != i
            and (other.pid, other.tid) == (op.pid, op.tid)
            and op.ts <= other.ts < op.end
            and (other.ts, -other.dur, j) > (op.ts, -op.dur, i)
        ]
        # direct children: inside ops not inside another inside op
        direct = [
            j
            for j in inside
            if not any(
                k != j
                and ops[k].ts <= ops[j].ts < ops[k].end
                and (ops[j].ts, -ops[j].dur, j) > (ops[k].ts, -ops[k].dur, k)
                for k in inside
            )
        ]
        result.append(max(op.dur - sum(min(ops[j].end, op.end) - ops[j].ts for j in direct), 0.0))
    return np.array(result)


def _random_ops(seed: int, count: int):
    """CPU ops on three threads: nested, partly overlapping, zero-length, equal starts (times on a 0.5 us grid)."""
    rng = np.random.default_rng(seed)
    ts = np.round(rng.uniform(0, 200, count) * 2) / 2
    dur = np.round(rng.exponential(20, count) * 2) / 2
    dur[rng.random(count) < 0.1] = 0.0
    ts[rng.random(count) < 0.2] = 50.0
    return build_table(
        "cpu_ops",
        {
            "name": [f"op{i}" for i in range(count)],
            "cat": ["cpu_op"] * count,
            "ts": ts.tolist(),
            "dur": dur.tolist(),
            "pid": ["1"] * count,
            "tid": rng.choice(["1", "2", "3"], count).tolist(),
            "external_id": list(range(count)),
        },
    )


@pytest.mark.parametrize("seed", range(6))
def test_cpu_self_times_of_the_range_table_and_the_stack_walk_equal_the_plain_definition(seed, monkeypatch):
    from profkit.analysis import operators

    ops = _random_ops(seed, 70)
    expected = _self_times_reference(ops)
    np.testing.assert_allclose(cpu_self_times(ops), expected, atol=1e-9)  # range-maximum table
    monkeypatch.setattr(operators, "RANGE_TABLE_MAX_OPS", 0)
    np.testing.assert_allclose(cpu_self_times(ops), expected, atol=1e-9)  # stack walk (large tables)


def test_the_range_table_finds_the_stack_walks_parents_on_many_ops():
    from profkit.analysis.operators import _parents_by_range_max, _parents_by_stack

    ops = _random_ops(99, 5000)
    order = np.lexsort((-ops["dur"], ops["ts"], ops["tid"].astype(np.int64)))
    columns = (ops["ts"][order], ops["end"][order], ops["tid"].astype(np.int64)[order])
    parents = _parents_by_stack(*columns)
    assert (parents >= 0).sum() > 2500  # nesting is exercised
    assert np.array_equal(_parents_by_range_max(*columns), parents)


@pytest.mark.corpus
@pytest.mark.parametrize("name", ["a100_alexnet.json.gz", "mi250_rocm_minitoy.json.gz", "a100_triton.json.gz"])
def test_cpu_self_times_match_the_plain_definition_on_real_traces(corpus, name):
    cpu_ops = load_trace(corpus / name).cpu_ops
    np.testing.assert_allclose(cpu_self_times(cpu_ops), _self_times_reference(cpu_ops))


def test_taxonomy_patterns_are_lower_case_so_lowercased_names_match_case_insensitively():
    from profkit.analysis import taxonomy

    patterns = [rule.pattern for rule in (*taxonomy.KERNEL_RULES, *taxonomy.CPU_OP_RULES)]
    patterns += [taxonomy.TENSOR_CORE_PATTERN, *(pattern for _, pattern in taxonomy.PRECISION_RULES)]
    assert all(pattern == pattern.lower() for pattern in patterns)
    assert classify_kernel("VOLTA_SGEMM_128X64_NN") == classify_kernel("volta_sgemm_128x64_nn") == ("gemm", "gemm")
    assert guess_precision("Kernel<FLOAT>") == "fp32" and uses_tensor_cores("SM90_XMMA_GEMM")


def test_union_length_is_the_length_of_the_merged_blocks() -> None:
    rng = np.random.default_rng(7)
    for size in (1, 2, 3, 50, 5000):
        starts = rng.uniform(0, 1000, size)
        ends = starts + rng.exponential(5, size) * (rng.random(size) > 0.1)  # some of zero length, many nested
        merged_starts, merged_ends = merge(starts, ends)
        assert union_length(starts, ends) == pytest.approx(float(np.sum(merged_ends - merged_starts)), rel=1e-12)
    assert union_length(np.zeros(0), np.zeros(0)) == 0.0


def test_breakdowns_equal_pandas_groupby_with_missing_names_and_ties() -> None:
    """Kernel/operator rows, categories and the stage mix hold what pandas' groupby gives (rows without a name or
    stage left out), largest first, ties in order of first appearance."""
    import pandas as pd

    from profkit.analysis.operators import _categories, _rows, stage_mix
    from profkit.parsers.tables import Table

    rng = np.random.default_rng(7)
    size = 5000
    names = rng.choice(np.array(["gemm_a", "conv_b", "add_c", "softmax_d", "copy_e"], dtype=object), size)
    names[rng.random(size) < 0.05] = None
    frame = pd.DataFrame(
        {
            "name": names,
            "time": rng.integers(1, 50, size).astype(np.float64),
            "category": rng.choice(np.array(["gemm", "conv", "elementwise"], dtype=object), size),
            "tensor_core": rng.random(size) < 0.3,
            "precision": "fp16",
        }
    )
    frame.loc[frame["name"] == "softmax_d", "time"] = 0.0  # ties at zero
    frame.loc[frame["name"] == "copy_e", "time"] = 0.0
    total = float(frame["time"].sum())
    reference = frame.groupby("name", sort=False).agg(
        count=("time", "size"),
        total=("time", "sum"),
        low=("time", "min"),
        high=("time", "max"),
        first=("category", "first"),
    )
    reference = reference.iloc[np.argsort(-reference["total"].to_numpy(), kind="stable")]
    table = Table({column: frame[column].to_numpy() for column in frame.columns})
    rows = _rows(table, total, 25, True)
    assert [row.name for row in rows] == list(reference.index)
    assert [row.name for row in rows][-2:] == [
        n for n in pd.unique(frame["name"].dropna()) if n in ("softmax_d", "copy_e")
    ]
    for row, (_, expected) in zip(rows, reference.iterrows(), strict=True):
        assert (row.count, row.category) == (expected["count"], expected["first"])
        assert (row.total_us, row.min_us, row.max_us) == pytest.approx(
            (expected["total"], expected["low"], expected["high"])
        )
        assert row.mean_us == pytest.approx(expected["total"] / expected["count"])
        assert row.share == pytest.approx(expected["total"] / total)
    assert len(_rows(table, total, 2, True)) == 2

    categories = {row.category: row for row in _categories(table, total, True)}
    for category, group in frame.groupby("category"):
        assert categories[category].count == len(group)
        assert categories[category].total_us == pytest.approx(group["time"].sum())
        assert categories[category].tensor_core_us == pytest.approx(group.loc[group["tensor_core"], "time"].sum())

    stages = rng.choice(np.array(["", "denoise", "vae"], dtype=object), size)
    mix = stage_mix(stages, frame["category"].to_numpy(), frame["time"].to_numpy(), frame["tensor_core"].to_numpy())
    expected_mix = (
        frame.assign(stage=np.where(stages == "", "outside pipeline", stages))
        .groupby(["stage", "category"])["time"]
        .agg(["size", "sum"])
    )
    assert len(mix) == len(expected_mix)
    assert [m.total_us for m in mix] == sorted((m.total_us for m in mix), reverse=True)
    for m in mix:
        assert (m.count, m.total_us) == pytest.approx(tuple(expected_mix.loc[(m.stage, m.category)]))
