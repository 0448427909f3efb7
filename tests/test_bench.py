"""profkit bench: statistics and cost on known samples, real runs of the built-in pipeline, the gate, faults."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import orjson
import pytest

from profkit.analysis.bench.stats import compare_samples, describe, median_ci
from profkit.analysis.bench.summary import cost_of, load_prices, metric_samples, price_for, summarize_bench
from profkit.app.bench import CostOptions, GateOptions, bench, load_result, result_document
from profkit.capture.bench.runner import BenchSettings, run_bench
from profkit.errors import ProfkitError
from profkit.pipelines.loading import load_pipeline
from tests.conftest import run_cli

SMALL = {"steps": 2, "warmup": 1, "trials": 3, "device": "cpu", "batches": (1, 2)}

# ---------------------------------------------------------------- statistics and cost on known samples


def test_describe_matches_numpy_and_flags_what_it_cannot_know() -> None:
    samples = list(range(1, 21))  # 1..20
    stats = describe(samples)
    assert (stats.count, stats.min, stats.max, stats.mean) == (20, 1.0, 20.0, 10.5)
    assert stats.std == pytest.approx(np.std(samples, ddof=1))
    assert (stats.p50, stats.p90, stats.p95, stats.p99) == tuple(np.percentile(samples, [50, 90, 95, 99]))
    assert stats.median_ci == (6.0, 15.0)  # the textbook order statistics for n = 20
    assert stats.median_ci_level == pytest.approx(0.9586, abs=1e-4)
    assert any("CV" in w for w in stats.warnings)  # 56% spread
    assert any("P99 from 20 samples" in w for w in stats.warnings)
    steady = describe([100.0 + 0.1 * (i % 3) for i in range(120)])
    assert steady.warnings == []  # enough samples for P99 and a small CV


def test_median_ci_small_samples() -> None:
    assert median_ci(np.array([1.0, 2.0])) is None
    (low, high), level = median_ci(np.arange(1, 11, dtype=float))
    assert (low, high) == (2.0, 9.0) and level == pytest.approx(0.9785, abs=1e-4)
    (low, high), level = median_ci(np.array([3.0, 1.0, 2.0]))
    assert (low, high) == (1.0, 3.0) and level == pytest.approx(0.75)  # the best n = 3 can do


def test_compare_samples_finds_a_real_slowdown_and_not_noise() -> None:
    rng = np.random.default_rng(0)
    base = list(100 + rng.normal(0, 2, 30))
    slower = [v * 1.5 for v in base]
    change = compare_samples("e2e_ms", "fp16 b1", base, slower, threshold=0.10)
    assert change.change == pytest.approx(0.5, rel=1e-6) and change.significant and change.regressed
    same = compare_samples("e2e_ms", "fp16 b1", base, list(100 + rng.normal(0, 2, 30)), threshold=0.10)
    assert not same.regressed and abs(same.change) < 0.05


def test_cost_from_price_and_from_the_table() -> None:
    cost = cost_of(("--price-per-hour", 3.6, "x"), images_per_s=2.0)
    assert cost.usd_per_image == pytest.approx(0.0005)
    assert cost.usd_per_1000_images == pytest.approx(0.5)
    assert cost.images_per_hour == pytest.approx(7200)
    table = load_prices()
    assert all({"name", "usd_per_hour", "region", "price_date"} <= set(row) for row in table["instances"])
    _source, per_hour, detail = price_for(None, "aws-g5.xlarge")
    assert per_hour == 1.006 and "us-east-1" in detail
    with pytest.raises(ProfkitError, match="not in the price table"):
        price_for(None, "no-such-instance")
    with pytest.raises(ProfkitError, match="not both"):
        price_for(1.0, "aws-g5.xlarge")


# ---------------------------------------------------------------- real runs of the built-in pipeline


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("bench") / "run"
    outputs = bench(BenchSettings(**SMALL), out, CostOptions(price_per_hour=2.0), GateOptions(), force=False)
    return out, outputs


@pytest.mark.slow
def test_interleaved_order_and_warmups_excluded(small_run) -> None:
    out, _ = small_run
    result = load_result(out / "bench.json")
    assert result["order"] == ["fp32 b1", "fp32 b2"] * 3
    for config in result["configs"]:
        assert len(config["trials"]) == 3 and all(t["ok"] for t in config["trials"])
        assert len(config["warmup_s"]) == 1 and config["cold_call_s"] == config["warmup_s"][0]
        assert [t["round"] for t in config["trials"]] == [0, 1, 2]
        assert all(len(t["steps_ms"]) == 2 for t in config["trials"])
        assert all(t["inference_ms"] <= t["e2e_ms"] for t in config["trials"])
    orders = [t["order"] for c in result["configs"] for t in c["trials"]]
    assert sorted(orders) == list(range(6))


@pytest.mark.slow
def test_statistics_in_the_file_are_those_of_its_raw_samples(small_run) -> None:
    out, _ = small_run
    document = orjson.loads((out / "bench.json").read_bytes())
    stored = {c["name"]: c for c in document["summary"]["configs"]}
    for config in document["configs"]:
        raw = metric_samples(config)
        for metric, samples in raw.items():
            recomputed = describe(samples)
            saved = stored[config["name"]]["metrics"][metric]
            assert saved["count"] == recomputed.count == len(samples)
            for key in ("mean", "p50", "p90", "p99", "min", "max"):
                assert saved[key] == pytest.approx(getattr(recomputed, key))
        e2e = np.median([t["e2e_ms"] for t in config["trials"]])
        assert stored[config["name"]]["images_per_s"] == pytest.approx(config["batch"] / (e2e / 1000))
        assert stored[config["name"]]["cost"]["usd_per_hour"] == 2.0
    assert document["kind"] == "profkit.bench" and document["schema_version"] == 1
    assert document["environment"]["torch"] and document["device_info"]["type"] == "cpu"
    assert len(document["samples"]["t"]) == len(document["samples"]["rss_mb"]) > 0


@pytest.mark.slow
def test_csv_and_html_outputs(small_run) -> None:
    out, _ = small_run
    trials = (out / "trials.csv").read_text().splitlines()
    assert trials[0].startswith("config,dtype,batch,round,order,ok") and len(trials) == 1 + 6
    stats = (out / "stats.csv").read_text().splitlines()
    assert len(stats) == 1 + 2 * 5
    html = (out / "bench.html").read_text()
    for text in ("Latency distribution", "fp32 b1", "fp32 b2", "Throughput", "Cost", "Utilization over time"):
        assert text in html
    assert "http://" not in html and "https://" not in html


@pytest.mark.slow
def test_regression_gate_fails_on_an_injected_slowdown_and_passes_without(small_run, tmp_path: Path) -> None:
    out, _ = small_run
    baseline = out / "bench.json"
    document = orjson.loads(baseline.read_bytes())
    document.pop("summary")
    slowed = copy.deepcopy(document)
    for config in slowed["configs"]:
        for trial in config["trials"]:
            trial["e2e_ms"] *= 1.5
            trial["inference_ms"] *= 1.5
            trial["steps_ms"] = [s * 1.5 for s in trial["steps_ms"]]
    slowed_path = tmp_path / "slowed.json"
    slowed_path.write_bytes(orjson.dumps(slowed))
    failing = run_cli("check", str(slowed_path), "--baseline", str(baseline), "--fail-if-slower", "10")
    assert failing.returncode == 4, failing.stderr
    assert "slower than the baseline by more than 10%" in failing.stderr and "step_ms" in failing.stderr
    passing = run_cli("check", str(baseline), "--baseline", str(baseline), "--fail-if-slower", "10")
    assert passing.returncode == 0, passing.stderr
    other = copy.deepcopy(document)
    other["environment"]["torch"] = "9.9.9"
    other_path = tmp_path / "other.json"
    other_path.write_bytes(orjson.dumps(other))
    refused = run_cli("check", str(other_path), "--baseline", str(baseline))
    assert refused.returncode == 2 and "different setup" in refused.stderr and "torch: " in refused.stderr
    forced = run_cli("check", str(other_path), "--baseline", str(baseline), "--force", "-o", str(tmp_path / "c.html"))
    assert forced.returncode == 0 and "Setups differ" in (tmp_path / "c.html").read_text()


# ---------------------------------------------------------------- faults


def _failing_loader(fail_on_call: int, error: BaseException):
    """load_pipeline, but the VAE decode of the pipeline's ``fail_on_call``-th call raises ``error``."""

    def load(model: str, dtype: str, device: str):
        loaded = load_pipeline(model, dtype, device)
        decode = loaded.pipeline.vae.decode
        calls = {"n": 0}

        def flaky_decode(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] == fail_on_call:
                raise error
            return decode(*args, **kwargs)

        loaded.pipeline.vae.decode = flaky_decode
        return loaded

    return load


@pytest.mark.slow
def test_a_trial_that_raises_is_recorded_and_the_run_goes_on() -> None:
    oom = RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
    run = run_bench(BenchSettings(**SMALL), load=_failing_loader(4, oom))  # 2 warm-ups, then trial 2
    assert run.status == "complete"
    trials = [t for c in run.configs for t in c.trials]
    failed = [t for t in trials if not t.ok]
    assert len(trials) == 6 and len(failed) == 1
    assert failed[0].error.startswith("out of memory") and failed[0].config == "fp32 b2"
    summary = summarize_bench(result_document(run))
    b2 = next(c for c in summary.configs if c.name == "fp32 b2")
    assert (b2.trials_ok, b2.trials_failed) == (2, 1) and b2.metrics["e2e_ms"].count == 2
    assert any("1 trial(s) failed" in w for w in summary.warnings)


@pytest.mark.slow
def test_ctrl_c_keeps_partial_results() -> None:
    run = run_bench(BenchSettings(**SMALL), load=_failing_loader(5, KeyboardInterrupt()))  # during trial 3
    assert run.status == "interrupted"
    trials = [t for c in run.configs for t in c.trials]
    assert [t.ok for t in sorted(trials, key=lambda t: t.order)] == [True, True, False]
    document = result_document(run)
    summary = summarize_bench(document)
    assert summary.status == "interrupted" and any("partial" in w for w in summary.warnings)


@pytest.mark.slow
def test_impossible_settings_are_one_line(tmp_path: Path) -> None:
    for args, message in (
        (["--trials", "0"], "--trials must be at least 1"),
        (["--steps", "0"], "--steps must be at least 1"),
        (["--height", "-8"], "multiples of 8"),
        (["--batch", "1,x"], "integers"),
        (["--fail-if-slower", "5"], "needs --baseline"),
        (["--instance", "nope"], "not in the price table"),
    ):
        result = run_cli("bench", "--device", "cpu", "--out", str(tmp_path / "b"), *args)
        assert result.returncode == 2, (args, result.stderr)
        assert message in result.stderr and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "b").exists()


@pytest.mark.slow
def test_bench_cli_end_to_end_and_no_silent_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "cli"
    args = [
        "bench",
        "--steps",
        "2",
        "--trials",
        "2",
        "--warmup",
        "1",
        "--device",
        "cpu",
        "--out",
        str(out),
        "--instance",
        "aws-g5.xlarge",
    ]
    first = run_cli(*args)
    assert first.returncode == 0, first.stderr
    assert {p.name for p in out.iterdir()} == {"bench.json", "trials.csv", "stats.csv", "bench.html"}
    assert "$/1k img" in first.stdout
    again = run_cli(*args)
    assert again.returncode == 2 and "already exists" in again.stderr


@pytest.mark.slow
def test_ctrl_c_on_the_command_line_writes_partial_results(tmp_path: Path) -> None:
    import os
    import re
    import signal
    import subprocess
    import sys
    import threading
    import time

    out = tmp_path / "interrupted"
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "profkit",
            "bench",
            "--steps",
            "2",
            "--trials",
            "100000",
            "--device",
            "cpu",
            "--out",
            str(out),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        # a live progress display on stderr (as on a terminal), so the test sees when trials run
        env={**os.environ, "COLUMNS": "200", "TTY_COMPATIBLE": "1", "TTY_INTERACTIVE": "1", "NO_COLOR": "1"},
    )
    seen: list[str] = []
    reader = threading.Thread(target=lambda: seen.extend(iter(lambda: child.stderr.read(1), "")), daemon=True)
    reader.start()
    deadline = time.monotonic() + 120
    while not re.search(r"\b([2-9]|\d{2,})/100001\b", "".join(seen[-4000:])):  # warm-up and one trial done
        assert child.poll() is None and time.monotonic() < deadline, "".join(seen)
        time.sleep(0.05)
    child.send_signal(signal.SIGINT)
    stdout, _ = child.communicate(timeout=120)
    reader.join(timeout=10)
    stderr = "".join(seen)
    assert child.returncode == 130, stderr
    assert "interrupted" in stdout
    document = load_result(out / "bench.json")
    assert document["status"] == "interrupted"
    assert 0 < len(document["order"]) < 100000
    assert (out / "bench.html").exists()


# ---------------------------------------------------------------- GPU paths with stand-ins (no GPU here)


def test_cuda_event_timer_turns_event_pairs_into_durations(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CUDA path times ranges with torch.cuda.Event pairs; a fake clock stands in for the GPU."""
    import torch

    from profkit.capture.bench.runner import Trial, _fill, _RangeTimer

    clock = {"now": 0.0}

    class FakeEvent:
        def __init__(self, enable_timing: bool = False) -> None:
            assert enable_timing
            self.at = None

        def record(self) -> None:
            self.at = clock["now"]

        def elapsed_time(self, end: FakeEvent) -> float:  # milliseconds, as CUDA events report
            return end.at - self.at

    monkeypatch.setattr(torch.cuda, "Event", FakeEvent)
    timer = _RangeTimer(cuda=True)
    for name, opened, at in [
        ("profkit/pipeline", True, 0.0),
        ("profkit/text_encoder/text_encoder", True, 1.0),
        ("profkit/text_encoder/text_encoder", False, 3.0),
        ("profkit/denoise/step_000", True, 5.0),
        ("profkit/denoise/step_000", False, 15.0),
        ("profkit/denoise/step_001", True, 15.0),
        ("profkit/denoise/step_001", False, 27.0),
        ("profkit/vae/decode", True, 30.0),
        ("profkit/vae/decode", False, 34.5),
        ("profkit/pipeline", False, 40.0),
    ]:
        clock["now"] = at
        timer(name, opened)
    trial = Trial("fp16 b1", 0, 0, ok=True)
    _fill(trial, timer)
    assert trial.steps_ms == [10.0, 12.0]
    assert trial.inference_ms == 22.0
    assert trial.stage_ms == {"text_encoder": 2.0, "vae": 4.5}
    assert trial.range_timer == "cuda events"


def test_nvml_sampler_records_gpu_series(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys
    import time
    import types

    from profkit.capture.bench.sampler import Sampler

    fake = types.ModuleType("pynvml")
    fake.NVML_CLOCK_SM = 1
    fake.nvmlInit = lambda: None
    fake.nvmlShutdown = lambda: None
    fake.nvmlDeviceGetHandleByIndex = lambda index: f"gpu{index}"
    fake.nvmlDeviceGetName = lambda handle: b"NVIDIA H100 80GB HBM3"
    fake.nvmlDeviceGetUtilizationRates = lambda handle: types.SimpleNamespace(gpu=87)
    fake.nvmlDeviceGetMemoryInfo = lambda handle: types.SimpleNamespace(used=3 * 2**30)
    fake.nvmlDeviceGetPowerUsage = lambda handle: 350_000  # milliwatts
    fake.nvmlDeviceGetClockInfo = lambda handle, kind: 1980
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    with Sampler("cuda:0", hz=50) as sampler:
        sampler.label = "fp16 b1"
        deadline = time.monotonic() + 30
        while len(sampler.samples.t) < 10 and time.monotonic() < deadline:  # wait for samples, not a fixed time
            time.sleep(0.01)
    samples = sampler.samples
    assert samples.gpu_source == "NVML device 0 (NVIDIA H100 80GB HBM3)"
    assert len(samples.gpu_util) == len(samples.t) >= 10  # the thread samples every series at each tick
    assert set(samples.gpu_util) == {87.0} and set(samples.gpu_power_w) == {350.0}
    assert set(samples.gpu_mem_mb) == {3072.0} and set(samples.gpu_sm_clock_mhz) == {1980.0}
    assert "fp16 b1" in samples.label


@pytest.mark.slow
def test_check_refuses_files_that_are_not_bench_results(small_run, tmp_path: Path) -> None:
    out, _ = small_run
    trace = tmp_path / "trace.json"
    trace.write_text('{"traceEvents": []}')
    malformed = tmp_path / "malformed.json"
    malformed.write_bytes(orjson.dumps({"kind": "profkit.bench", "schema_version": 1, "configs": [{"name": 1}]}))
    for args, message in (
        ([str(malformed), "--baseline", str(out / "bench.json")], "configuration 0 is malformed"),
        ([str(tmp_path / "missing.json"), "--baseline", str(out / "bench.json")], "no such file"),
        ([str(trace), "--baseline", str(out / "bench.json")], "not a profkit benchmark result"),
        ([str(out / "bench.json"), "--baseline", str(trace)], "not a profkit benchmark result"),
    ):
        result = run_cli("check", *args)
        assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
