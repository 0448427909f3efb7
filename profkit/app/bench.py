"""`profkit bench` and `profkit check`: run or load results, summarize, compare, write every output."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from profkit.app.prices import Price, load_prices, price_for
from profkit.errors import EXIT_RUN_FAILED, Interrupted, ProfkitError, SettingError, SetupMismatch
from profkit.jsonio import check_writable
from profkit.model.bench import BenchResult, BenchSettings, BenchSummary

if TYPE_CHECKING:
    from profkit.capture.progress import Progress

RESULT_FILE = "bench.json"
OUTPUT_FILES = {"json": RESULT_FILE, "trials_csv": "trials.csv", "stats_csv": "stats.csv", "html": "bench.html"}


@dataclass
class CostOptions:
    price_per_hour: float | None = None
    instance: str | None = None
    price_table: Path | None = None

    def price(self) -> Price | None:
        table = load_prices(self.price_table) if self.price_table else None
        return price_for(self.price_per_hour, self.instance, table)


@dataclass
class GateOptions:
    baseline: Path | None = None
    fail_if_slower: float | None = None  # percent
    force: bool = False  # compare results from different setups anyway

    def threshold(self) -> float | None:
        if self.fail_if_slower is None:
            return None
        if self.fail_if_slower < 0:
            raise SettingError("fail_if_slower", f"must not be negative (got {self.fail_if_slower})")
        return self.fail_if_slower / 100.0


@dataclass
class BenchOutputs:
    result: BenchResult
    summary: BenchSummary
    files: dict[str, Path] = field(default_factory=dict)
    #: The run was stopped (Ctrl-C, SIGTERM): the partial results are written; raise this after showing them.
    interrupted: Interrupted | None = None

    @property
    def regressed(self) -> bool:
        return bool(self.summary.regressions)


def default_out_dir(settings: BenchSettings) -> Path:
    model = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(settings.model).name or settings.model).strip("-")
    dtypes = "-".join(settings.dtypes)
    batches = "-".join(str(b) for b in settings.batches)
    return Path("bench") / f"{model}_{dtypes}_{settings.steps}steps_{settings.height}x{settings.width}_b{batches}"


def load_result(path: Path, what: str = "benchmark result") -> BenchResult:
    return BenchResult.load(Path(path), what)


def summarize(result: BenchResult, cost: CostOptions, gate: GateOptions) -> BenchSummary:
    baseline = load_result(gate.baseline, "baseline result") if gate.baseline else None
    summary = _summarize_bench(result, cost.price(), baseline, gate.threshold())
    if baseline is not None and summary.baseline_differences and not gate.force:
        raise SetupMismatch("refusing to compare with a baseline from a different setup", summary.baseline_differences)
    return summary


def _summarize_bench(
    result: BenchResult, price: Price | None, baseline: BenchResult | None, threshold: float | None
) -> BenchSummary:
    from profkit.analysis.bench.summary import summarize_bench  # numpy and scipy only when summarizing

    return summarize_bench(result, price, baseline, threshold)


def write_outputs(out: Path, result: BenchResult, summary: BenchSummary, force: bool) -> dict[str, Path]:
    from profkit.report.csv import stats_csv, trials_csv
    from profkit.report.html import bench_html

    files = {what: out / name for what, name in OUTPUT_FILES.items()}
    for path in files.values():
        check_writable(path, force)
    out.mkdir(parents=True, exist_ok=True)
    result.with_summary(summary).write(files["json"])
    files["trials_csv"].write_text(trials_csv(result), encoding="utf-8")
    files["stats_csv"].write_text(stats_csv(summary), encoding="utf-8")
    files["html"].write_text(bench_html(result, summary), encoding="utf-8")
    return files


def bench(
    settings: BenchSettings,
    out: Path | None,
    cost: CostOptions,
    gate: GateOptions,
    force: bool,
    progress: Progress | None = None,
) -> BenchOutputs:
    from profkit.capture.bench.runner import measure, validate_settings

    validate_settings(settings)
    cost.price()  # refuse a bad instance / price table before running anything
    gate.threshold()
    if gate.baseline:
        load_result(gate.baseline, "baseline result")
    out = out or default_out_dir(settings)
    for name in OUTPUT_FILES.values():
        check_writable(out / name, force)
    result, interrupt = measure(settings, progress)
    if not any(trial.ok for trial in result.trials()):
        result.write(out / RESULT_FILE)  # writable: checked above
        errors = [c.error for c in result.configs if c.error] + [t.error for t in result.trials() if t.error]
        reasons = "; ".join(dict.fromkeys(errors))
        if interrupt is not None:
            raise Interrupted(f"no trial had finished; what was recorded is in {out / RESULT_FILE}", interrupt)
        raise ProfkitError(
            f"no trial succeeded ({reasons or result.status}); raw results in {out / RESULT_FILE}", EXIT_RUN_FAILED
        )
    summary = summarize(result, cost, gate)
    outputs = BenchOutputs(result, summary, write_outputs(out, result, summary, force))
    if interrupt is not None:
        finished = sum(trial.ok for trial in result.trials())
        outputs.interrupted = Interrupted(
            f"{finished} trial{'s' if finished != 1 else ''} finished; the partial results are in {out} "
            f"({RESULT_FILE} status interrupted)",
            interrupt,
        )
    return outputs


def check(result_path: Path, cost: CostOptions, gate: GateOptions, out: Path | None, force: bool) -> BenchOutputs:
    """Summarize a stored result against a baseline without running anything."""
    if gate.baseline is None:
        raise SettingError("baseline", "is needed to check a result (a previous bench.json)")
    result = load_result(result_path)
    summary = summarize(result, cost, gate)
    outputs = BenchOutputs(result, summary)
    if out is not None:
        from profkit.report.html import bench_html

        check_writable(out, force)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(bench_html(result, summary), encoding="utf-8")
        outputs.files["html"] = out
    return outputs
