"""`profkit bench` and `profkit check`: run or load results, summarize, compare, write every output."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from profkit.analysis.bench.summary import BenchSummary, load_prices, price_for, summarize_bench
from profkit.capture.environment import device_info, environment
from profkit.errors import EXIT_INTERRUPTED, EXIT_RUN_FAILED, ProfkitError, SettingError, SetupMismatch
from profkit.jsonio import check_writable, read_json, write_json
from profkit.model.base import SCHEMA_VERSION, document_header

RESULT_KIND = "profkit.bench"
RESULT_FILE = "bench.json"


@dataclass
class CostOptions:
    price_per_hour: float | None = None
    instance: str | None = None
    price_table: Path | None = None

    def price(self) -> tuple[str, float, str] | None:
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
    result: dict[str, Any]
    summary: BenchSummary
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def regressed(self) -> bool:
        return bool(self.summary.regressions)


def default_out_dir(settings: Any) -> Path:
    model = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(settings.model).name or settings.model).strip("-")
    dtypes = "-".join(settings.dtypes)
    batches = "-".join(str(b) for b in settings.batches)
    return Path("bench") / f"{model}_{dtypes}_{settings.steps}steps_{settings.height}x{settings.width}_b{batches}"


def load_result(path: Path, what: str = "benchmark result") -> dict[str, Any]:
    document = read_json(Path(path), what)
    if not isinstance(document, dict) or document.get("kind") != RESULT_KIND:
        raise ProfkitError(f"{path}: not a profkit benchmark result (no kind '{RESULT_KIND}')")
    if document.get("schema_version") != SCHEMA_VERSION:
        raise ProfkitError(
            f"{path}: result schema version {document.get('schema_version')}, this profkit reads {SCHEMA_VERSION}"
        )
    return _normalized(document, Path(path))


_DEFAULTS: dict[str, Any] = {
    "environment": {},
    "device_info": {},
    "device": "unknown",
    "settings": {},
    "status": "unknown",
    "duration_s": 0.0,
    "peak_rss_mb": 0.0,
    "order": [],
    "samples": {},
}


def _normalized(document: dict[str, Any], path: Path) -> dict[str, Any]:
    """Check the structure the summaries rely on; fill optional parts a hand-made or older file may lack."""
    configs = document.get("configs")
    if not isinstance(configs, list) or not configs:
        raise ProfkitError(f"{path}: the result has no configurations")
    for key, default in _DEFAULTS.items():
        if not isinstance(document.get(key), type(default)):
            document[key] = type(default)(default)
    for index, config in enumerate(configs):
        valid = (
            isinstance(config, dict)
            and isinstance(config.get("name"), str)
            and isinstance(config.get("dtype"), str)
            and isinstance(config.get("batch"), int)
            and isinstance(config.get("trials"), list)
            and all(isinstance(t, dict) and isinstance(t.get("ok"), bool) for t in config["trials"])
        )
        if not valid:
            raise ProfkitError(f"{path}: configuration {index} is malformed (needs name, dtype, batch, trials)")
        for trial in config["trials"]:
            if trial["ok"] and not isinstance(trial.get("e2e_ms"), (int, float)):
                raise ProfkitError(f"{path}: a successful trial of {config['name']} has no e2e_ms")
            trial.setdefault("round", 0)
            trial.setdefault("order", 0)
            trial.setdefault("steps_ms", [])
            trial.setdefault("stage_ms", {})
    return document


def result_document(run: Any) -> dict[str, Any]:
    """The versioned JSON document of a :class:`~profkit.capture.bench.runner.BenchRun` (raw samples kept)."""
    return {
        **document_header(RESULT_KIND),
        "environment": environment(),
        "device_info": device_info(run.device),
        "device": run.device,
        "settings": run.settings,
        "status": run.status,
        "duration_s": run.duration_s,
        "peak_rss_mb": run.peak_rss_mb,
        "order": run.order,
        "configs": [dataclasses.asdict(config) for config in run.configs],
        "samples": run.samples.to_dict(),
    }


def summarize(
    result: dict[str, Any], cost: CostOptions, gate: GateOptions
) -> tuple[BenchSummary, dict[str, Any] | None]:
    baseline = load_result(gate.baseline, "baseline result") if gate.baseline else None
    summary = summarize_bench(result, cost.price(), baseline, gate.threshold())
    if baseline is not None and summary.baseline_differences and not gate.force:
        raise SetupMismatch("refusing to compare with a baseline from a different setup", summary.baseline_differences)
    return summary, baseline


def write_outputs(out: Path, result: dict[str, Any], summary: BenchSummary, force: bool) -> dict[str, Path]:
    from profkit.report.bench import bench_html, stats_csv, trials_csv

    files = {
        "json": out / RESULT_FILE,
        "trials_csv": out / "trials.csv",
        "stats_csv": out / "stats.csv",
        "html": out / "bench.html",
    }
    for path in files.values():
        check_writable(path, force)
    out.mkdir(parents=True, exist_ok=True)
    write_json(files["json"], {**result, "summary": summary.to_dict()})
    files["trials_csv"].write_text(trials_csv(result), encoding="utf-8")
    files["stats_csv"].write_text(stats_csv(summary), encoding="utf-8")
    files["html"].write_text(bench_html(result, summary), encoding="utf-8")
    return files


def bench(
    settings: Any, out: Path | None, cost: CostOptions, gate: GateOptions, force: bool, progress: Any = None
) -> BenchOutputs:
    from profkit.capture.bench.runner import run_bench

    settings.validate()
    cost.price()  # refuse a bad instance / price table before running anything
    gate.threshold()
    if gate.baseline:
        load_result(gate.baseline, "baseline result")
    out = out or default_out_dir(settings)
    for name in (RESULT_FILE, "trials.csv", "stats.csv", "bench.html"):
        check_writable(out / name, force)
    run = run_bench(settings, progress)
    result = result_document(run)
    if not any(trial["ok"] for config in result["configs"] for trial in config["trials"]):
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / RESULT_FILE, result)  # writable: checked above
        reasons = "; ".join(
            dict.fromkeys(
                [c["error"] for c in result["configs"] if c.get("error")]
                + [t["error"] for c in result["configs"] for t in c["trials"] if t.get("error")]
            )
        )
        if run.status == "interrupted":
            raise ProfkitError(
                f"interrupted before any trial finished; what was recorded is in {out / RESULT_FILE}", EXIT_INTERRUPTED
            )
        raise ProfkitError(
            f"no trial succeeded ({reasons or run.status}); raw results in {out / RESULT_FILE}", EXIT_RUN_FAILED
        )
    summary, _ = summarize(result, cost, gate)
    return BenchOutputs(result, summary, write_outputs(out, result, summary, force))


def check(result_path: Path, cost: CostOptions, gate: GateOptions, out: Path | None, force: bool) -> BenchOutputs:
    """Summarize a stored result against a baseline without running anything."""
    if gate.baseline is None:
        raise SettingError("baseline", "is needed to check a result (a previous bench.json)")
    result = load_result(result_path)
    summary, _ = summarize(result, cost, gate)
    outputs = BenchOutputs(result, summary)
    if out is not None:
        from profkit.report.bench import bench_html

        check_writable(out, force)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(bench_html(result, summary), encoding="utf-8")
        outputs.files["html"] = out
    return outputs
