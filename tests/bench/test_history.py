"""`profkit history`: trends over bench results, environment changes marked, regressions by check's test."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest

from profkit.analysis.bench.history import CollectedRun, build_history
from profkit.model.bench import BenchResult
from profkit.model.history import History
from tests.benchbuilder import bench_result
from tests.conftest import run_cli


def _run(
    day: int, scale: float = 1.0, torch: str = "2.13.0", commit: str | None = None, trials: int = 12
) -> BenchResult:
    """The builder's result recorded on ``day`` with every latency multiplied by ``scale``."""
    base = bench_result(trials=trials)
    configs = tuple(
        msgspec.structs.replace(
            config,
            trials=tuple(
                msgspec.structs.replace(
                    t,
                    e2e_ms=t.e2e_ms * scale,
                    inference_ms=t.inference_ms * scale,
                    steps_ms=tuple(s * scale for s in t.steps_ms),
                    stage_ms={k: v * scale for k, v in t.stage_ms.items()},
                )
                for t in config.trials
            ),
        )
        for config in base.configs
    )
    environment = {**base.environment, "torch": torch, "git_commit": f"c{day:04d}"}
    return msgspec.structs.replace(
        base, created_at=f"2026-03-{day:02d}T10:00:00+00:00", configs=configs, environment=environment
    )


def _write(folder: Path, name: str, result: BenchResult) -> None:
    (folder / name).mkdir(parents=True)
    result.write(folder / name / "bench.json")


def test_trend_regression_and_environment_change_are_found() -> None:
    runs = [
        CollectedRun("c/bench.json", "2026-03-03T10:00:00+00:00", "recorded", _run(3, 1.00)),
        CollectedRun("a/bench.json", "2026-03-01T10:00:00+00:00", "recorded", _run(1, 1.00)),
        CollectedRun("b/bench.json", "2026-03-02T10:00:00+00:00", "recorded", _run(2, 1.01, torch="2.14.0")),
        CollectedRun("d/bench.json", "2026-03-04T10:00:00+00:00", "recorded", _run(4, 1.50, torch="2.14.0")),
    ]
    history = build_history("results", runs, threshold=0.05, skipped=[])
    assert [r.source for r in history.runs] == ["a/bench.json", "b/bench.json", "c/bench.json", "d/bench.json"]
    # torch changed at run 2 and back at run 3 and again at run 4; nothing else changed
    assert history.runs[0].environment_changes == ()
    assert history.runs[1].environment_changes == ("torch 2.13.0 -> 2.14.0",)
    assert history.runs[2].environment_changes == ("torch 2.14.0 -> 2.13.0",)
    assert history.runs[3].commit == "c0004"
    series = {s.config: s for s in history.series}
    assert set(series) == {"tiny-sd fp32 b1", "tiny-sd fp32 b2"}
    b1 = series["tiny-sd fp32 b1"].points
    # medians computed here from the raw trials: 100..111 ms -> 105.5 ms, times the scale
    assert b1[0].p50_ms == pytest.approx(105.5) and b1[3].p50_ms == pytest.approx(105.5 * 1.5)
    assert b1[0].change is None
    assert not b1[1].regressed and b1[1].change == pytest.approx(0.01, abs=1e-9)  # 1% is under the 5% threshold
    assert b1[3].regressed and b1[3].change == pytest.approx(0.5) and b1[3].p_value < 0.05
    assert [c for c, _ in history.latest_regressions()] == ["tiny-sd fp32 b1", "tiny-sd fp32 b2"]
    loaded = History.from_json(history.to_json())
    assert loaded == history


def test_no_threshold_flags_nothing() -> None:
    runs = [CollectedRun(f"{d}", f"2026-03-0{d}T00:00:00+00:00", "recorded", _run(d, 1 + d)) for d in (1, 2)]
    history = build_history("r", runs, threshold=None, skipped=[])
    assert not history.regressions()
    assert all(p.significant for s in history.series for p in s.points[1:])


@pytest.mark.slow
def test_history_cli_reports_and_gates(tmp_path: Path) -> None:
    results = tmp_path / "results"
    _write(results, "2026-03-01", _run(1))
    _write(results, "2026-03-02", _run(2, 1.02))
    _write(results, "2026-03-03", _run(3, 1.6, torch="2.14.0"))
    (results / "broken").mkdir()
    (results / "broken" / "bench.json").write_text('{"kind": "profkit.bench", "schema_version": 1, "configs": [')
    html, data = tmp_path / "h.html", tmp_path / "h.json"
    done = run_cli("history", str(results), "--out", str(html), "--json-out", str(data), "--fail-if-slower", "10")
    assert done.returncode == 4, done.stderr
    assert "newest run is slower" in done.stderr and "+56.9%" in done.stderr  # 1.6 / 1.02: against the previous run
    assert "not read: broken/bench.json" in done.stdout
    document = json.loads(data.read_text())
    assert document["kind"] == "profkit.history" and len(document["runs"]) == 3
    page = html.read_text()
    assert "environment changed: torch 2.13.0 -&gt; 2.14.0" in page and "REGRESSION" in page
    # without a threshold: exit 0; an empty folder: one line, exit 2
    assert run_cli("history", str(results), "--out", str(tmp_path / "h2.html")).returncode == 0
    (tmp_path / "empty").mkdir()
    empty = run_cli("history", str(tmp_path / "empty"), "--out", str(tmp_path / "h3.html"))
    assert empty.returncode == 2 and empty.stderr.startswith("profkit: error: no bench results")
    assert len(empty.stderr.strip().splitlines()) == 1
