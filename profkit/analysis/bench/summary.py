"""From a benchmark result (the JSON document, raw samples included) to the numbers reports show.

Everything here is recomputed from the raw trials, so a result file can be re-summarized, checked
against a baseline, or audited by hand. Pure functions: no timing, no printing.
"""

from __future__ import annotations

import importlib.resources
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from profkit.analysis.bench.stats import Change, MetricStats, compare_samples, describe
from profkit.errors import ConflictingSettings, SettingError

METRICS = {
    "e2e_ms": "end to end (pipeline call)",
    "inference_ms": "inference (denoise loop)",
    "step_ms": "per denoise step",
    "text_encoder_ms": "text encoders",
    "vae_ms": "VAE",
}
GATED_METRICS = ("e2e_ms", "inference_ms", "step_ms")
SATURATION_GAIN = 0.05  # a batch size that adds less than 5% images/s over the previous one


@dataclass
class Cost:
    source: str  # "--price-per-hour" or the instance name
    usd_per_hour: float
    detail: str  # gpu, region, price date
    usd_per_image: float
    usd_per_1000_images: float
    images_per_hour: float


@dataclass
class ConfigSummary:
    name: str
    dtype: str
    batch: int
    trials_ok: int
    trials_failed: int
    errors: list[str]
    load_s: float | None
    cold_call_s: float | None
    warmup_s: list[float]
    metrics: dict[str, MetricStats | None]
    per_step_p50_ms: list[float]  # median of each step index over trials
    images_per_s: float | None  # batch / median end-to-end time
    requests_per_s: float | None
    peak_allocated_mb: float | None
    peak_reserved_mb: float | None
    peak_rss_mb: float | None  # highest sampled process RSS while this configuration ran
    cpu_percent_mean: float | None
    gpu_util_mean: float | None
    gpu_power_w_mean: float | None
    cost: Cost | None = None


@dataclass
class SweepRow:
    dtype: str
    batch: int
    images_per_s: float | None
    gain: float | None  # relative to the previous batch size


@dataclass
class BenchSummary:
    status: str
    device: str
    configs: list[ConfigSummary]
    sweep: list[SweepRow]
    saturation: dict[str, str]  # dtype -> sentence
    timer_note: str
    warnings: list[str] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    threshold: float | None = None
    regressions: list[Change] = field(default_factory=list)
    baseline_differences: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------- prices


def load_prices(path: Path | None = None) -> dict[str, Any]:
    if path is None:
        data = importlib.resources.files("profkit.data").joinpath("prices.json").read_bytes()
        return orjson.loads(data)
    try:
        table = orjson.loads(Path(path).read_bytes())
    except (OSError, orjson.JSONDecodeError) as error:
        raise SettingError("price_table", f"{path}: cannot read it as JSON ({error})") from error
    if not isinstance(table, dict) or not isinstance(table.get("instances"), list):
        raise SettingError("price_table", f"{path}: expected {{'instances': [{{name, usd_per_hour, ...}}]}}")
    return table


def price_for(
    price_per_hour: float | None, instance: str | None, table: dict[str, Any] | None = None
) -> tuple[str, float, str] | None:
    """(source, USD/hour, detail) from --price-per-hour or --instance, or None."""
    if price_per_hour is not None and instance is not None:
        raise ConflictingSettings("price_per_hour", "instance")
    if price_per_hour is not None:
        if price_per_hour <= 0:
            raise SettingError("price_per_hour", f"must be positive (got {price_per_hour})")
        return "--price-per-hour", float(price_per_hour), "price given on the command line"
    if instance is None:
        return None
    table = table or load_prices()
    for row in table["instances"]:
        if row.get("name") == instance:
            detail = f"{row.get('gpu', '?')}, {row.get('region', '?')}, list price of {row.get('price_date', '?')}"
            return instance, float(row["usd_per_hour"]), detail
    names = ", ".join(str(row.get("name")) for row in table["instances"])
    raise SettingError(
        "instance",
        f"{instance}: not in the price table (known: {names}); or use {{price_per_hour}}",
        ("price_per_hour",),
    )


def cost_of(price: tuple[str, float, str], images_per_s: float) -> Cost:
    source, per_hour, detail = price
    per_image = per_hour / 3600.0 / images_per_s
    return Cost(source, per_hour, detail, per_image, per_image * 1000, images_per_s * 3600.0)


# ---------------------------------------------------------------- summaries


def _ok_trials(config: dict[str, Any]) -> list[dict[str, Any]]:
    return [t for t in config.get("trials", []) if t.get("ok")]


def metric_samples(config: dict[str, Any]) -> dict[str, list[float]]:
    """Raw samples of each metric of one configuration (steps of all trials pooled for step_ms)."""
    trials = _ok_trials(config)
    return {
        "e2e_ms": [t["e2e_ms"] for t in trials if t.get("e2e_ms") is not None],
        "inference_ms": [t["inference_ms"] for t in trials if t.get("inference_ms") is not None],
        "step_ms": [s for t in trials for s in t.get("steps_ms", [])],
        "text_encoder_ms": [t["stage_ms"]["text_encoder"] for t in trials if "text_encoder" in t.get("stage_ms", {})],
        "vae_ms": [t["stage_ms"]["vae"] for t in trials if "vae" in t.get("stage_ms", {})],
    }


def _mean(values: list[float]) -> float | None:
    data = np.asarray(values, dtype=np.float64)
    data = data[np.isfinite(data)]
    return float(data.mean()) if data.size else None


def _config_summary(
    config: dict[str, Any], samples: dict[str, Any], price: tuple[str, float, str] | None
) -> ConfigSummary:
    samples_by_metric = metric_samples(config)
    metrics = {name: describe(values) for name, values in samples_by_metric.items()}
    trials = _ok_trials(config)
    failed = [t for t in config.get("trials", []) if not t.get("ok")]
    steps = [t.get("steps_ms", []) for t in trials]
    width = max((len(s) for s in steps), default=0)
    per_step = [float(np.median([s[i] for s in steps if len(s) > i])) for i in range(width)]
    e2e = metrics["e2e_ms"]
    images_per_s = config["batch"] / (e2e.p50 / 1000.0) if e2e and e2e.p50 > 0 else None
    labels = np.asarray(samples.get("label", []), dtype=object)
    mine = labels == config["name"]

    def series(key: str) -> list[float]:
        values = samples.get(key) or []
        return list(np.asarray(values, dtype=np.float64)[mine[: len(values)]]) if len(values) == len(labels) else []

    peaks = [t.get("peak_allocated_mb") for t in trials if t.get("peak_allocated_mb") is not None]
    reserved = [t.get("peak_reserved_mb") for t in trials if t.get("peak_reserved_mb") is not None]
    rss = series("rss_mb")
    summary = ConfigSummary(
        name=config["name"],
        dtype=config["dtype"],
        batch=config["batch"],
        trials_ok=len(trials),
        trials_failed=len(failed),
        errors=[f"trial {t['round']}: {t.get('error')}" for t in failed]
        + ([config["error"]] if config.get("error") else []),
        load_s=config.get("load_s"),
        cold_call_s=config.get("cold_call_s"),
        warmup_s=list(config.get("warmup_s", [])),
        metrics=metrics,
        per_step_p50_ms=per_step,
        images_per_s=images_per_s,
        requests_per_s=images_per_s / config["batch"] if images_per_s else None,
        peak_allocated_mb=max(peaks) if peaks else None,
        peak_reserved_mb=max(reserved) if reserved else None,
        peak_rss_mb=max(rss) if rss else None,
        cpu_percent_mean=_mean(series("cpu_percent")),
        gpu_util_mean=_mean(series("gpu_util")),
        gpu_power_w_mean=_mean(series("gpu_power_w")),
    )
    if price is not None and images_per_s:
        summary.cost = cost_of(price, images_per_s)
    return summary


def _sweep(configs: list[ConfigSummary]) -> tuple[list[SweepRow], dict[str, str]]:
    rows: list[SweepRow] = []
    saturation: dict[str, str] = {}
    for dtype in dict.fromkeys(c.dtype for c in configs):
        mine = sorted((c for c in configs if c.dtype == dtype), key=lambda c: c.batch)
        previous = None
        for config in mine:
            gain = None
            if previous is not None and previous.images_per_s and config.images_per_s:
                gain = config.images_per_s / previous.images_per_s - 1
            rows.append(SweepRow(dtype, config.batch, config.images_per_s, gain))
            if gain is not None and gain < SATURATION_GAIN and dtype not in saturation:
                saturation[dtype] = (
                    f"{dtype}: throughput stops growing at batch {previous.batch} "
                    f"(batch {config.batch} adds {gain:+.0%} images/s)"
                )
            previous = config
        if len(mine) > 1 and dtype not in saturation:
            saturation[dtype] = f"{dtype}: throughput still grows at the largest batch tried ({mine[-1].batch})"
    return rows, saturation


def summarize_bench(
    result: dict[str, Any],
    price: tuple[str, float, str] | None = None,
    baseline: dict[str, Any] | None = None,
    threshold: float | None = None,
) -> BenchSummary:
    samples = result.get("samples", {})
    configs = [_config_summary(c, samples, price) for c in result.get("configs", [])]
    sweep, saturation = _sweep(configs)
    timers = {t.get("range_timer") for c in result.get("configs", []) for t in _ok_trials(c)}
    timer_note = (
        "Stage and step times are GPU times between CUDA events; end to end is the host clock around the call "
        "plus a device synchronization."
        if "cuda events" in timers
        else "All times are host wall-clock times (perf_counter) around the call and profkit's ranges."
    )
    summary = BenchSummary(
        result.get("status", "?"), str(result.get("device", "?")), configs, sweep, saturation, timer_note
    )
    if result.get("status") == "interrupted":
        summary.warnings.append("The run was interrupted: these are partial results.")
    for config in configs:
        for metric, stats in config.metrics.items():
            if stats is None or metric not in ("e2e_ms", "step_ms"):
                continue
            summary.warnings += [f"{config.name} {METRICS[metric]}: {w}" for w in stats.warnings]
        if config.trials_failed:
            summary.warnings.append(f"{config.name}: {config.trials_failed} trial(s) failed and are left out")
    if (result.get("device") or "").startswith("cpu") and any(c.dtype in ("fp16", "bf16") for c in configs):
        summary.warnings.append(
            "fp16/bf16 measured on a CPU: without native half-precision kernels they usually run several times "
            "slower than fp32 here; this says nothing about a GPU"
        )
    if baseline is not None:
        _compare(summary, result, baseline, threshold)
    return summary


def baseline_differences(result: dict[str, Any], baseline: dict[str, Any]) -> list[str]:
    """What makes two result files not comparable: hardware, software versions, benchmark settings."""
    differences = []
    env_a, env_b = baseline.get("environment", {}), result.get("environment", {})
    for key in ("torch", "diffusers", "transformers", "python", "platform"):
        if env_a.get(key) != env_b.get(key):
            differences.append(f"{key}: {env_a.get(key)} (baseline) vs {env_b.get(key)} (now)")
    dev_a, dev_b = baseline.get("device_info", {}), result.get("device_info", {})
    if dev_a.get("name") != dev_b.get("name"):
        differences.append(f"device: {dev_a.get('name')} (baseline) vs {dev_b.get('name')} (now)")
    set_a, set_b = baseline.get("settings", {}), result.get("settings", {})
    for key in ("model", "steps", "height", "width", "prompts", "seed", "guidance_scale"):
        if set_a.get(key) != set_b.get(key):
            differences.append(f"setting {key}: {set_a.get(key)} (baseline) vs {set_b.get(key)} (now)")
    return differences


def _compare(summary: BenchSummary, result: dict[str, Any], baseline: dict[str, Any], threshold: float | None) -> None:
    summary.threshold = threshold
    summary.baseline_differences = baseline_differences(result, baseline)
    base_configs = {c["name"]: c for c in baseline.get("configs", [])}
    for config in result.get("configs", []):
        other = base_configs.get(config["name"])
        if other is None:
            summary.warnings.append(f"{config['name']}: not in the baseline, not compared")
            continue
        now, before = metric_samples(config), metric_samples(other)
        for metric in METRICS:
            change = compare_samples(
                metric, config["name"], before[metric], now[metric], threshold if metric in GATED_METRICS else None
            )
            if change is not None:
                summary.changes.append(change)
    summary.regressions = [c for c in summary.changes if c.regressed]
