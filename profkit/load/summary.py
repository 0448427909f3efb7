"""Pure arithmetic of a load test: per-level numbers from raw samples, the stop rule, knee, goodput, cost."""

from __future__ import annotations

from collections import Counter
from typing import Any

from profkit.model.load import LoadLevel

#: throughput must rise by at least this share from one level to the next, or the ramp has plateaued.
PLATEAU_GAIN = 0.05


def level_from_samples(samples: list[list[Any]], duration_s: float, users: int | None, rate: float | None) -> LoadLevel:
    """A :class:`LoadLevel` from worker samples ``[sent_s, latency_ms, status, error, images, phases]``."""
    from profkit.analysis.bench.stats import describe

    ok = [s for s in samples if not s[3]]
    errors = Counter(s[3] for s in samples if s[3])
    duration = max(duration_s, 1e-9)
    phases: dict[str, list[float]] = {}
    for sample in ok:
        for name, value in sample[5].items():
            phases.setdefault(name, []).append(float(value))
    means = {name: sum(values) / len(values) for name, values in phases.items()}
    latency = describe([s[1] for s in ok]) if ok else None
    server = means.get("total")
    return LoadLevel(
        users=users,
        rate=rate,
        duration_s=duration_s,
        requests=len(samples),
        ok=len(ok),
        rps=len(ok) / duration,
        images_per_s=sum(s[4] for s in ok) / duration,
        error_rate=(len(samples) - len(ok)) / len(samples) if samples else 0.0,
        errors=dict(errors),
        latency=latency,
        server_phases_ms={name: means[name] for name in sorted(means) if name != "total"},
        server_ms=server,
        outside_server_ms=(latency.mean - server) if latency is not None and server is not None else None,
    )


def stop_reason(levels: list[LoadLevel], slo_ms: float | None, max_error_rate: float) -> str:
    """Why the ramp stops after the last level ("" to go on): P95 over the SLO, errors, or a throughput plateau."""
    last = levels[-1]
    if last.error_rate > max_error_rate:
        return f"error rate {last.error_rate:.1%} > {max_error_rate:.1%}"
    if slo_ms is not None and last.latency is not None and last.latency.p95 > slo_ms:
        return f"P95 {last.latency.p95:.1f} ms > SLO {slo_ms:g} ms"
    if len(levels) >= 2 and last.rps < levels[-2].rps * (1 + PLATEAU_GAIN):
        return f"throughput plateau ({last.rps:.1f} req/s after {levels[-2].rps:.1f})"
    return ""


def knee(levels: list[LoadLevel]) -> int | None:
    """Index of the knee of the latency-throughput curve: the last level before latency grows faster than
    throughput (the level with the most throughput per unit of P50 latency, i.e. the best ``rps / latency``)."""
    scored = [(lvl.rps / lvl.latency.p50, i) for i, lvl in enumerate(levels) if lvl.latency and lvl.latency.p50 > 0]
    return max(scored)[1] if scored else None


def goodput(levels: list[LoadLevel], slo_ms: float | None, max_error_rate: float) -> LoadLevel | None:
    """The level with the most throughput whose P95 meets the SLO (any P95 when no SLO) and errors are in bounds."""
    good = [
        lvl
        for lvl in levels
        if lvl.latency is not None
        and lvl.error_rate <= max_error_rate
        and (slo_ms is None or lvl.latency.p95 <= slo_ms)
    ]
    return max(good, key=lambda lvl: lvl.rps) if good else None


def cost_per_image(images_per_s: float | None, usd_per_hour: float | None) -> float | None:
    if not images_per_s or usd_per_hour is None:
        return None
    return usd_per_hour / 3600.0 / images_per_s
