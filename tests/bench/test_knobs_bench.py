"""Optimization knobs on bench: configurations dtype x knobs x steps x batch, run interleaved, each recorded in the
result; compile time apart; what differs between configurations and the isolate-variables warning."""

from __future__ import annotations

from pathlib import Path

import pytest

from profkit.analysis.bench.summary import isolation, summarize_bench
from profkit.app.bench import CostOptions, GateOptions, bench, default_out_dir, load_result
from profkit.capture.bench.runner import BenchSettings, run_bench, validate_settings
from profkit.errors import SettingError
from profkit.model.bench import BenchResult
from profkit.model.capture import KnobGrid, Knobs
from tests.conftest import run_cli

TINY = {"steps": 2, "height": 32, "width": 32, "warmup": 1, "trials": 2, "device": "cpu", "batches": (1,)}


@pytest.fixture(scope="module")
def attention_steps(tmp_path_factory: pytest.TempPathFactory):
    """attention math,flash x steps 2,3: four configurations, written and loaded back."""
    out = tmp_path_factory.mktemp("bench-knobs") / "run"
    settings = BenchSettings(**TINY, steps_list=(2, 3), grid=KnobGrid(attention=("math", "flash")))
    outputs = bench(settings, out, CostOptions(), GateOptions(), force=False)
    return out, outputs


NAMES = [
    "fp32 b1 2steps attn-math",
    "fp32 b1 3steps attn-math",
    "fp32 b1 2steps attn-flash",
    "fp32 b1 3steps attn-flash",
]


@pytest.mark.slow
def test_every_configuration_runs_interleaved_with_its_knobs_recorded(attention_steps) -> None:
    out, _ = attention_steps
    result = load_result(out / "bench.json")
    assert [c.name for c in result.configs] == NAMES
    assert list(result.order) == NAMES * 2  # A B C D A B C D: rounds
    for config, (steps, attention) in zip(
        result.configs, [(2, "math"), (3, "math"), (2, "flash"), (3, "flash")], strict=True
    ):
        assert config.steps == steps and config.knobs == Knobs(attention=attention)
        assert all(t.ok and len(t.steps_ms) == steps for t in config.trials)
        assert config.compile_s is None and config.batch_search == ()
    assert result.settings.grid.attention == ("math", "flash") and result.settings.steps_list == (2, 3)
    assert BenchResult.from_json(result.to_json()) == result


@pytest.mark.slow
def test_what_differs_is_listed_and_two_differences_warn(attention_steps) -> None:
    out, outputs = attention_steps
    configs = {c.name: c for c in outputs.summary.configs}
    assert configs[NAMES[0]].differs_from_first == ()
    assert configs[NAMES[1]].differs_from_first == ("steps: 2 vs 3",)
    assert configs[NAMES[2]].differs_from_first == ("knob.attention: math vs flash",)
    assert configs[NAMES[3]].differs_from_first == ("knob.attention: math vs flash", "steps: 2 vs 3")
    warnings = [w for w in outputs.summary.warnings if "settings differ" in w]
    assert warnings == [
        f"2 settings differ between {NAMES[0]} and {NAMES[3]} (knob.attention, steps): a difference in speed cannot "
        "be put on any one of them; vary one setting at a time"
    ]
    html = (out / "bench.html").read_text()
    assert 'id="knobs"' in html and "attention=flash" in html and "× attention math, flash" in html
    assert "Peak device memory per stage" in html and "not captured (a CPU has no device memory counter)" in html
    # the batch sweep groups a configuration by everything but its batch
    assert [row.dtype for row in outputs.summary.sweep] == [
        "fp32 2steps attn-math",
        "fp32 3steps attn-math",
        "fp32 2steps attn-flash",
        "fp32 3steps attn-flash",
    ]


@pytest.mark.slow
def test_scheduler_and_int8_weight_only_bench() -> None:
    settings = BenchSettings(
        **{**TINY, "trials": 1},
        grid=KnobGrid(scheduler=("DPMSolverMultistepScheduler",), quantize=("int8-weight",)),
    )
    (config,) = run_bench(settings).configs
    assert config.name == "fp32 b1 sched-DPMSolverMultistepScheduler_q-int8-weight"
    assert config.knobs == Knobs(scheduler="DPMSolverMultistepScheduler", quantize="int8-weight")
    assert config.error is None and config.trials[0].ok


@pytest.mark.slow
def test_compile_time_is_apart_from_the_steady_state(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dynamo with its eager backend stands in for Inductor (a minute of C++ generation on a CPU)."""
    import torch

    real_compile = torch.compile
    monkeypatch.setattr(torch, "compile", lambda model, *, mode=None, **kw: real_compile(model, backend="eager"))
    result = run_bench(BenchSettings(**{**TINY, "trials": 2}, grid=KnobGrid(compile=("off", "default"))))
    off, compiled = result.configs
    assert off.compile_s is None and compiled.compile_s == compiled.warmup_s[0] == compiled.cold_call_s
    assert compiled.name == "fp32 b1 compile-default" and all(t.ok for t in compiled.trials)
    summary = summarize_bench(result)
    assert summary.configs[1].compile_s == compiled.compile_s
    assert summary.configs[1].metrics["e2e_ms"].count == 2  # the compiling call is not a trial


def test_settings_names_and_refusals() -> None:
    settings = BenchSettings(**TINY, grid=KnobGrid(compile=("off", "max-autotune"), channels_last=(True,)))
    assert [k.name for k in settings.configs()] == ["fp32 b1 cl", "fp32 b1 compile-max-autotune_cl"]
    assert default_out_dir(settings).name == "tiny-sd_fp32_2steps_32x32_b1_cl-compile-max-autotune_cl"
    with pytest.raises(SettingError, match="lists a number twice"):
        validate_settings(BenchSettings(**TINY, steps_list=(2, 2)))
    with pytest.raises(SettingError, match="takes off, default"):
        validate_settings(BenchSettings(**TINY, grid=KnobGrid(compile=("turbo",))))
    with pytest.raises(SettingError, match="efficient needs a CUDA device"):
        run_bench(BenchSettings(**TINY, grid=KnobGrid(attention=("efficient",))))


def test_isolation_is_per_batch_and_old_results_list_nothing() -> None:
    from tests.benchbuilder import bench_result

    result = bench_result()  # fp32 at batch 1 and 2, written before knobs: no steps recorded per configuration
    differences, warnings = isolation(result.configs)
    assert differences == {} and warnings == []


@pytest.mark.slow
def test_bench_cli_with_knobs(tmp_path: Path) -> None:
    out = tmp_path / "b"
    result = run_cli(
        "bench", "--device", "cpu", "--steps", "2", "--height", "32", "--width", "32", "--trials", "1",
        "--attention", "math,flash", "--tf32", "on", "--out", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    stored = load_result(out / "bench.json")
    assert [c.knobs for c in stored.configs] == [
        Knobs(attention="math", tf32=True),
        Knobs(attention="flash", tf32=True),
    ]
