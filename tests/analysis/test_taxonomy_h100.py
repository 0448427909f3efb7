"""Kernel taxonomy on current GPUs: every kernel of the real H100 captures gets a category (issue 11, point 3)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from profkit.analysis.taxonomy import classify_cpu_op, classify_kernel, guess_precision, uses_tensor_cores
from profkit.parsers import load_trace
from tests.conftest import REPO

H100 = Path(os.environ.get("PROFKIT_CORPUS", REPO.parent / "shared" / "corpus")) / "h100"

#: Kernel names of the h100 captures that truly are none of the categories (none so far).
TRULY_OTHER: set[str] = set()


@pytest.fixture(scope="module")
def h100_kernel_names() -> set[str]:
    traces = sorted(H100.glob("*/trace.json.gz"))
    if not traces:
        if os.environ.get("CI") == "true":
            pytest.fail(f"real H100 captures not found at {H100} (set PROFKIT_CORPUS)")
        pytest.skip(f"real H100 captures not found at {H100}")
    names: set[str] = set()
    for trace in traces:
        names |= set(load_trace(trace).kernels["name"])
    return names


def test_every_h100_kernel_has_a_category(h100_kernel_names: set[str]) -> None:
    other = {name for name in h100_kernel_names if classify_kernel(name)[0] == "other"}
    assert other == TRULY_OTHER


def test_hopper_and_compiled_kernels_are_named_right(h100_kernel_names: set[str]) -> None:
    nvjet = [name for name in h100_kernel_names if name.startswith("nvjet_sm90_hsh")]
    assert nvjet and all(classify_kernel(n) == ("gemm", "gemm") for n in nvjet)
    assert all(uses_tensor_cores(n) and guess_precision(n) == "fp16" for n in nvjet)
    layout = [name for name in h100_kernel_names if "nchwToNhwc" in name or "nhwcToNchw" in name]
    assert layout and {classify_kernel(n) for n in layout} == {("layout", "cudnn_layout")}
    fused_sdpa = [name for name in h100_kernel_names if name.startswith("triton_poi_fused__scaled_dot_product")]
    assert fused_sdpa and {classify_kernel(n) for n in fused_sdpa} == {("triton", "pointwise")}
    assert not any(uses_tensor_cores(n) for n in fused_sdpa)


def test_fp32_kernels_are_not_on_tensor_cores(h100_kernel_names: set[str]) -> None:
    ffma = [name for name in h100_kernel_names if "_ffma_" in name]
    fmha_f32 = [name for name in h100_kernel_names if name.startswith("fmha_cutlassF_f32")]
    assert ffma and fmha_f32
    assert not any(uses_tensor_cores(n) for n in ffma + fmha_f32)
    assert {classify_kernel(n) for n in fmha_f32} == {("attention", "memory_efficient")}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("triton_red_fused_native_group_norm_3", ("triton", "reduction", False)),
        ("triton_per_fused_native_layer_norm_7", ("triton", "persistent", False)),
        ("triton_tem_fused_flex_attention_0", ("attention", "triton", False)),
        ("nvjet_sm90_sss_64x64_64x4_1x1_v_bz_TNN", ("gemm", "gemm", False)),
        ("nvjet_sm90_tst_128x128_32x4_1x1_v_bz_TNN", ("gemm", "gemm", True)),
    ],
)
def test_compiled_and_cublas_name_families(name: str, expected: tuple[str, str, bool]) -> None:
    assert (*classify_kernel(name), uses_tensor_cores(name)) == expected


def test_item_is_a_host_sync_not_elementwise() -> None:
    assert classify_cpu_op("aten::_local_scalar_dense") == ("sync", "item")
    assert classify_cpu_op("aten::item") == ("sync", "item")
    assert classify_cpu_op("aten::add") == ("elementwise", "elementwise")
