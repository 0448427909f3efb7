"""`profkit bench` and `profkit check`: run or load results, summarize, compare, write every output.

A baseline or a checked result that is partial (its run was interrupted) is refused: comparing it would measure
the interruption. A regression gate (a threshold) also refuses a file whose stored summary disagrees with its
raw trials, and a comparison where no gated metric could be compared: a gate never passes on data it cannot
trust. Without a gate, a disagreeing stored summary is a warning in the report.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from profkit.app.prices import Price, load_prices, price_for, with_price_warnings
from profkit.errors import EXIT_RUN_FAILED, Interrupted, ProfkitError, SettingError, SetupMismatch
from profkit.jsonio import check_outputs, write_text
from profkit.model.bench import BenchResult, BenchSettings, BenchSummary
from profkit.naming import safe_component

if TYPE_CHECKING:
    from profkit.capture.progress import Progress

RESULT_FILE = "bench.json"
OUTPUT_FILES = {"json": RESULT_FILE, "trials_csv": "trials.csv", "stats_csv": "stats.csv", "html": "bench.html"}


@dataclass
class CostOptions:
    price_per_hour: float | None = None
    instance: str | None = None
    price_table: Path | None = None
    spot: bool = False  # the instance's spot price

    def price(self) -> Price | None:
        table = load_prices(self.price_table) if self.price_table else None
        return price_for(self.price_per_hour, self.instance, table, self.spot)


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
    quality: Any = None  # profkit.app.quality.QualityOutputs: each configuration's images against the first's

    @property
    def regressed(self) -> bool:
        return bool(self.summary.regressions)


def default_out_dir(settings: BenchSettings) -> Path:
    """``bench/<model>_<dtypes>_<steps>steps_<h>x<w>_b<batches>[_<knobs>]``, one safe folder name (the knobs part
    names every varied or changed knob with its values)."""
    model = safe_component(Path(settings.model).name or settings.model, max_len=60, default="model")
    dtypes = "-".join(settings.dtypes)
    batches = "auto" if settings.batch_auto else "-".join(str(b) for b in settings.batches)
    steps = "-".join(str(s) for s in settings.all_steps())
    name = f"{model}_{dtypes}_{steps}steps_{settings.height}x{settings.width}_b{batches}"
    tags = "-".join(dict.fromkeys(k.tag for k in settings.grid.combinations() if k.tag))
    return Path("bench") / safe_component(f"{name}_{tags}" if tags else name, max_len=120)


def load_result(path: Path, what: str = "benchmark result") -> BenchResult:
    return BenchResult.load(Path(path), what)


def refuse_partial(result: BenchResult, path: Path, what: str) -> None:
    """Refuse a stored result whose run was interrupted: its numbers are not those of the run it names."""
    if result.status == "interrupted":
        raise ProfkitError(f"{path}: the {what} is partial (its run was interrupted): compare results of complete runs")


def load_baseline(gate: GateOptions) -> BenchResult | None:
    """The baseline result of a gate, refused when partial."""
    if gate.baseline is None:
        return None
    baseline = load_result(gate.baseline, "baseline result")
    refuse_partial(baseline, gate.baseline, "baseline result")
    return baseline


def _refuse_untrusted(result: BenchResult, source: str, what: str) -> None:
    from profkit.analysis.bench.summary import stored_summary_problems

    problems = stored_summary_problems(result)
    if problems:
        raise ProfkitError(
            f"{source}: the {what}'s stored summary disagrees with its raw trials ({problems[0]}): a regression gate "
            "does not decide on a file that may have been altered; rerun the benchmark"
        )


def summarize(
    result: BenchResult, cost: CostOptions, gate: GateOptions, source: str = "the new result"
) -> BenchSummary:
    """The summary of ``result``, against the gate's baseline when there is one (``source`` names ``result``)."""
    baseline = load_baseline(gate)
    threshold = gate.threshold()
    if baseline is not None and threshold is not None:
        _refuse_untrusted(result, source, "result")
        _refuse_untrusted(baseline, str(gate.baseline), "baseline")
    summary = _summarize_bench(result, cost.price(), baseline, threshold)
    summary = with_price_warnings(summary, result, cost.instance, cost.price_table)  # another GPU than measured
    if baseline is not None and summary.baseline_differences and not gate.force:
        raise SetupMismatch("refusing to compare with a baseline from a different setup", summary.baseline_differences)
    return summary


def refuse_empty_gate(outputs: BenchOutputs, gate: GateOptions, source: str) -> None:
    """A gate that compared no gated metric (no configuration in common with the baseline, or none with
    successful trials) must not pass."""
    from profkit.analysis.bench.summary import GATED_METRICS

    if gate.baseline is None or gate.fail_if_slower is None or outputs.result.status == "interrupted":
        return
    if not any(change.metric in GATED_METRICS for change in outputs.summary.changes):
        raise ProfkitError(
            f"{source}: no configuration has trials to compare with those of the baseline {gate.baseline}: the "
            "regression gate has nothing to decide on"
        )


def _summarize_bench(
    result: BenchResult, price: Price | None, baseline: BenchResult | None, threshold: float | None
) -> BenchSummary:
    from profkit.analysis.bench.summary import summarize_bench  # numpy and scipy only when summarizing

    return summarize_bench(result, price, baseline, threshold)


def write_outputs(
    out: Path, result: BenchResult, summary: BenchSummary, force: bool, inputs: Sequence[Path | None] = ()
) -> dict[str, Path]:
    """bench.json, the CSVs and the HTML report in ``out``, each written atomically; none may replace an input."""
    from profkit.report.csv import stats_csv, trials_csv
    from profkit.report.html import bench_html

    files = {what: out / name for what, name in OUTPUT_FILES.items()}
    check_outputs(list(files.values()), inputs, force)
    result.with_summary(summary).write(files["json"], force)
    write_text(files["trials_csv"], trials_csv(result), force)
    write_text(files["stats_csv"], stats_csv(summary), force)
    write_text(files["html"], bench_html(result, summary), force)
    return files


def bench(
    settings: BenchSettings,
    out: Path | None,
    cost: CostOptions,
    gate: GateOptions,
    force: bool,
    progress: Progress | None = None,
    inputs: Sequence[Path | None] = (),
    quality: Any = None,  # profkit.app.quality.BenchQuality
) -> BenchOutputs:
    """Run the benchmark and write its outputs; ``inputs`` (a prompts file) are files no output may replace."""
    from profkit.capture.bench.runner import measure, validate_settings

    validate_settings(settings)
    cost.price()  # refuse a bad instance / price table before running anything
    gate.threshold()
    load_baseline(gate)  # refuse a missing, broken or partial baseline before running anything
    out = out or default_out_dir(settings)
    inputs = (*inputs, gate.baseline, cost.price_table)
    check_outputs([out / name for name in OUTPUT_FILES.values()], inputs, force)
    keep = quality.keeper(settings, out, force) if quality is not None else None
    result, interrupt = measure(settings, progress, keep=keep)
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
    outputs = BenchOutputs(result, summary, write_outputs(out, result, summary, force, inputs))
    if interrupt is not None:
        finished = sum(trial.ok for trial in result.trials())
        outputs.interrupted = Interrupted(
            f"{finished} trial{'s' if finished != 1 else ''} finished; the partial results are in {out} "
            f"({RESULT_FILE} status interrupted)",
            interrupt,
        )
        return outputs
    refuse_empty_gate(outputs, gate, str(outputs.files["json"]))  # after writing: the run is kept
    if keep is not None:
        from profkit.app.quality import bench_quality

        outputs.quality = bench_quality(out, force)
        if outputs.quality is not None:  # the bench report names the quality verdicts and links their report
            from profkit.report.html import bench_html

            write_text(outputs.files["html"], bench_html(result, summary, outputs.quality.document), force=True)
    return outputs


def check(result_path: Path, cost: CostOptions, gate: GateOptions, out: Path | None, force: bool) -> BenchOutputs:
    """Summarize a stored result against a baseline without running anything."""
    if gate.baseline is None:
        raise SettingError("baseline", "is needed to check a result (a previous bench.json)")
    result = load_result(result_path)
    refuse_partial(result, result_path, "result to check")
    summary = summarize(result, cost, gate, str(result_path))
    outputs = BenchOutputs(result, summary)
    refuse_empty_gate(outputs, gate, str(result_path))
    if out is not None:
        from profkit.report.html import bench_html

        check_outputs([out], [result_path, gate.baseline], force)
        outputs.files["html"] = write_text(out, bench_html(result, summary), force)
    return outputs
