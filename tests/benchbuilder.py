"""Benchmark result documents for tests, built from the typed model (no hand-written JSON)."""

from __future__ import annotations

from profkit.model.bench import BenchResult, BenchSettings, ConfigRun, Samples, Trial


def bench_result(trials: int = 4) -> BenchResult:
    """A small CPU result: fp32 at batch 1 and 2, ``trials`` trials each, slowly growing latencies."""

    def trial(config: str, index: int, ms: float) -> Trial:
        return Trial(
            config=config,
            round=index,
            order=index,
            ok=True,
            e2e_ms=ms,
            inference_ms=ms * 0.8,
            steps_ms=(ms * 0.4, ms * 0.4),
            stage_ms={"text_encoder": 1.0, "vae": ms * 0.1},
            started_s=float(index),
        )

    configs = tuple(
        ConfigRun(
            name=name,
            dtype="fp32",
            batch=batch,
            load_s=1.0,
            cold_call_s=2.0,
            warmup_s=(2.0,),
            trials=tuple(trial(name, i, base + i) for i in range(trials)),
        )
        for name, batch, base in (("fp32 b1", 1, 100.0), ("fp32 b2", 2, 180.0))
    )
    return BenchResult(
        created_at="2026-01-01T00:00:00+00:00",
        environment={"torch": "2.13.0", "diffusers": "0.42.1", "python": "3.11.7", "profkit": "0.1.0"},
        device_info={"type": "cpu", "name": "test CPU"},
        device="cpu",
        settings=BenchSettings(steps=2, warmup=1, trials=trials, batches=(1, 2), device="cpu"),
        status="complete",
        duration_s=10.0,
        peak_rss_mb=500.0,
        order=("fp32 b1", "fp32 b2") * trials,
        configs=configs,
        samples=Samples(
            t=(0.0, 0.05),
            label=("fp32 b1", "fp32 b2"),
            cpu_percent=(100.0, 150.0),
            rss_mb=(400.0, 410.0),
            gpu_source="not captured: CPU run",
        ),
    )
