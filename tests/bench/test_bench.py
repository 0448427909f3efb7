"""profkit bench: statistics and cost on known samples, real runs of the built-in pipeline, the gate, faults,
and the result document (typed, round-trips, version 1 loads, foreign files refused)."""

from __future__ import annotations

import os
from pathlib import Path

import msgspec
import numpy as np
import orjson
import pytest

from profkit.analysis.bench.stats import compare_samples, describe, median_ci
from profkit.analysis.bench.summary import cost_of, metric_samples, stored_summary_problems, summarize_bench
from profkit.app.bench import CostOptions, GateOptions, bench, load_result
from profkit.app.prices import load_prices, price_for
from profkit.capture.bench.runner import BenchSettings, run_bench
from profkit.errors import ProfkitError
from profkit.model.bench import TRIAL_INTERRUPTED, BenchResult
from profkit.pipelines.loading import load_pipeline
from tests.benchbuilder import bench_result
from tests.conftest import corpus_dir, run_cli

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
    assert steady.warnings == ()  # enough samples for P99 and a small CV


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
    assert list(result.order) == ["fp32 b1", "fp32 b2"] * 3
    for config in result.configs:
        assert len(config.trials) == 3 and all(t.ok for t in config.trials)
        assert len(config.warmup_s) == 1 and config.cold_call_s == config.warmup_s[0]
        assert [t.round for t in config.trials] == [0, 1, 2]
        assert all(len(t.steps_ms) == 2 for t in config.trials)
        assert all(t.inference_ms <= t.e2e_ms for t in config.trials)
    orders = [t.order for c in result.configs for t in c.trials]
    assert sorted(orders) == list(range(6))


@pytest.mark.slow
def test_statistics_in_the_file_are_those_of_its_raw_samples(small_run) -> None:
    out, _ = small_run
    document = orjson.loads((out / "bench.json").read_bytes())
    stored = {c["name"]: c for c in document["summary"]["configs"]}
    for config in load_result(out / "bench.json").configs:
        raw = metric_samples(config)
        for metric, samples in raw.items():
            recomputed = describe(samples)
            saved = stored[config.name]["metrics"][metric]
            assert saved["count"] == recomputed.count == len(samples)
            for key in ("mean", "p50", "p90", "p99", "min", "max"):
                assert saved[key] == pytest.approx(getattr(recomputed, key))
        e2e = np.median([t.e2e_ms for t in config.trials])
        assert stored[config.name]["images_per_s"] == pytest.approx(config.batch / (e2e / 1000))
        assert stored[config.name]["cost"]["usd_per_hour"] == 2.0
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
    document = msgspec.structs.replace(load_result(baseline), summary=None)
    # A controlled slowdown large enough never to flake: at least 1.5x, and enough that every slowed step is
    # slower than every measured one, whatever noise this machine put into the run (the gate uses a rank test).
    steps = [s for c in document.configs for trial in c.trials if trial.ok for s in trial.steps_ms]
    slowed = _slowed(document, max(1.5, 1.2 * max(steps) / min(steps)))
    slowed_path = slowed.write(tmp_path / "slowed.json")
    failing = run_cli("check", str(slowed_path), "--baseline", str(baseline), "--fail-if-slower", "10")
    assert failing.returncode == 4, failing.stderr
    assert "slower than the baseline by more than 10%" in failing.stderr and "step_ms" in failing.stderr
    passing = run_cli("check", str(baseline), "--baseline", str(baseline), "--fail-if-slower", "10")
    assert passing.returncode == 0, passing.stderr
    other = msgspec.structs.replace(document, environment={**document.environment, "torch": "9.9.9"})
    other_path = other.write(tmp_path / "other.json")
    refused = run_cli("check", str(other_path), "--baseline", str(baseline))
    assert refused.returncode == 2 and "different setup" in refused.stderr and "torch: " in refused.stderr
    forced = run_cli("check", str(other_path), "--baseline", str(baseline), "--force", "-o", str(tmp_path / "c.html"))
    assert forced.returncode == 0 and "Setups differ" in (tmp_path / "c.html").read_text()


def _slowed(result: BenchResult, factor: float) -> BenchResult:
    """``result`` with every end-to-end, denoise-loop and step time multiplied by ``factor``."""
    replace = msgspec.structs.replace

    def slow(trial):
        return replace(
            trial,
            e2e_ms=trial.e2e_ms * factor,
            inference_ms=trial.inference_ms * factor,
            steps_ms=tuple(s * factor for s in trial.steps_ms),
        )

    configs = tuple(replace(c, trials=tuple(slow(t) for t in c.trials)) for c in result.configs)
    return replace(result, configs=configs)


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
    summary = summarize_bench(run)
    b2 = next(c for c in summary.configs if c.name == "fp32 b2")
    assert (b2.trials_ok, b2.trials_failed) == (2, 1) and b2.metrics["e2e_ms"].count == 2
    assert any("1 trial(s) failed" in w for w in summary.warnings)


@pytest.mark.slow
def test_ctrl_c_keeps_partial_results() -> None:
    run = run_bench(BenchSettings(**SMALL), load=_failing_loader(5, KeyboardInterrupt()))  # during trial 3
    assert run.status == "interrupted"
    trials = [t for c in run.configs for t in c.trials]
    assert [t.ok for t in sorted(trials, key=lambda t: t.order)] == [True, True, False]
    summary = summarize_bench(run)
    assert summary.status == "interrupted" and any("partial" in w for w in summary.warnings)
    cut = next(c for c in summary.configs if c.trials_interrupted)  # the cut trial is interrupted, not failed
    assert (cut.trials_interrupted, cut.trials_failed) == (1, 0) and not any("failed" in w for w in summary.warnings)
    assert any("cut by the interruption is left out (not a failure)" in w for w in summary.warnings)


def test_an_interrupted_trial_is_not_counted_as_failed() -> None:
    result = bench_result(trials=3)
    first, second = result.configs
    cut = msgspec.structs.replace(first.trials[-1], ok=False, e2e_ms=None, error=TRIAL_INTERRUPTED)
    broken = msgspec.structs.replace(second.trials[-1], ok=False, e2e_ms=None, error="out of memory")
    configs = (
        msgspec.structs.replace(first, trials=(*first.trials[:-1], cut)),
        msgspec.structs.replace(second, trials=(*second.trials[:-1], broken)),
    )
    summary = summarize_bench(msgspec.structs.replace(result, configs=configs, status="interrupted"))
    b1, b2 = summary.configs
    assert (b1.trials_ok, b1.trials_failed, b1.trials_interrupted, b1.errors) == (2, 0, 1, ())
    assert (b2.trials_ok, b2.trials_failed, b2.trials_interrupted) == (2, 1, 0)
    assert [w for w in summary.warnings if "trial" in w] == [
        "fp32 b1: the trial cut by the interruption is left out (not a failure)",
        "fp32 b2: 1 trial(s) failed and are left out",
    ]
    document = msgspec.structs.replace(result, configs=configs, status="interrupted", summary=summary)
    assert BenchResult.from_json(document.to_json()).summary.configs[0].trials_interrupted == 1


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
    assert "interrupted" in stdout and "trial(s) failed" not in stdout
    document = load_result(out / "bench.json")
    assert document.status == "interrupted"
    assert 0 < len(document.order) < 100000
    assert (out / "bench.html").exists()


# ---------------------------------------------------------------- GPU paths with stand-ins (no GPU here)


def test_cuda_event_timer_turns_event_pairs_into_durations(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CUDA path times ranges with torch.cuda.Event pairs; a fake clock stands in for the GPU."""
    import torch

    from profkit.capture.bench.runner import _fill, _RangeTimer
    from profkit.model.bench import Trial

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
    trial = _fill(Trial(config="fp16 b1", ok=True, e2e_ms=40.0), timer)
    assert trial.steps_ms == (10.0, 12.0)
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
        ([str(malformed), "--baseline", str(out / "bench.json")], f"{malformed}: invalid profkit.bench document"),
        ([str(malformed), "--baseline", str(out / "bench.json")], "at `$.configs[0].name`"),
        ([str(tmp_path / "missing.json"), "--baseline", str(out / "bench.json")], "no such file"),
        ([str(trace), "--baseline", str(out / "bench.json")], "not a profkit profkit.bench document"),
        ([str(out / "bench.json"), "--baseline", str(trace)], "not a profkit profkit.bench document"),
    ):
        result = run_cli("check", *args)
        assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


# ---------------------------------------------------------------- the result document

H100_BENCH = corpus_dir().parent / "h100" / "bench_tiny-sd_fp32-fp16_20steps_64x64" / "bench.json"


def _h100_bench() -> Path:
    if not H100_BENCH.is_file():
        message = f"real bench result not found at {H100_BENCH} (set PROFKIT_CORPUS)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return H100_BENCH


def test_a_real_run_round_trips(small_run) -> None:
    out, outputs = small_run
    stored = load_result(out / "bench.json")
    assert stored == outputs.result.with_summary(outputs.summary)  # what was run is what was written
    again = BenchResult.from_json(stored.to_json())
    assert again == stored and again.to_json() == stored.to_json()
    assert isinstance(stored.configs[0].trials[0].steps_ms, tuple)  # typed all the way down
    built = bench_result()
    assert BenchResult.from_json(built.to_json()) == built


def _without_new_defaults(document: dict) -> dict:
    """``document`` without the fields added after version-1 files were written, each checked at its default
    (energy: issue 12)."""
    assert document.pop("energy_source", "not captured").startswith("not captured")
    for config in document.get("configs", ()):
        for trial in config["trials"]:
            assert trial.pop("energy_mj", None) is None
    summary = document.get("summary") or {}
    assert summary.pop("energy_source", "not captured").startswith("not captured")
    for config in summary.get("configs", ()):
        assert config.pop("energy", None) is None
    return document


def test_the_h100_corpus_result_loads_round_trips_and_resummarizes() -> None:
    path = _h100_bench()
    result = load_result(path)  # a version-1 file written before documents were typed
    assert result.device_info["name"] == "NVIDIA H100 80GB HBM3" and result.status == "complete"
    assert [c.name for c in result.configs] == ["fp32 b1", "fp16 b1"]
    assert all(t.range_timer == "cuda events" for t in result.trials())
    assert BenchResult.from_json(result.to_json()) == result
    # nothing lost, nothing added but the fields newer than the file, at their defaults
    assert _without_new_defaults(orjson.loads(result.to_json())) == orjson.loads(path.read_bytes())
    stored = orjson.loads(path.read_bytes())["summary"]
    cost = stored["configs"][0]["cost"]  # the run was priced with --instance (the hand-written table of then)
    assert price_for(None, cost["source"], load_prices())[0] == cost["source"]  # the old name still resolves
    price = (cost["source"], cost["usd_per_hour"], cost["detail"])
    recomputed = orjson.loads(orjson.dumps(summarize_bench(result, price).to_dict()))
    assert _without_new_defaults({"summary": recomputed})["summary"] == stored  # the stored statistics are those
    # of the stored raw trials
    assert stored_summary_problems(result) == []  # and the audit agrees


def test_a_minimal_version_1_file_loads_with_defaults(tmp_path: Path) -> None:
    """Hand-made or older files may lack everything but the configurations and their trials."""
    minimal = {
        "schema_version": 1,
        "kind": "profkit.bench",
        "configs": [
            {
                "name": "fp32 b1",
                "dtype": "fp32",
                "batch": 1,
                "trials": [{"config": "fp32 b1", "ok": True, "e2e_ms": 100.0 + i} for i in range(5)],
            }
        ],
    }
    path = tmp_path / "minimal.json"
    path.write_bytes(orjson.dumps(minimal))
    result = load_result(path)
    assert (result.status, result.device, result.environment, result.order) == ("unknown", "unknown", {}, ())
    assert result.samples.t == () and result.configs[0].trials[0].steps_ms == ()
    summary = summarize_bench(result)
    assert summary.configs[0].metrics["e2e_ms"].p50 == 102.0 and summary.configs[0].metrics["step_ms"] is None
    checked = run_cli("check", str(path), "--baseline", str(path), "-o", str(tmp_path / "m.html"))
    assert checked.returncode == 0, checked.stderr
    assert "fp32 b1" in (tmp_path / "m.html").read_text()


def test_future_versions_wrong_kinds_and_wrong_types_are_one_line(tmp_path: Path) -> None:
    good = orjson.loads(bench_result().to_json())
    cases = {
        "future": ({**good, "schema_version": 2}, "version 2 was written by a newer profkit"),
        "kind": (
            {**good, "kind": "profkit.analysis"},
            "not a profkit profkit.bench document (kind is 'profkit.analysis')",
        ),
        "no configs": ({**good, "configs": []}, "the result has no configurations"),
        "type": (
            {
                **good,
                "configs": [{**good["configs"][0], "trials": [{**good["configs"][0]["trials"][0], "e2e_ms": "x"}]}],
            },
            "`$.configs[0].trials[0].e2e_ms`",
        ),
        "ok without time": (
            {**good, "configs": [{**good["configs"][0], "trials": [{"config": "fp32 b1", "ok": True}]}]},
            "a successful trial of fp32 b1 has no e2e_ms",
        ),
    }
    for name, (document, message) in cases.items():
        path = tmp_path / f"{name.replace(' ', '_')}.json"
        path.write_bytes(orjson.dumps(document))
        with pytest.raises(ProfkitError) as raised:
            load_result(path)
        assert str(path) in str(raised.value) and message in str(raised.value), (name, str(raised.value))
        assert raised.value.exit_code == 2 and "\n" not in str(raised.value)
    refused = run_cli("check", str(tmp_path / "future.json"), "--baseline", str(tmp_path / "future.json"))
    assert refused.returncode == 2 and "newer profkit" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1 and "Traceback" not in refused.stderr


def test_summary_takes_the_price_as_a_value() -> None:
    """The analysis is pure: the price table is read in app/, the summary only multiplies."""
    result = bench_result()
    price = price_for(None, "aws-g5.xlarge", load_prices())
    summary = summarize_bench(result, price)
    b1 = summary.configs[0]
    assert b1.cost.source == "aws-g5.xlarge" and b1.cost.usd_per_hour == 1.006
    assert b1.cost.usd_per_image == pytest.approx(1.006 / 3600 / b1.images_per_s)
    assert summarize_bench(result).configs[0].cost is None


# ---------------------------------------------------------------- trust: what a stored result must be


def test_a_stored_summary_is_audited_against_its_raw_trials() -> None:
    """A priced summary agrees with its trials; an edited statistic or trial count is named, and said once."""
    result = bench_result(6)
    priced = result.with_summary(summarize_bench(result, ("test", 2.0, "")))
    assert stored_summary_problems(priced) == [] and stored_summary_problems(result) == []
    stats = priced.summary.configs[1].metrics["step_ms"]
    edited_config = msgspec.structs.replace(
        priced.summary.configs[1],
        trials_failed=2,
        metrics={**priced.summary.configs[1].metrics, "step_ms": msgspec.structs.replace(stats, max=stats.max * 2)},
    )
    edited = priced.with_summary(
        msgspec.structs.replace(priced.summary, configs=(priced.summary.configs[0], edited_config))
    )
    problems = stored_summary_problems(edited)
    assert problems == [
        "fp32 b2: the summary counts 6 ok and 2 failed trials, the trials 6 and 0",
        f"fp32 b2 step_ms max: stored {stats.max * 2:.6g}, the trials give {stats.max:.6g}",
    ]
    warnings = [w for w in summarize_bench(edited).warnings if "disagrees" in w]
    assert warnings == [
        f"The summary stored in this result disagrees with its raw trials ({'; '.join(problems)}): every number "
        "here is recomputed from the trials"
    ]
    from profkit.report.html import bench_html

    assert "disagrees with its raw trials" in bench_html(edited, summarize_bench(edited))  # in the report too
    # the recomputed numbers are those of the trials, whatever the stored summary said
    assert summarize_bench(edited).configs == summarize_bench(result).configs
    against = summarize_bench(result, baseline=edited, threshold=0.1)
    assert any(w.startswith("The summary stored in the baseline disagrees") for w in against.warnings)


def test_a_gate_never_passes_on_data_it_cannot_trust(tmp_path: Path) -> None:
    """Altered, partial or incomparable files: the gate refuses (exit 2, one line) instead of passing."""
    from profkit.app.bench import check

    good = bench_result(6)
    base = good.write(tmp_path / "base.json")
    gate = GateOptions(base, 10.0)
    assert not check(good.write(tmp_path / "same.json"), CostOptions(), gate, None, False).regressed
    stats = summarize_bench(good)
    first = stats.configs[0]
    fast = msgspec.structs.replace(first.metrics["e2e_ms"], p50=1.0)
    altered = good.with_summary(
        msgspec.structs.replace(
            stats,
            configs=(msgspec.structs.replace(first, metrics={**first.metrics, "e2e_ms": fast}), *stats.configs[1:]),
        )
    )
    path = altered.write(tmp_path / "altered.json")
    with pytest.raises(ProfkitError, match=r"altered\.json: the result's stored summary disagrees") as raised:
        check(path, CostOptions(), gate, None, False)
    assert raised.value.exit_code == 2
    # without a gate the same file is checked, with a warning
    ungated = check(path, CostOptions(), GateOptions(base), None, False)
    assert any("disagrees with its raw trials" in w for w in ungated.summary.warnings)
    partial = msgspec.structs.replace(good, status="interrupted").write(tmp_path / "partial.json")
    for new, baseline, message in (
        (partial, base, "partial.json: the result to check is partial"),
        (base, partial, "partial.json: the baseline result is partial"),
    ):
        for threshold in (None, 10.0):
            with pytest.raises(ProfkitError, match=message) as raised:
                check(new, CostOptions(), GateOptions(baseline, threshold), None, False)
            assert raised.value.exit_code == 2


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("e2e_ms", -1.0, "Expected `float` >= 0.0 - at `$.configs[0].trials[2].e2e_ms`"),
        ("inference_ms", 10_000.0, "inference_ms of a trial of fp32 b1 is 10000.000 ms, longer than its whole call"),
        ("steps_ms", [60.0, 60.0], "steps_ms (summed) of a trial of fp32 b1 is 120.000 ms"),
        ("stage_ms", {"vae": 500.0}, "stage_ms (summed) of a trial of fp32 b1 is 500.000 ms"),
        ("peak_allocated_mb", -5.0, "at `$.configs[0].trials[2].peak_allocated_mb`"),
        ("started_s", 1e13, "Expected `float` <= 1000000000000.0"),
    ],
)
def test_impossible_trial_values_are_refused_on_load(field: str, value: object, message: str) -> None:
    data = orjson.loads(bench_result().to_json())
    data["configs"][0]["trials"][2][field] = value
    with pytest.raises(ProfkitError) as raised:
        BenchResult.from_builtins(data, "tampered.json")
    assert str(raised.value).startswith("tampered.json: invalid profkit.bench document: ")
    assert message in str(raised.value) and raised.value.exit_code == 2


def test_parts_within_the_timer_slack_of_the_call_are_kept() -> None:
    """CUDA-event parts may exceed the host-timed call by timer resolution: 1% + 1 ms is not refused."""
    data = orjson.loads(bench_result().to_json())
    trial = data["configs"][0]["trials"][0]
    trial["inference_ms"] = trial["e2e_ms"] * 1.01 + 0.9
    assert BenchResult.from_builtins(data, "ok.json").configs[0].trials[0].inference_ms == trial["inference_ms"]
