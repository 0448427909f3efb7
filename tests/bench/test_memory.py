"""Memory per stage and at the limit: ``--batch auto``'s search (with stand-in devices), its refusal on a CPU, and
the per-stage peaks in the summary and the report."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import msgspec
import pytest

from profkit.analysis.bench.summary import summarize_bench
from profkit.capture.bench.autobatch import find_max_batch
from profkit.capture.bench.runner import BenchSettings, _auto_batches, run_bench, validate_settings
from profkit.errors import SettingError
from profkit.model.bench import BenchResult
from profkit.model.capture import CUDA_MEMORY_SOURCE, NOT_CAPTURED_CPU, Knobs
from profkit.pipelines.loading import LoadedPipeline
from profkit.report.html import bench_html
from tests.benchbuilder import bench_result
from tests.conftest import run_cli

OOM = "out of memory: OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"


def fits_up_to(limit: int, calls: list[int]):
    def fits(batch: int) -> str | None:
        calls.append(batch)
        return None if batch <= limit else OOM

    return fits


def test_doubling_then_bisecting_finds_the_largest_batch() -> None:
    calls: list[int] = []
    best, tries = find_max_batch(fits_up_to(37, calls), max_batch=256, max_tries=20)
    assert best == 37
    assert calls == [1, 2, 4, 8, 16, 32, 64, 48, 40, 36, 38, 37]
    assert [t.fits for t in tries] == [True] * 6 + [False, False, False, True, False, True]
    assert tries[6].error == OOM


def test_the_search_is_bounded() -> None:
    calls: list[int] = []
    best, tries = find_max_batch(fits_up_to(37, calls), max_batch=256, max_tries=8)
    assert len(tries) == 8 and best == 32  # the best that was seen to fit within the tries
    best, tries = find_max_batch(fits_up_to(1000, []), max_batch=24, max_tries=20)
    assert best == 24 and [t.batch for t in tries] == [1, 2, 4, 8, 16, 24]  # capped at max_batch


def test_nothing_fits_or_another_error_stops_the_search() -> None:
    best, tries = find_max_batch(fits_up_to(0, []))
    assert best is None and len(tries) == 1
    seen: list[int] = []

    def broken(batch: int) -> str | None:
        seen.append(batch)
        return None if batch < 4 else "RuntimeError: shape mismatch"

    best, tries = find_max_batch(broken)
    assert best == 2 and seen == [1, 2, 4]  # not an OOM: no bisecting on it


class _FakePipeline:
    """Stands in for a pipeline on a device with room for ``limit`` images: a larger batch raises an OOM."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.batches: list[int] = []

    def __call__(self, prompt: list[str], **kwargs) -> None:
        import torch

        self.batches.append(len(prompt))
        if len(prompt) > self.limit:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 1.00 GiB")


def test_auto_batches_per_pipeline_with_stand_in_pipelines() -> None:
    settings = BenchSettings(
        dtypes=("fp32", "fp16"), steps=2, device="cpu", batches=(), batch_auto=True, max_batch=64, max_batch_tries=12
    )
    pipelines = {
        ("fp32", Knobs()): LoadedPipeline(_FakePipeline(5), "tiny-sd", "builtin", 0.0),
        ("fp16", Knobs()): LoadedPipeline(_FakePipeline(12), "tiny-sd", "builtin", 0.0),
    }
    found = _auto_batches(settings, "cpu", pipelines, SimpleNamespace(label=""))
    assert {key[0]: best for key, (best, _) in found.items()} == {"fp32": 5, "fp16": 12}
    assert [t.batch for t in found[("fp32", Knobs())][1]] == [1, 2, 4, 8, 6, 5]
    keys = settings.configs({key: (best,) for key, (best, _) in found.items()})
    assert [k.name for k in keys] == ["fp32 b5", "fp16 b12"]


def test_batch_auto_settings_and_the_cpu_refusal() -> None:
    with pytest.raises(SettingError, match="auto or batch sizes, not both"):
        validate_settings(BenchSettings(batches=(1,), batch_auto=True))
    with pytest.raises(SettingError, match="at least one batch size"):
        validate_settings(BenchSettings(batches=()))
    with pytest.raises(SettingError, match="auto needs a CUDA device"):
        run_bench(BenchSettings(device="cpu", batches=(), batch_auto=True, steps=2))


@pytest.mark.slow
def test_the_cli_refuses_batch_auto_on_a_cpu(tmp_path: Path) -> None:
    result = run_cli("bench", "--device", "cpu", "--batch", "auto", "--out", str(tmp_path / "b"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("profkit: error: --batch auto needs a CUDA device")


def _with_stage_memory(result: BenchResult) -> BenchResult:
    """The builder's result as a CUDA run would record it: per-stage peaks in every trial."""
    configs = []
    for config in result.configs:
        trials = tuple(
            msgspec.structs.replace(
                t,
                stage_peak_allocated_mb={"text_encoders": 300.0 + i, "denoise": 900.0 * config.batch, "vae": 700.0},
                peak_allocated_mb=900.0 * config.batch,
            )
            for i, t in enumerate(config.trials)
        )
        configs.append(msgspec.structs.replace(config, trials=trials))
    return msgspec.structs.replace(result, configs=tuple(configs), device="cuda")


def test_stage_peaks_in_the_summary_the_file_and_the_report() -> None:
    result = _with_stage_memory(bench_result())
    summary = summarize_bench(result)
    first = summary.configs[0]
    assert first.stage_peak_allocated_mb == {"text_encoders": 303.0, "denoise": 900.0, "vae": 700.0}  # max over trials
    assert summary.configs[1].stage_peak_allocated_mb["denoise"] == 1800.0
    assert first.memory_source == CUDA_MEMORY_SOURCE
    again = BenchResult.from_json(result.with_summary(summary).to_json())
    assert again.configs[0].trials[0].stage_peak_allocated_mb == result.configs[0].trials[0].stage_peak_allocated_mb
    html = bench_html(result, summary)
    assert "Peak device memory per stage" in html and "1800 MB" in html
    cpu = summarize_bench(bench_result())
    assert cpu.configs[0].stage_peak_allocated_mb == {} and cpu.configs[0].memory_source == NOT_CAPTURED_CPU
