"""Bench results over time -> a :class:`~profkit.model.history.History`: trends per configuration, environment
changes marked, regressions judged by the test ``check`` uses (pure: results in, document out)."""

from __future__ import annotations

import msgspec

from profkit.analysis.bench.stats import compare_samples
from profkit.analysis.bench.summary import metric_samples, summarize_bench
from profkit.model.bench import BenchResult
from profkit.model.history import History, HistoryPoint, HistoryRun, HistorySeries

#: Environment facts whose change is marked on the time axis (they change speed by themselves).
ENVIRONMENT_KEYS = ("torch", "diffusers", "transformers", "python", "profkit")
DEVICE_KEYS = ("name", "driver", "cuda_runtime", "cudnn", "count")


class CollectedRun(msgspec.Struct, frozen=True):
    """One result file as found: where, when (and how that time is known), the result."""

    source: str
    recorded_at: str
    time_source: str
    result: BenchResult


def _environment(result: BenchResult) -> dict[str, str]:
    facts = {key: str(result.environment[key]) for key in ENVIRONMENT_KEYS if result.environment.get(key)}
    for key in DEVICE_KEYS:
        if result.device_info.get(key) not in (None, ""):
            facts[f"device {key}" if key != "name" else "device"] = str(result.device_info[key])
    return facts


def _changes(before: dict[str, str], now: dict[str, str]) -> tuple[str, ...]:
    keys = sorted(set(before) | set(now))
    return tuple(
        f"{key} {before.get(key, 'not recorded')} -> {now.get(key, 'not recorded')}"
        for key in keys
        if before.get(key) != now.get(key)
    )


def build_history(folder: str, runs: list[CollectedRun], threshold: float | None, skipped: list[str]) -> History:
    """``runs`` in any order -> the history, oldest first; each configuration compared with its previous run."""
    ordered = sorted(runs, key=lambda run: (run.recorded_at, run.source))
    history_runs: list[HistoryRun] = []
    previous_env: dict[str, str] | None = None
    points: dict[str, list[HistoryPoint]] = {}
    last_samples: dict[str, list[float]] = {}
    for index, run in enumerate(ordered):
        result = run.result
        env = _environment(result)
        history_runs.append(
            HistoryRun(
                source=run.source,
                recorded_at=run.recorded_at,
                time_source=run.time_source,
                commit=result.environment.get("git_commit") or None,
                device=str(result.device_info.get("name") or result.device),
                environment=env,
                environment_changes=_changes(previous_env, env) if previous_env is not None else (),
            )
        )
        previous_env = env
        summary = result.summary or summarize_bench(result)
        by_name = {c.name: c for c in summary.configs}
        for config in result.configs:
            key = f"{result.settings.model} {config.name}"
            stats = by_name.get(config.name)
            e2e = stats.metrics.get("e2e_ms") if stats else None
            samples = metric_samples(config)["e2e_ms"]
            change = None
            if key in last_samples and samples:
                change = compare_samples("e2e_ms", config.name, last_samples[key], samples, threshold)
            if samples:
                last_samples[key] = samples
            points.setdefault(key, []).append(
                HistoryPoint(
                    run=index,
                    p50_ms=e2e.p50 if e2e else None,
                    p95_ms=e2e.p95 if e2e else None,
                    images_per_s=stats.images_per_s if stats else None,
                    peak_allocated_mb=stats.peak_allocated_mb if stats else None,
                    usd_per_1000_images=stats.cost.usd_per_1000_images if stats and stats.cost else None,
                    trials_ok=stats.trials_ok if stats else 0,
                    change=change.change if change else None,
                    p_value=change.p_value if change else None,
                    significant=bool(change and change.significant),
                    regressed=bool(change and change.regressed),
                )
            )
    return History(
        folder=folder,
        threshold=threshold,
        runs=tuple(history_runs),
        series=tuple(HistorySeries(config=key, points=tuple(values)) for key, values in sorted(points.items())),
        skipped=tuple(skipped),
    )
