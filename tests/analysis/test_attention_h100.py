"""Attention diagnosis per stage on the real H100 captures (issue 11, point 5), checked against the raw events."""

from __future__ import annotations

import pytest

from profkit.analysis.attention import FIX_SPEEDUP
from profkit.report import analysis_html
from tests.analysis.h100raw import COMPILED, DIT, FP16, FP32, analyzed, raw


def _stage(name: str, stage: str):
    return next(row for row in analyzed(name).attention if row.stage == stage)


def _in_stage(name: str, stage: str, items: list[dict], by_launch: bool = True) -> list[dict]:
    """Items launched (GPU work) or run (CPU ops) inside the ``profkit/<stage>/...`` top-level ranges."""
    events = raw(name)
    ranges = [r for r in events.ranges if r["name"].startswith(f"profkit/{stage}/") and r["name"].count("/") == 2]
    found = []
    for item in items:
        launch = events.launches.get(item["args"].get("correlation", -1)) if by_launch else item
        if launch is not None and any(r["ts"] <= launch["ts"] <= r["ts"] + r["dur"] for r in ranges):
            found.append(item)
    return found


@pytest.mark.parametrize("name", [FP32, DIT])
def test_fp32_attention_is_the_memory_efficient_kernel_and_says_why(name: str) -> None:
    events = raw(name)
    fmha = [k for k in events.work if k["name"].startswith("fmha_cutlassF_f32")]
    assert sum(row.attention_us for row in analyzed(name).attention) == pytest.approx(sum(k["dur"] for k in fmha))
    denoise = _stage(name, "denoise")
    mine = _in_stage(name, "denoise", fmha)
    assert denoise.implementation == "memory_efficient" and denoise.dtype == "fp32"
    assert denoise.kernel.startswith("fmha_cutlassF_f32") and denoise.kernel_calls == len(mine)
    assert denoise.attention_us == pytest.approx(sum(k["dur"] for k in mine), abs=0.01)
    ops = _in_stage(name, "denoise", events.cpu_ops, by_launch=False)
    efficient = [op for op in ops if op["name"] == "aten::_scaled_dot_product_efficient_attention"]
    assert denoise.backend_ops == {"memory_efficient": len(efficient)}
    assert "fp32" in denoise.reason and "fp16" in denoise.fix
    finding = next(f for f in analyzed(name).findings if f.rule == "attention_not_flash" and f.scope == "denoise")
    assert finding.labels["kernel_name"].startswith("fmha_cutlassF_f32") and "fmha_cutlassF_f32" in finding.evidence
    assert "memory-efficient" in finding.title and "dtype fp32" in finding.evidence
    expected_ms = sum(k["dur"] for k in mine) * (1 - 1 / FIX_SPEEDUP["fp32"]) / 1000
    assert finding.impact.recoverable_ms == pytest.approx(expected_ms, abs=1e-5)
    assert "estimate" in finding.impact.method


def test_fp16_attention_is_flash_in_the_unet_and_cudnn_elsewhere() -> None:
    events = raw(FP16)
    assert _stage(FP16, "denoise").implementation == "flash"
    assert {_stage(FP16, s).implementation for s in ("text_encoder", "vae")} == {"cudnn"}
    flash_ops = [op for op in events.cpu_ops if op["name"] == "aten::_scaled_dot_product_flash_attention"]
    assert _stage(FP16, "denoise").backend_ops.get("flash") == len(_in_stage(FP16, "denoise", flash_ops, False))
    assert all(not row.reason for row in analyzed(FP16).attention)
    assert "attention_not_flash" not in {f.rule for f in analyzed(FP16).findings}


def test_compiled_graph_replays_still_show_flash_and_the_fused_triton_kernel_is_not_attention() -> None:
    denoise = _stage(COMPILED, "denoise")
    assert denoise.implementation == "flash" and "flash_fwd" in denoise.kernel
    work = raw(COMPILED).work
    flash = _in_stage(COMPILED, "denoise", [k for k in work if k["name"] == denoise.kernel])
    cudnn = [k for k in work if k["name"].startswith("cudnn_generated_fort_native_sdpa")]
    cudnn = _in_stage(COMPILED, "denoise", cudnn)
    assert denoise.kernel_calls == len(flash) == 60  # replayed by the graphs, counted in the launching steps
    assert denoise.implementations == {
        "flash": pytest.approx(sum(k["dur"] for k in flash)),
        "cudnn": pytest.approx(sum(k["dur"] for k in cudnn)),
    }
    assert not any("triton" in name for name in denoise.implementations)


def test_attention_table_in_the_report() -> None:
    html = analysis_html(analyzed(FP32))
    assert "Attention by stage" in html and "fmha_cutlassF_f32" in html and "dtype fp32" in html
