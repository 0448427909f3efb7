"""Energy per image from NVML's total-energy counter: the meter with stand-in counters (wrap, unsupported, failed
reads), the arithmetic, a CPU run's "not captured", and a benchmark run that reads a stand-in counter per trial."""

from __future__ import annotations

from types import SimpleNamespace

import msgspec
import pytest

from profkit.analysis.bench.energy import JOULES_PER_KWH, energy_of
from profkit.analysis.bench.summary import summarize_bench
from profkit.capture.energy import EnergyMeter, nvml_meter, open_meter
from profkit.model.bench import BenchResult, ConfigRun, Trial
from profkit.report.html import bench_html
from tests.benchbuilder import bench_result


def _counter(*values: int):
    readings = iter(values)
    return lambda: next(readings)


def test_the_meter_measures_the_span_between_two_reads() -> None:
    meter = EnergyMeter(_counter(1_000_000, 1_250_500), "stand-in counter")
    start = meter.read()
    assert meter.since(start) == 250_500.0  # mJ
    assert meter.describe() == "stand-in counter" and meter.lost == 0


def test_a_counter_that_wraps_or_fails_loses_that_span_only() -> None:
    meter = EnergyMeter(_counter(5_000, 1_000, 1_000, 3_000), "stand-in counter")
    assert meter.since(meter.read()) is None  # went backwards: wrapped or reset
    assert meter.since(meter.read()) == 2_000.0  # the next call is measured again
    assert meter.lost == 1 and "went backwards" in meter.describe()

    def broken() -> int:
        raise RuntimeError("NVML_ERROR_GPU_IS_LOST")

    failing = EnergyMeter(broken, "stand-in counter")
    assert failing.since(failing.read()) is None
    assert failing.lost == 1 and "NVML_ERROR_GPU_IS_LOST" in failing.describe()
    negative = EnergyMeter(_counter(-1, 5), "stand-in counter")
    assert negative.since(negative.read()) is None


class _FakeNvml:
    """pynvml's calls the meter makes; ``energy`` is the counter (an exception: not supported)."""

    def __init__(self, energy) -> None:
        self.energy = energy
        self.shutdowns = 0

    def nvmlInit(self) -> None:
        pass

    def nvmlShutdown(self) -> None:
        self.shutdowns += 1

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        return index

    def nvmlDeviceGetName(self, handle: int) -> bytes:
        return b"NVIDIA H100 80GB HBM3"

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: int) -> int:
        if isinstance(self.energy, Exception):
            raise self.energy
        return next(self.energy)


def test_nvml_meter_reads_the_total_energy_counter_or_says_why_not() -> None:
    nvml = _FakeNvml(iter([10, 10, 70]))  # the first read checks that the counter exists
    with nvml_meter("cuda:0", nvml) as meter:
        assert meter.available and meter.source == "NVML total-energy counter, device 0 (NVIDIA H100 80GB HBM3)"
        assert meter.since(meter.read()) == 60.0
    assert nvml.shutdowns == 1
    unsupported = nvml_meter("cuda", _FakeNvml(RuntimeError("Not Supported")))  # before Volta
    assert not unsupported.available and unsupported.read() is None and unsupported.since(None) is None
    assert unsupported.describe().startswith("not captured: no NVML total-energy counter") and unsupported.lost == 0
    cpu = open_meter("cpu")
    assert cpu.describe() == "not captured: CPU run" and cpu.read() is None


def _with_energy(config: ConfigRun, energies: list[float | None]) -> ConfigRun:
    trials = tuple(msgspec.structs.replace(t, energy_mj=e) for t, e in zip(config.trials, energies, strict=True))
    return msgspec.structs.replace(config, trials=trials)


def test_energy_per_image_per_1000_images_and_mean_power() -> None:
    base = bench_result(trials=4)  # fp32 b1: 100..103 ms, fp32 b2: 180..183 ms
    b1 = _with_energy(base.configs[0], [30_000.0, 31_000.0, 29_000.0, 30_000.0])  # mJ per call
    b2 = _with_energy(base.configs[1], [50_000.0, None, 52_000.0, 54_000.0])  # one call not captured
    energy = energy_of(b1)
    assert energy.trials == 4 and energy.joules == pytest.approx(120.0)
    assert energy.joules_per_image == pytest.approx(30.0)
    assert energy.kwh_per_1000_images == pytest.approx(30.0 * 1000 / JOULES_PER_KWH)
    assert energy.seconds == pytest.approx(0.406) and energy.mean_watts == pytest.approx(120.0 / 0.406)
    batched = energy_of(b2)  # batch 2: three measured calls made six images
    assert batched.trials == 3 and batched.joules_per_image == pytest.approx(156.0 / 6)
    assert batched.seconds == pytest.approx((180 + 182 + 183) / 1000)
    assert energy_of(base.configs[0]) is None  # nothing captured
    failed = msgspec.structs.replace(b1, trials=tuple(msgspec.structs.replace(t, ok=False) for t in b1.trials))
    assert energy_of(failed) is None  # failed calls are not measurements


def test_the_summary_and_reports_show_energy_or_not_captured() -> None:
    base = bench_result(trials=4)
    priced = summarize_bench(base, ("test", 3.6, "stand-in"))
    assert all(c.energy is None for c in priced.configs) and priced.energy_source == "not captured"
    measured = msgspec.structs.replace(
        base,
        configs=(_with_energy(base.configs[0], [36_000.0] * 4), base.configs[1]),
        energy_source="stand-in counter",
    )
    summary = summarize_bench(measured, ("test", 3.6, "stand-in"))
    assert summary.configs[0].energy.joules_per_image == pytest.approx(36.0) and summary.configs[1].energy is None
    assert summary.energy_source == "stand-in counter"
    html = bench_html(measured, summary)
    assert 'id="energy"' in html and "stand-in counter" in html and "36" in html
    assert "not captured" in bench_html(base, priced)
    back = BenchResult.from_json(measured.with_summary(summary).to_json())  # the document keeps it
    assert back.configs[0].trials[0].energy_mj == 36_000.0 and back.summary.configs[0].energy is not None


def test_a_run_reads_the_counter_around_each_measured_call(monkeypatch: pytest.MonkeyPatch) -> None:
    """The runner reads the meter before and after every trial's call (not warm-ups): a stand-in counter that
    advances 1,000 mJ per read gives 1,000 mJ per trial."""
    from profkit.capture.bench import runner

    reads = iter(range(0, 10**9, 1_000))
    meter = EnergyMeter(lambda: next(reads), "stand-in counter")
    monkeypatch.setattr(runner, "open_meter", lambda device: meter)

    def load(model: str, dtype: str, device: str):
        def pipeline(**kwargs):
            return SimpleNamespace(images=[])

        return SimpleNamespace(pipeline=pipeline, load_seconds=0.0)

    monkeypatch.setattr(runner, "instrument", lambda *a, **k: _Nothing())
    settings = runner.BenchSettings(steps=1, warmup=2, trials=3, device="cpu", batches=(1, 2))
    result = runner.run_bench(settings, load=load)
    trials = result.trials()
    assert len(trials) == 6 and all(t.ok and t.energy_mj == 1_000.0 for t in trials)
    assert result.energy_source == "stand-in counter"
    energy = summarize_bench(result).configs[1].energy
    assert energy.trials == 3 and energy.joules_per_image == pytest.approx(0.5)  # 1 J per call of 2 images


class _Nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def test_trials_without_energy_load_from_files_written_before() -> None:
    trial = Trial.__struct_fields__
    assert "energy_mj" in trial
    old = bench_result(trials=1)
    assert BenchResult.from_json(old.to_json()).configs[0].trials[0].energy_mj is None
