"""Optimization knobs on capture: the grid, the checks before any work, applying them to a real pipeline, the
metadata and run names, the isolate-variables warning of the comparisons, and stage memory at range boundaries."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from profkit.app.capture import capture_and_report, run_capture
from profkit.capture.instrument import StageMemoryTracker
from profkit.capture.knobs import check_knobs, scheduler_class, switch_values
from profkit.capture.nsys.child import settings_from
from profkit.capture.settings import CaptureSettings
from profkit.errors import SettingError
from profkit.model.capture import NOT_CAPTURED_CPU, CaptureMetadata, KnobGrid, Knobs
from profkit.model.compat import isolation_warning, settings_differences
from tests.conftest import run_cli

TINY = {"steps": 2, "height": 32, "width": 32, "warmup": 1, "device": "cpu"}

# ---------------------------------------------------------------- the grid and its checks


def test_the_grid_is_the_cartesian_product_and_only_changed_knobs_name_a_run() -> None:
    grid = KnobGrid(attention=("math", "flash"), quantize=("off", "int8-weight")).validate()
    combos = grid.combinations()
    assert [(k.attention, k.quantize) for k in combos] == [
        ("math", "off"),
        ("math", "int8-weight"),
        ("flash", "off"),
        ("flash", "int8-weight"),
    ]
    assert [k.tag for k in combos] == ["attn-math", "attn-math_q-int8-weight", "attn-flash", "attn-flash_q-int8-weight"]
    assert Knobs().tag == "" and Knobs(channels_last=True, tf32=True).tag == "cl_tf32"
    assert grid.varied == ["attention", "quantize"]
    settings = CaptureSettings(dtypes=("fp32", "fp16"), steps_list=(2, 4), grid=grid, **TINY).validate()
    variants = settings.variants()
    assert len(variants) == 2 * 2 * 4 and [d for d, _ in variants[:8]] == ["fp32"] * 8
    names = [run.run_name(dtype) for dtype, run in variants]
    assert len(set(names)) == len(names)  # every output is unique
    assert names[0] == "tiny-sd_fp32_2steps_32x32_b1_attn-math"
    assert CaptureSettings(**TINY).run_name("fp32") == "tiny-sd_fp32_2steps_32x32_b1"  # no knob: the old name


@pytest.mark.parametrize(
    ("grid", "setting"),
    [
        (KnobGrid(compile=("fast",)), "compile"),
        (KnobGrid(attention=("sdpa",)), "attention"),
        (KnobGrid(quantize=("int4",)), "quantize"),
        (KnobGrid(attention=("math", "math")), "attention"),
        (KnobGrid(tf32=()), "tf32"),
    ],
)
def test_bad_knob_values_name_their_knob(grid: KnobGrid, setting: str) -> None:
    with pytest.raises(SettingError) as error:
        grid.validate()
    assert error.value.setting == setting


def test_switches_and_scheduler_names() -> None:
    assert switch_values("off,on", "tf32") == (False, True) and switch_values("yes", "tf32") == (True,)
    with pytest.raises(SettingError, match="on, off"):
        switch_values("maybe", "tf32")
    assert scheduler_class("euler_discrete").__name__ == "EulerDiscreteScheduler"
    assert scheduler_class("DDIMScheduler").__name__ == "DDIMScheduler"
    with pytest.raises(SettingError, match="not a diffusers scheduler"):
        scheduler_class("NoSuchScheduler")


@pytest.mark.parametrize(
    ("knobs", "warmup", "message"),
    [
        (Knobs(attention="efficient"), 1, "efficient needs a CUDA device"),
        (Knobs(attention="cudnn"), 1, "cudnn needs a CUDA device"),
        (Knobs(quantize="fp8"), 1, "compute capability 8.9"),
        (Knobs(cpu_offload=True), 1, "needs a CUDA device"),
        (Knobs(scheduler="Nope"), 1, "not a diffusers scheduler"),
        (Knobs(compile="default"), 0, "the first call compiles"),
    ],
)
def test_what_a_cpu_cannot_do_is_refused_before_any_work(knobs: Knobs, warmup: int, message: str) -> None:
    with pytest.raises(SettingError, match=message):
        check_knobs([Knobs(), knobs], "cpu", warmup)
    check_knobs([Knobs(attention="math"), Knobs(attention="flash"), Knobs(quantize="int8-weight")], "cpu", 1)


def test_flash_attention_on_cuda_needs_half_precision() -> None:
    from profkit.cli.errors import error_line

    with pytest.raises(SettingError) as error:
        check_knobs([Knobs(attention="flash")], "cuda", 1, ("fp16", "fp32"))
    assert error_line(error.value) == (
        "profkit: error: --attention flash on CUDA needs --dtype fp16 or bf16 (torch has no fp32 kernel for it)"
    )
    check_knobs([Knobs(attention="flash")], "cuda", 1, ("fp16", "bf16"))


def test_quantize_without_torchao_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torchao" else real(name, *a))
    with pytest.raises(SettingError, match="needs torchao, which is not installed"):
        check_knobs([Knobs(quantize="int8-weight")], "cpu", 1)


@pytest.mark.slow
def test_the_cli_refuses_an_impossible_knob_with_one_line(tmp_path: Path) -> None:
    result = run_cli("capture", "--device", "cpu", "--attention", "math,efficient", "--out", str(tmp_path / "r"))
    assert result.returncode == 2 and not (tmp_path / "r").exists()
    assert result.stderr.strip().splitlines()[-1].startswith("profkit: error: --attention efficient needs a CUDA")
    assert "Traceback" not in result.stderr
    result = run_cli("bench", "--device", "cpu", "--quantize", "fp8", "--out", str(tmp_path / "b"))
    assert result.returncode == 2 and "profkit: error: --quantize fp8 needs" in result.stderr


# ---------------------------------------------------------------- stage memory at range boundaries


def test_stage_memory_is_read_and_reset_at_every_boundary_and_the_overall_peak_kept() -> None:
    """A stand-in allocator: ``allocated`` is what each stage pushes the peak to before the next boundary."""
    peak = {"value": 0}
    tracker = StageMemoryTracker(lambda: peak["value"], lambda: peak.update(value=0), source="stand-in")
    mib = 2**20

    def run(stage_peaks: list[tuple[str, bool, int]]) -> None:
        for name, opened, allocated in stage_peaks:
            tracker(name, opened)
            peak["value"] = allocated  # what runs until the next range event

    run(
        [
            ("profkit/pipeline", True, 10 * mib),
            ("profkit/text_encoder/text_encoder", True, 300 * mib),
            ("profkit/text_encoder/text_encoder", False, 20 * mib),
            ("profkit/denoise/step_0", True, 900 * mib),
            ("profkit/denoise/step_0/unet", True, 1500 * mib),
            ("profkit/denoise/step_0/unet", False, 800 * mib),
            ("profkit/denoise/step_0", False, 50 * mib),
            ("profkit/vae/decode", True, 2000 * mib),
            ("profkit/vae/decode", False, 5 * mib),
            ("profkit/pipeline", False, 0),
        ]
    )
    assert tracker.peaks_mb() == {"other": 50.0, "text_encoders": 300.0, "denoise": 1500.0, "vae": 2000.0}
    assert tracker.overall_mb() == 2000.0
    tracker("profkit/pipeline", True)  # the next call starts afresh
    assert tracker.peaks_mb() == {"other": 0.0}
    assert StageMemoryTracker.for_device("cpu") is None  # no device memory counter on a CPU


# ---------------------------------------------------------------- real captures


@pytest.fixture(scope="module")
def scheduler_steps_runs(tmp_path_factory: pytest.TempPathFactory):
    """dtype fp32 x steps 2,3 x scheduler default,Euler: four runs, analyzed and compared with the first."""
    out = tmp_path_factory.mktemp("knobs")
    settings = CaptureSettings(
        **{**TINY, "steps": 2},
        steps_list=(2, 3),
        grid=KnobGrid(scheduler=(None, "EulerDiscreteScheduler")),
        out=out,
    )
    return capture_and_report(settings)


@pytest.mark.slow
def test_a_capture_per_scheduler_and_steps_records_them(scheduler_steps_runs) -> None:
    runs = scheduler_steps_runs.runs
    assert [run.folder.name for run in runs] == [
        "tiny-sd_fp32_2steps_32x32_b1",
        "tiny-sd_fp32_2steps_32x32_b1_sched-EulerDiscreteScheduler",
        "tiny-sd_fp32_3steps_32x32_b1",
        "tiny-sd_fp32_3steps_32x32_b1_sched-EulerDiscreteScheduler",
    ]
    for run, (steps, scheduler) in zip(runs, [(2, None), (2, "Euler"), (3, None), (3, "Euler")], strict=True):
        metadata = CaptureMetadata.load(run.metadata)
        assert metadata.settings.steps == steps
        assert metadata.settings.knobs == (Knobs(scheduler="EulerDiscreteScheduler") if scheduler else Knobs())
        assert metadata.memory is not None and metadata.memory.source == NOT_CAPTURED_CPU
        assert metadata.memory.peak_allocated_mb == {}
        assert metadata.timing_seconds.compile_seconds is None
    assert "sched-EulerDiscreteScheduler" in CaptureMetadata.load(runs[1].metadata).label


@pytest.mark.slow
def test_comparisons_list_what_differs_and_warn_when_more_than_one_does(scheduler_steps_runs) -> None:
    comparisons = [c.comparison for c in scheduler_steps_runs.comparisons]
    assert len(comparisons) == 3
    one, two, three = comparisons
    assert [key for key, _, _ in one.setting_differences] == ["knob.scheduler"]
    assert [key for key, _, _ in two.setting_differences] == ["steps"]
    assert [key for key, _, _ in three.setting_differences] == ["knob.scheduler", "steps"]
    assert not any("settings differ" in note for note in one.notes + two.notes)
    assert any("2 settings differ between A and B (knob.scheduler, steps)" in note for note in three.notes)
    html = scheduler_steps_runs.comparisons[2].html.read_text()
    assert "2 settings differ" in html and "knob.scheduler" in html
    names = {c.html.name for c in scheduler_steps_runs.comparisons}
    assert len(names) == 3  # each comparison has its own file


def test_settings_differences_flatten_the_knobs() -> None:
    def metadata(knobs: Knobs, dtype: str = "fp32") -> CaptureMetadata:
        from profkit.model.capture import DeviceInfo, RunSettings

        settings = RunSettings(model="tiny-sd", steps=2, height=32, width=32, knobs=knobs)
        return CaptureMetadata(device=DeviceInfo(type="cpu"), dtype=dtype, settings=settings)

    a, b = metadata(Knobs()), metadata(Knobs(compile="default"), "fp16")
    differences = settings_differences(a, b)
    assert differences == [("dtype", "fp32", "fp16"), ("knob.compile", "off", "default")]
    assert "2 settings differ" in isolation_warning(differences)
    assert isolation_warning(differences[:1]) is None
    assert settings_differences(a, a) == []


@pytest.mark.slow
def test_attention_math_and_flash_and_int8_weight_only_on_cpu(tmp_path: Path) -> None:
    settings = CaptureSettings(
        **TINY, grid=KnobGrid(attention=("math", "flash"), quantize=("off", "int8-weight")), out=tmp_path
    )
    runs = run_capture(settings)
    assert len(runs) == 4
    knobs = [CaptureMetadata.load(run.metadata).settings.knobs for run in runs]
    assert knobs == [
        Knobs(attention="math"),
        Knobs(attention="math", quantize="int8-weight"),
        Knobs(attention="flash"),
        Knobs(attention="flash", quantize="int8-weight"),
    ]
    assert all(run.images for run in runs)


@pytest.mark.slow
def test_compile_time_is_recorded_apart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """torch.compile with Dynamo's eager backend: the real tracing and guards, without Inductor's minute of C++
    code generation on a CPU (a test-time stand-in for the compiler backend only)."""
    import torch

    modes = []
    real_compile = torch.compile

    def compile_eager(model, *, mode=None, **kwargs):
        modes.append(mode)
        return real_compile(model, backend="eager")

    monkeypatch.setattr(torch, "compile", compile_eager)
    runs = run_capture(CaptureSettings(**TINY, grid=KnobGrid(compile=("reduce-overhead",)), out=tmp_path))
    metadata = CaptureMetadata.load(runs[0].metadata)
    assert modes == ["reduce-overhead"]  # the denoiser, once
    assert metadata.settings.knobs == Knobs(compile="reduce-overhead")
    assert runs[0].folder.name.endswith("_compile-reduce-overhead")
    assert metadata.timing_seconds.compile_seconds == metadata.timing_seconds.warmup_calls[0]


def test_run_settings_travel_to_the_nsys_child_with_their_knobs(tmp_path: Path) -> None:
    settings = CaptureSettings(**TINY, out=tmp_path, knobs=Knobs(attention="math", tf32=True))
    back = settings_from(settings.as_dict())
    assert back.knobs == settings.knobs and back.run_name("fp32") == settings.run_name("fp32")
