"""The sentence a report leads with: which configuration is faster, by how much, with a confidence interval of the
ratio (bootstrap), and the caveats grouped under it, each once."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

if TYPE_CHECKING:  # the bench summary pulls in scipy
    from profkit.model.bench import BenchResult, BenchSummary

#: Resamples of the bootstrap and its level; a fixed seed makes a report reproducible.
BOOTSTRAP_RESAMPLES = 2000
CI_LEVEL = 0.95
CI_LABEL = "95% bootstrap CI"


def ratio_ci(base: list[float], other: list[float], seed: int = 0) -> tuple[float, float] | None:
    """95% percentile-bootstrap interval of ``median(other) / median(base)``; ``None`` below 3 samples a side."""
    if len(base) < 3 or len(other) < 3:
        return None
    import numpy as np

    rng = np.random.default_rng(seed)
    a, b = np.asarray(base, dtype=float), np.asarray(other, dtype=float)
    med_a = np.median(a[rng.integers(0, len(a), (BOOTSTRAP_RESAMPLES, len(a)))], axis=1)
    med_b = np.median(b[rng.integers(0, len(b), (BOOTSTRAP_RESAMPLES, len(b)))], axis=1)
    ratios = med_b / med_a
    tail = (1 - CI_LEVEL) / 2 * 100
    low, high = np.percentile(ratios, [tail, 100 - tail])
    return float(low), float(high)


class Versus(msgspec.Struct):
    """One configuration against the first: its median time per image over the first's (above 1: slower)."""

    name: str
    base: str
    median_ms: float
    base_median_ms: float
    ratio: float
    ci: tuple[float, float] | None
    word: str  # "slower" | "faster" | "no clear difference"
    ci_label: str = CI_LABEL

    @property
    def sentence(self) -> str:
        times = f"median {self.median_ms:.1f} ms vs {self.base_median_ms:.1f} ms"
        ci = f" ({self.ci_label} {self.ci[0]:.2f}–{self.ci[1]:.2f}x)" if self.ci else " (no CI: fewer than 3 trials)"
        if self.word == "slower":
            return f"{self.name} is SLOWER than {self.base}: {times}, {self.ratio:.2f}x the time{ci}."
        if self.word == "faster":
            return f"{self.name} is faster than {self.base}: {times}, {1 / self.ratio:.2f}x speedup{ci}."
        return f"{self.name} and {self.base} take the same time within noise: {times}, ratio {self.ratio:.2f}x{ci}."


class BenchVerdict(msgspec.Struct):
    headline: str  # the first sentence: the fastest configuration
    versus: list[Versus] = []
    per_image: bool = False  # batches differ: compared per image


def bench_verdict(result: BenchResult, summary: BenchSummary) -> BenchVerdict | None:
    """The fastest configuration by median end-to-end time per image, and every other one against the first."""
    from profkit.analysis.bench.summary import metric_samples

    batches = {c.name: c.batch for c in summary.configs}
    per_image = len(set(batches.values())) > 1
    samples = {
        c.name: [v / batches.get(c.name, 1) for v in metric_samples(c)["e2e_ms"]]
        for c in result.configs
        if metric_samples(c)["e2e_ms"]
    }
    if not samples:
        return None
    import numpy as np

    medians = {name: float(np.median(values)) for name, values in samples.items()}
    fastest = min(medians, key=medians.__getitem__)
    unit = "ms per image" if per_image else "ms end to end"
    headline = f"Fastest: {fastest}, median {medians[fastest]:.1f} {unit}"
    if len(medians) == 1:
        return BenchVerdict(headline + ".", [], per_image)
    base, *others = list(medians)
    versus = []
    for name in others:
        ratio = medians[name] / medians[base]
        ci = ratio_ci(samples[base], samples[name])
        versus.append(Versus(name, base, medians[name], medians[base], ratio, ci, _word(ratio, ci)))
    return BenchVerdict(headline + ".", versus, per_image)


def _word(ratio: float, ci: tuple[float, float] | None) -> str:
    if ci is not None:
        return "slower" if ci[0] > 1 else ("faster" if ci[1] < 1 else "no clear difference")
    return "slower" if ratio > 1.02 else ("faster" if ratio < 0.98 else "no clear difference")


def summary_verdict(summary: BenchSummary) -> BenchVerdict | None:
    """:func:`bench_verdict` from a stored summary alone (no trials at hand): the ratio's interval is bounded by the
    medians' own confidence intervals (``low_b / high_a`` to ``high_b / low_a``, conservative), labelled so."""
    configs = [c for c in summary.configs if c.metrics.get("e2e_ms") is not None]
    if not configs:
        return None
    per_image = len({c.batch for c in configs}) > 1
    medians = {c.name: c.metrics["e2e_ms"].p50 / c.batch for c in configs}
    fastest = min(medians, key=medians.__getitem__)
    unit = "ms per image" if per_image else "ms end to end"
    base, *others = configs
    versus = []
    for config in others:
        ratio = medians[config.name] / medians[base.name]
        a, b = base.metrics["e2e_ms"].median_ci, config.metrics["e2e_ms"].median_ci
        ci = (b[0] / a[1], b[1] / a[0]) if a and b and a[0] > 0 else None
        versus.append(
            Versus(
                config.name,
                base.name,
                medians[config.name],
                medians[base.name],
                ratio,
                ci,
                _word(ratio, ci),
                "interval from the medians' CIs",
            )
        )
    return BenchVerdict(f"Fastest: {fastest}, median {medians[fastest]:.1f} {unit}.", versus, per_image)


def step_speedup_ci(a_us: list[float], b_us: list[float]) -> tuple[float, float, float] | None:
    """The median step's speedup ``median(A) / median(B)`` (above 1: B faster) and its 95% bootstrap interval."""
    ci = ratio_ci(b_us, a_us, seed=1)
    if ci is None:
        return None
    import numpy as np

    return float(np.median(a_us) / np.median(b_us)), ci[0], ci[1]


#: Caveat groups, in display order: a warning goes to the first group one of whose words it contains; the last
#: group takes the rest.
CAVEAT_GROUPS = {
    "Cost": ("priced as", "GPUs and the run used one", "price"),
    "Trust": ("disagrees", "interrupted", "partial", "altered"),
    "Statistics": ("P99", "P95", "P90", "spread", "CV ", "samples"),
    "Setup": (),
}


def group_caveats(warnings: list[str] | tuple[str, ...]) -> dict[str, list[str]]:
    """Warnings grouped by :data:`CAVEAT_GROUPS`, each once (first occurrence kept), empty groups left out."""
    groups: dict[str, list[str]] = {name: [] for name in CAVEAT_GROUPS}
    for warning in _merge_subjects(warnings):
        name = next((g for g, words in CAVEAT_GROUPS.items() if any(w in warning for w in words)), "Setup")
        groups[name].append(warning)
    return {name: items for name, items in groups.items() if items}


def _merge_subjects(warnings: list[str] | tuple[str, ...]) -> list[str]:
    """``"a: same text"`` and ``"b: same text"`` -> ``"a; b: same text"`` (one line per problem), duplicates once."""
    subjects: dict[str, list[str]] = {}
    for warning in dict.fromkeys(warnings):
        subject, sep, rest = warning.partition(": ")
        key = rest if sep and len(subject) < 60 else warning
        subjects.setdefault(key, []).append(subject if sep and len(subject) < 60 else "")
    return [f"{'; '.join(names)}: {text}" if any(names) else text for text, names in subjects.items()]
