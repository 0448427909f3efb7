"""`profkit history`: every bench result under a folder -> trends per configuration -> HTML and JSON."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from profkit.errors import ProfkitError
from profkit.jsonio import check_outputs, write_text
from profkit.model.history import History
from profkit.naming import safe_component

#: Result files read from one folder at most (a history of a CI job's artifacts, not a disk scan).
MAX_RESULTS = 5000
RESULT_NAMES = ("bench.json",)


@dataclass
class HistoryOutputs:
    history: History
    html: Path
    json: Path | None


def find_results(folder: Path) -> list[Path]:
    """``bench.json`` files under ``folder`` (symlinked folders not followed), at most :data:`MAX_RESULTS`."""
    if not folder.is_dir():
        raise ProfkitError(f"{folder}: not a folder (pass the folder holding the bench results)")
    found: list[Path] = []
    for root, dirs, files in os.walk(folder, followlinks=False):
        dirs.sort()
        for name in sorted(files):
            if name in RESULT_NAMES or name.endswith(".bench.json"):
                found.append(Path(root) / name)
                if len(found) > MAX_RESULTS:
                    raise ProfkitError(
                        f"{folder} holds more than {MAX_RESULTS} bench results: point at a smaller folder"
                    )
    return found


def collect(folder: Path) -> tuple[list, list[str]]:  # -> (list[CollectedRun], skipped)
    from profkit.analysis.bench.history import CollectedRun
    from profkit.model.bench import BenchResult

    runs, skipped = [], []
    for path in find_results(folder):
        source = str(path.relative_to(folder))
        try:
            result = BenchResult.load(path, "bench result")
        except ProfkitError as error:
            skipped.append(f"{source}: {error}")
            continue
        if result.status == "interrupted":
            skipped.append(f"{source}: an interrupted run (partial results are not a point of the trend)")
            continue
        recorded, how = result.created_at, "recorded"
        if not _is_iso_time(recorded):
            recorded = datetime.fromtimestamp(path.stat().st_mtime, timezone.utc).isoformat(timespec="seconds")
            how = "file modified"
        runs.append(CollectedRun(source, recorded, how, result))
    return runs, skipped


def _is_iso_time(text: str) -> bool:
    try:
        datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return False
    return True


def history(
    folder: Path,
    html: Path | None = None,
    json_path: Path | None = None,
    write_json_summary: bool = False,
    threshold: float | None = None,
    force: bool = False,
) -> HistoryOutputs:
    from profkit.analysis.bench.history import build_history
    from profkit.report.history_html import history_html

    base = Path.cwd() / f"history_{safe_component(folder.resolve().name or 'results', max_len=60)}"
    html = html or base.with_name(base.name + ".html")
    if json_path is None and write_json_summary:
        json_path = base.with_name(base.name + ".json")
    check_outputs((html, json_path), (), force)
    runs, skipped = collect(folder)
    if not runs:
        why = f" ({len(skipped)} unreadable: {skipped[0]})" if skipped else ""
        raise ProfkitError(f"no bench results (bench.json) found under {folder}{why}")
    document = build_history(str(folder), runs, threshold, skipped)
    outputs = HistoryOutputs(document, write_text(html, history_html(document), force), None)
    if json_path is not None:
        outputs.json = document.write(json_path, force)
    return outputs
