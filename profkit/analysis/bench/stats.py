"""Statistics of benchmark samples: percentiles with honest caveats, a CI for the median, A-vs-B tests.

* Percentiles use linear interpolation (numpy's default). A percentile is only *reported as reliable*
  when the sample has enough points beyond it: P90 needs 10, P95 20, P99 100 samples
  (:data:`MIN_SAMPLES`); below that the value is still given, with a warning.
* The median's confidence interval is distribution-free: the order statistics whose ranks come from
  the binomial(n, 1/2) distribution (no normality assumption; exact for continuous data).
* Two samples are compared with the Mann-Whitney U test (two-sided), robust to the long right tails
  latency samples have.
"""

from __future__ import annotations

import numpy as np

from profkit.model.bench import Change, MetricStats

PERCENTILES = (50, 90, 95, 99)
MIN_SAMPLES = {50: 1, 90: 10, 95: 20, 99: 100}
CV_WARNING = 0.10
CONFIDENCE = 0.95
SIGNIFICANCE = 0.05


def median_ci(values: np.ndarray, confidence: float = CONFIDENCE) -> tuple[tuple[float, float], float] | None:
    """Distribution-free CI of the median from order statistics; returns ((low, high), achieved level)."""
    data = np.sort(np.asarray(values, dtype=np.float64))
    n = data.size
    if n < 3:
        return None
    # [x_(k), x_(n-1-k)] (0-based order statistics) holds the median unless k or fewer samples fall on
    # one side of it: coverage P(k+1 <= B <= n-1-k), B ~ Binomial(n, 1/2). Take the largest such k.
    from scipy import stats as scipy_stats  # lazy: scipy is slow to import

    best = None
    for k in range(0, n // 2):
        level = float(scipy_stats.binom.cdf(n - 1 - k, n, 0.5) - scipy_stats.binom.cdf(k, n, 0.5))
        if level >= confidence:
            best = (k, level)
        else:
            break
    if best is None:  # not even the full range reaches the level: report the range with its coverage
        level = float(1 - 2 * 0.5**n)
        return (float(data[0]), float(data[-1])), level
    k, level = best
    return (float(data[k]), float(data[n - 1 - k])), level


def describe(values: list[float] | np.ndarray, unit: str = "ms") -> MetricStats | None:
    data = np.asarray(values, dtype=np.float64)
    data = data[np.isfinite(data)]
    if data.size == 0:
        return None
    mean = float(data.mean())
    std = float(data.std(ddof=1)) if data.size > 1 else 0.0
    p50, p90, p95, p99 = (float(v) for v in np.percentile(data, PERCENTILES))
    cv = std / mean if mean else 0.0
    ci = median_ci(data)
    warnings = []
    if cv > CV_WARNING:
        warnings.append(f"large spread: CV {cv:.0%} > {CV_WARNING:.0%}; the machine was noisy or the runs differ")
    short = [p for p in PERCENTILES if data.size < MIN_SAMPLES[p]]
    if short:
        names = ", ".join(f"P{p}" for p in short)
        need = MIN_SAMPLES[short[-1]]
        warnings.append(
            f"{names} from {data.size} samples {'is' if len(short) == 1 else 'are'} not reliable "
            f"(P{short[-1]} needs at least {need}); treat as the observed maximum region, not a tail estimate"
        )
    return MetricStats(
        count=int(data.size),
        mean=mean,
        std=std,
        cv=cv,
        min=float(data.min()),
        p50=p50,
        p90=p90,
        p95=p95,
        p99=p99,
        max=float(data.max()),
        median_ci=ci[0] if ci else None,
        median_ci_level=ci[1] if ci else None,
        warnings=tuple(warnings),
    )


def compare_samples(
    metric: str, config: str, baseline: list[float], current: list[float], threshold: float | None = None
) -> Change | None:
    a = np.asarray(baseline, dtype=np.float64)
    b = np.asarray(current, dtype=np.float64)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if a.size == 0 or b.size == 0:
        return None
    base, now = float(np.median(a)), float(np.median(b))
    p_value = None
    if a.size >= 2 and b.size >= 2 and not (np.all(a == a[0]) and np.all(b == a[0])):
        from scipy import stats as scipy_stats

        p_value = float(scipy_stats.mannwhitneyu(a, b, alternative="two-sided").pvalue)
    change = (now - base) / base if base else 0.0
    significant = p_value is not None and p_value < SIGNIFICANCE
    regressed = threshold is not None and significant and change > threshold
    return Change(
        metric=metric,
        config=config,
        baseline_median=base,
        current_median=now,
        change=change,
        p_value=p_value,
        significant=significant,
        regressed=regressed,
    )
