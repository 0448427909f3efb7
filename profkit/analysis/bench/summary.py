"""From a benchmark result document (raw trials and samples) to the numbers reports show.

Everything here is recomputed from the raw trials, so a result file can be re-summarized, checked
against a baseline, or audited by hand; a stored summary that disagrees with its trials is named
(:func:`stored_summary_problems`) and said in the warnings. Pure functions: no timing, no printing, no
files (the price comes in as a value: ``app.prices``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from profkit.analysis.bench.energy import energy_of, energy_source
from profkit.analysis.bench.stats import compare_samples, describe
from profkit.model import compat
from profkit.model.bench import (
    TRIAL_INTERRUPTED,
    BenchResult,
    BenchSummary,
    Change,
    ConfigRun,
    ConfigSummary,
    Cost,
    Samples,
    SweepRow,
    Trial,
)
from profkit.model.capture import CUDA_MEMORY_SOURCE, NOT_CAPTURED, NOT_CAPTURED_CPU

METRICS = {
    "e2e_ms": "end to end (pipeline call)",
    "inference_ms": "inference (denoise loop)",
    "step_ms": "per denoise step",
    "text_encoder_ms": "text encoders",
    "vae_ms": "VAE",
}
GATED_METRICS = ("e2e_ms", "inference_ms", "step_ms")
SATURATION_GAIN = 0.05  # a batch size that adds less than 5% images/s over the previous one
#: Statistics a stored summary must share with its raw trials (any implementation computes them alike).
AUDITED_STATS = ("count", "min", "p50", "mean", "max")
STORED_TOLERANCE = 1e-6  # relative


def cost_of(price: tuple[str, float, str], images_per_s: float) -> Cost:
    source, per_hour, detail = price
    per_image = per_hour / 3600.0 / images_per_s
    return Cost(
        source=source,
        usd_per_hour=per_hour,
        detail=detail,
        usd_per_image=per_image,
        usd_per_1000_images=per_image * 1000,
        images_per_hour=images_per_s * 3600.0,
    )


# ---------------------------------------------------------------- summaries


def _ok_trials(config: ConfigRun) -> list[Trial]:
    return [t for t in config.trials if t.ok]


def metric_samples(config: ConfigRun) -> dict[str, list[float]]:
    """Raw samples of each metric of one configuration (steps of all trials pooled for step_ms)."""
    trials = _ok_trials(config)
    return {
        "e2e_ms": [t.e2e_ms for t in trials if t.e2e_ms is not None],
        "inference_ms": [t.inference_ms for t in trials if t.inference_ms is not None],
        "step_ms": [s for t in trials for s in t.steps_ms],
        "text_encoder_ms": [t.stage_ms["text_encoder"] for t in trials if "text_encoder" in t.stage_ms],
        "vae_ms": [t.stage_ms["vae"] for t in trials if "vae" in t.stage_ms],
    }


def _mean(values: list[float]) -> float | None:
    data = np.asarray(values, dtype=np.float64)  # None (a failed read) becomes NaN
    data = data[np.isfinite(data)]
    return float(data.mean()) if data.size else None


def stage_peaks(config: ConfigRun) -> dict[str, float]:
    """Stage -> the highest peak allocated MiB of that stage over the successful trials."""
    peaks: dict[str, float] = {}
    for trial in _ok_trials(config):
        for stage, value in trial.stage_peak_allocated_mb.items():
            peaks[stage] = max(peaks.get(stage, 0.0), value)
    return peaks


def _memory_source(config: ConfigRun, device: str) -> str:
    if any(t.stage_peak_allocated_mb for t in config.trials):
        return CUDA_MEMORY_SOURCE
    return NOT_CAPTURED_CPU if device.startswith("cpu") else NOT_CAPTURED


def group_label(config: ConfigRun | ConfigSummary) -> str:
    """What a configuration is besides its batch (the batch-sweep groups): ``"fp16"``, ``"fp16 20steps cl"``."""
    return " ".join(part for part in config.name.split(" ") if part != f"b{config.batch}")


def _setting_values(config: ConfigRun) -> dict[str, Any]:
    return {**compat.flat_settings({"knobs": config.knobs}, config.dtype), "steps": config.steps}


def isolation(configs: tuple[ConfigRun, ...]) -> tuple[dict[str, list[tuple[str, Any, Any]]], list[str]]:
    """Per configuration, the settings that differ from the first configuration of the same batch; and a warning
    for each that differs in more than one (its effect cannot be put on any one of them)."""
    firsts: dict[int, ConfigRun] = {}
    differences: dict[str, list[tuple[str, Any, Any]]] = {}
    warnings = []
    for config in configs:
        first = firsts.setdefault(config.batch, config)
        if first is config:
            continue
        found = compat.differing(_setting_values(first), _setting_values(config))
        if config.steps is not None:  # listed for results written with knobs (older files keep their summary)
            differences[config.name] = found
        warning = compat.isolation_warning(found, f"{first.name} and {config.name}")
        if warning is not None:
            warnings.append(warning)
    return differences, warnings


def _config_summary(
    config: ConfigRun,
    samples: Samples,
    price: tuple[str, float, str] | None,
    device: str = "",
    differences: list[tuple[str, Any, Any]] | None = None,
) -> ConfigSummary:
    metrics = {name: describe(values) for name, values in metric_samples(config).items()}
    trials = _ok_trials(config)
    failed = [t for t in config.trials if not t.ok and t.error != TRIAL_INTERRUPTED]
    interrupted = [t for t in config.trials if not t.ok and t.error == TRIAL_INTERRUPTED]
    steps = [t.steps_ms for t in trials]
    width = max((len(s) for s in steps), default=0)
    per_step = tuple(float(np.median([s[i] for s in steps if len(s) > i])) for i in range(width))
    e2e = metrics["e2e_ms"]
    images_per_s = config.batch / (e2e.p50 / 1000.0) if e2e and e2e.p50 > 0 else None
    labels = np.asarray(samples.label, dtype=object)
    mine = labels == config.name

    def series(values: tuple[float | None, ...]) -> list[float]:
        return list(np.asarray(values, dtype=np.float64)[mine]) if len(values) == len(labels) else []

    peaks = [t.peak_allocated_mb for t in trials if t.peak_allocated_mb is not None]
    reserved = [t.peak_reserved_mb for t in trials if t.peak_reserved_mb is not None]
    rss = series(samples.rss_mb)
    return ConfigSummary(
        name=config.name,
        dtype=config.dtype,
        batch=config.batch,
        steps=config.steps,
        knobs=config.knobs,
        compile_s=config.compile_s,
        stage_peak_allocated_mb=stage_peaks(config),
        memory_source=_memory_source(config, device),
        differs_from_first=tuple(f"{key}: {a} vs {b}" for key, a, b in differences or ()),
        auto_batch=config.batch if config.batch_search else None,
        trials_ok=len(trials),
        trials_failed=len(failed),
        trials_interrupted=len(interrupted),
        errors=tuple(f"trial {t.round}: {t.error}" for t in failed) + ((config.error,) if config.error else ()),
        load_s=config.load_s,
        cold_call_s=config.cold_call_s,
        warmup_s=config.warmup_s,
        metrics=metrics,
        per_step_p50_ms=per_step,
        images_per_s=images_per_s,
        requests_per_s=images_per_s / config.batch if images_per_s else None,
        peak_allocated_mb=max(peaks) if peaks else None,
        peak_reserved_mb=max(reserved) if reserved else None,
        peak_rss_mb=float(max(rss)) if rss else None,
        cpu_percent_mean=_mean(series(samples.cpu_percent)),
        gpu_util_mean=_mean(series(samples.gpu_util)),
        gpu_power_w_mean=_mean(series(samples.gpu_power_w)),
        cost=cost_of(price, images_per_s) if price is not None and images_per_s else None,
        energy=energy_of(config),
    )


def _differs(stored: float, fresh: float) -> bool:
    return abs(stored - fresh) > STORED_TOLERANCE * max(abs(stored), abs(fresh), 1e-9)


def _config_problems(kept: ConfigSummary, fresh: ConfigSummary) -> list[str]:
    """How one configuration's stored summary differs from the one its trials give."""
    problems = []
    kept_not_ok, fresh_not_ok = (s.trials_failed + s.trials_interrupted for s in (kept, fresh))
    if (kept.trials_ok, kept_not_ok) != (fresh.trials_ok, fresh_not_ok):  # older files count the cut one as failed
        problems.append(
            f"{kept.name}: the summary counts {kept.trials_ok} ok and {kept_not_ok} failed trials, the trials "
            f"{fresh.trials_ok} and {fresh_not_ok}"
        )
    for metric, stats in fresh.metrics.items():
        if metric not in kept.metrics:
            continue  # written by a profkit that did not summarize this metric
        stored = kept.metrics[metric]
        if stored is None or stats is None:
            if stored is not stats:
                problems.append(
                    f"{kept.name} {metric}: statistics {'missing' if stored is None else 'stored'} "
                    f"for {stats.count if stats else 0} samples"
                )
            continue
        key = next((key for key in AUDITED_STATS if _differs(getattr(stored, key), getattr(stats, key))), None)
        if key is not None:
            stored_value, value = getattr(stored, key), getattr(stats, key)
            problems.append(f"{kept.name} {metric} {key}: stored {stored_value:.6g}, the trials give {value:.6g}")
    return problems


def stored_summary_problems(result: BenchResult) -> list[str]:
    """Where the summary stored in a result disagrees with the statistics of its own raw trials (a file edited by
    hand, or truncated); empty when it agrees or none is stored."""
    stored = result.summary
    if stored is None:
        return []
    problems = []
    if stored.status != result.status:
        problems.append(f"status: the summary says {stored.status!r}, the result {result.status!r}")
    kept = {c.name: c for c in stored.configs}
    fresh = {c.name: _config_summary(c, result.samples, None) for c in result.configs}
    for name in dict.fromkeys([*kept, *fresh]):
        if name not in fresh:
            problems.append(f"{name}: in the summary, not among the trials")
        elif name not in kept:
            problems.append(f"{name}: among the trials, not in the summary")
        else:
            problems += _config_problems(kept[name], fresh[name])
    return problems


def _trust_warnings(result: BenchResult, baseline: BenchResult | None) -> list[str]:
    """What the reader must know before trusting the numbers: partial runs, stored summaries that disagree."""
    warnings = []
    for what, document in (("this result", result), ("the baseline", baseline)):
        if document is None:
            continue
        if document is baseline and document.status == "interrupted":
            warnings.append("The baseline run was interrupted: its results are partial.")
        problems = stored_summary_problems(document)
        if problems:
            more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
            warnings.append(
                f"The summary stored in {what} disagrees with its raw trials ({'; '.join(problems[:3])}{more}): "
                "every number here is recomputed from the trials"
            )
    return warnings


def _sweep(configs: list[ConfigSummary]) -> tuple[list[SweepRow], dict[str, str]]:
    rows: list[SweepRow] = []
    saturation: dict[str, str] = {}
    for dtype in dict.fromkeys(group_label(c) for c in configs):  # the dtype, with steps and knobs when varied
        mine = sorted((c for c in configs if group_label(c) == dtype), key=lambda c: c.batch)
        previous = None
        for config in mine:
            gain = None
            if previous is not None and previous.images_per_s and config.images_per_s:
                gain = config.images_per_s / previous.images_per_s - 1
            rows.append(SweepRow(dtype=dtype, batch=config.batch, images_per_s=config.images_per_s, gain=gain))
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
    result: BenchResult,
    price: tuple[str, float, str] | None = None,
    baseline: BenchResult | None = None,
    threshold: float | None = None,
) -> BenchSummary:
    differences, isolation_warnings = isolation(result.configs)
    configs = [
        _config_summary(c, result.samples, price, result.device, differences.get(c.name)) for c in result.configs
    ]
    sweep, saturation = _sweep(configs)
    timers = {t.range_timer for c in result.configs for t in _ok_trials(c)}
    timer_note = (
        "Stage and step times are GPU times between CUDA events; end to end is the host clock around the call "
        "plus a device synchronization."
        if "cuda events" in timers
        else "All times are host wall-clock times (perf_counter) around the call and profkit's ranges."
    )
    warnings: list[str] = []
    if result.status == "interrupted":
        warnings.append("The run was interrupted: these are partial results.")
    warnings += _trust_warnings(result, baseline)
    warnings += isolation_warnings
    for config in configs:
        for metric, stats in config.metrics.items():
            if stats is None or metric not in ("e2e_ms", "step_ms"):
                continue
            warnings += [f"{config.name} {METRICS[metric]}: {w}" for w in stats.warnings]
        if config.trials_failed:
            warnings.append(f"{config.name}: {config.trials_failed} trial(s) failed and are left out")
        if config.trials_interrupted:
            warnings.append(f"{config.name}: the trial cut by the interruption is left out (not a failure)")
    if result.device.startswith("cpu") and any(c.dtype in ("fp16", "bf16") for c in configs):
        warnings.append(
            "fp16/bf16 measured on a CPU: without native half-precision kernels they usually run several times "
            "slower than fp32 here; this says nothing about a GPU"
        )
    changes: list[Change] = []
    differences: list[str] = []
    if baseline is not None:
        differences = baseline_differences(result, baseline)
        changes = _changes(result, baseline, threshold, warnings)
    return BenchSummary(
        status=result.status,
        device=result.device,
        configs=tuple(configs),
        sweep=tuple(sweep),
        saturation=saturation,
        timer_note=timer_note,
        warnings=tuple(warnings),
        changes=tuple(changes),
        threshold=threshold if baseline is not None else None,
        regressions=tuple(c for c in changes if c.regressed),
        baseline_differences=tuple(differences),
        energy_source=energy_source(result),
    )


def _setup(result: BenchResult) -> dict[str, Any]:
    return {"environment": result.environment, "device": result.device_info, "settings": result.settings}


def baseline_differences(result: BenchResult, baseline: BenchResult) -> list[str]:
    """What makes two result files not comparable: hardware, software versions, benchmark settings."""
    return compat.baseline_differences(_setup(baseline), _setup(result))


def _changes(result: BenchResult, baseline: BenchResult, threshold: float | None, warnings: list[str]) -> list[Change]:
    base_configs = {c.name: c for c in baseline.configs}
    changes = []
    for config in result.configs:
        other = base_configs.get(config.name)
        if other is None:
            warnings.append(f"{config.name}: not in the baseline, not compared")
            continue
        now, before = metric_samples(config), metric_samples(other)
        for metric in METRICS:
            change = compare_samples(
                metric, config.name, before[metric], now[metric], threshold if metric in GATED_METRICS else None
            )
            if change is not None:
                changes.append(change)
    return changes
