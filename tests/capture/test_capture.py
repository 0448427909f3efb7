"""Real captures of the built-in pipeline: trace ranges, metadata, images, --model PATH, overwrite rules."""

from __future__ import annotations

import gzip

import orjson
import pytest

from profkit.app.capture import run_capture
from profkit.capture import CaptureSettings
from profkit.errors import ProfkitError
from profkit.model.capture import CaptureMetadata

pytestmark = pytest.mark.slow


def _ranges(trace_path):
    events = orjson.loads(gzip.decompress(trace_path.read_bytes()))["traceEvents"]
    return sorted((e for e in events if e.get("cat") == "user_annotation"), key=lambda e: e["ts"])


def test_trace_holds_exactly_the_requested_steps_in_order(captured):
    settings, outputs = captured
    for run in outputs.runs:
        ranges = _ranges(run.trace)
        names = [e["name"] for e in ranges]
        step_names = [n for n in names if n.startswith("profkit/denoise/step_") and n.count("/") == 2]
        assert step_names == [f"profkit/denoise/step_{i:03d}" for i in range(settings.steps)]
        assert names.count("profkit/pipeline") == 1
        assert "profkit/text_encoder/text_encoder" in names
        assert names.count("profkit/vae/decode") == 1
        assert sum(1 for n in names if n.endswith("/unet")) == settings.steps
        assert sum(1 for n in names if n.endswith("/scheduler")) == settings.steps
        pipeline = next(e for e in ranges if e["name"] == "profkit/pipeline")
        for e in ranges:  # every range nests inside the pipeline call
            assert pipeline["ts"] <= e["ts"] and e["ts"] + e["dur"] <= pipeline["ts"] + pipeline["dur"] + 1


def test_metadata_records_versions_settings_and_precision(captured):
    settings, outputs = captured
    for run in outputs.runs:
        meta = orjson.loads(run.metadata.read_bytes())
        assert meta["schema_version"] == 1 and meta["kind"] == "profkit.capture"
        assert meta["dtype"] == run.dtype
        for key in ("profkit", "torch", "diffusers", "python"):
            assert meta["environment"][key]
        assert meta["device"]["type"] == "cpu" and meta["device"]["name"]
        assert meta["settings"]["steps"] == settings.steps and meta["seed"] == 7
        assert meta["settings"]["prompts"] == list(settings.prompts)
        assert "cuda_matmul_allow_tf32" in meta["precision"]
        assert any(key.startswith("unet:") for key in meta["attention_processors"])
        assert len(meta["timing_seconds"]["warmup_calls"]) == settings.warmup
        assert meta["files"]["trace"] == "trace.json.gz"
    fp16 = orjson.loads(outputs.runs[1].metadata.read_bytes())
    assert any("fp16 on CPU" in note for note in fp16["notes"])


def test_profiler_distortion_is_measured_against_an_unprofiled_call(captured):
    _, outputs = captured
    for run in outputs.runs:
        timing = CaptureMetadata.load(run.metadata).timing_seconds
        assert timing.unprofiled_call and timing.recorded_call_under_profiler
        overhead = timing.recorded_call_under_profiler / timing.unprofiled_call - 1
        assert timing.profiler_overhead == pytest.approx(overhead)
        note = next(n for n in CaptureMetadata.load(run.metadata).notes if n.startswith("the profiled call took"))
        assert f"{timing.unprofiled_call * 1000:.1f} ms" in note and f"{overhead:+.1%}" in note


def test_images_are_written(captured):
    _, outputs = captured
    for run in outputs.runs:
        assert len(run.images) == 1 and run.images[0].stat().st_size > 0


def test_existing_run_folder_is_not_overwritten_without_force(captured):
    settings, _ = captured
    with pytest.raises(ProfkitError, match="already exists"):
        run_capture(settings)


def test_model_path_loads_a_saved_pipeline(tmp_path):
    from profkit.pipelines import load_pipeline

    saved = tmp_path / "saved-pipeline"
    load_pipeline("tiny-sd").pipeline.save_pretrained(saved)
    settings = CaptureSettings(model=str(saved), steps=2, warmup=0, out=tmp_path / "runs", device="cpu")
    (run,) = run_capture(settings)
    meta = orjson.loads(run.metadata.read_bytes())
    assert meta["model_source"] == "folder" and meta["pipeline_class"] == "StableDiffusionPipeline"
    assert run.folder.name == "saved-pipeline_fp32_2steps_64x64_b1"
    assert sum(1 for e in _ranges(run.trace) if e["name"].endswith("/unet")) == 2


def test_model_path_loads_without_library_chatter(tmp_path):
    """A local folder loads in a fresh process with nothing on stderr from diffusers, transformers or torchao."""
    from profkit.pipelines import load_pipeline
    from tests.conftest import run_cli

    saved = tmp_path / "saved"
    load_pipeline("tiny-sd").pipeline.save_pretrained(saved)
    done = run_cli(
        "capture",
        "--model",
        str(saved),
        "--steps",
        "1",
        "--height",
        "32",
        "--width",
        "32",
        "--no-analyze",
        "--out",
        str(tmp_path / "runs"),
        "--device",
        "cpu",
    )
    assert done.returncode == 0, done.stderr
    for chatter in (
        "FutureWarning",
        "torch_dtype",
        "Failed to load",
        "Loading pipeline components",
        "Loading weights",
        "register_constant",
        "Traceback",
    ):
        assert chatter not in done.stderr + done.stdout


def test_model_path_that_is_not_a_pipeline_is_one_clear_error(tmp_path):
    settings = CaptureSettings(model=str(tmp_path), steps=2, warmup=0, out=tmp_path / "runs", device="cpu")
    with pytest.raises(ProfkitError, match="not a diffusers pipeline folder"):
        run_capture(settings)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"steps": 0}, "steps must be at least 1"),
        ({"height": 50}, "multiples of 8"),
        ({"batch": 0}, "batch must be at least 1"),
        ({"dtypes": ("fp64",)}, "unknown dtype"),
        ({"warmup": -1}, "warmup cannot be negative"),
        ({"prompts": ("  ",)}, "no prompt"),
    ],
)
def test_impossible_settings_are_refused(tmp_path, changes, message):
    with pytest.raises(ProfkitError, match=message):
        CaptureSettings(out=tmp_path, **changes).validate()


def test_batch_cycles_prompts():
    settings = CaptureSettings(prompts=("a", "b"), batch=3)
    assert settings.batch_prompts() == ["a", "b", "a"]


def test_progress_counts_the_recorded_steps_only(tmp_path):
    """`--steps 2 --warmup 2`: the bar goes to 2 of 2, warm-up calls show as phases (not 6 steps)."""
    events: list[tuple[str, object]] = []

    class Recorder:
        def start(self, name: str, total: int) -> None:
            events.append(("start", total))

        def phase(self, text: str) -> None:
            events.append(("phase", text))

        def advance(self, text: str | None = None) -> None:
            events.append(("advance", None))

    settings = CaptureSettings(steps=2, warmup=2, height=32, width=32, out=tmp_path, device="cpu")
    run_capture(settings, progress=Recorder())
    assert events[0] == ("start", 2)
    assert sum(1 for kind, _ in events if kind == "advance") == 2
    assert ("phase", "warm-up 2/2") in events and ("phase", "unprofiled reference call") in events
