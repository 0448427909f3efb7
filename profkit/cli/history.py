"""`profkit history`: the flags; the work is :func:`profkit.app.history.history`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

HELP = (
    "Trends of bench results collected across runs and commits: P50/P95, throughput, memory and cost per "
    "configuration, environment changes marked, regressions flagged by the test `check` uses."
)
EPILOG = "Example: profkit history ci-results/ --fail-if-slower 5  (reads every bench.json below the folder)"


def history_command(
    folder: Annotated[Path, typer.Argument(help="Folder holding bench results (bench.json files, any depth).")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="HTML report path (default: ./history_<folder>.html).")
    ] = None,
    json_summary: Annotated[bool, typer.Option("--json", help="Also write the history as JSON.")] = False,
    json_out: Annotated[Path | None, typer.Option("--json-out", help="Write the JSON history to this path.")] = None,
    fail_if_slower: Annotated[
        float | None,
        typer.Option(
            "--fail-if-slower",
            help="Percent: flag runs slower than their previous run by more than this (significant); exit 4 when "
            "the newest run of a configuration is one.",
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing outputs.")] = False,
) -> None:
    from profkit.app.history import history
    from profkit.cli.output import say, wrote
    from profkit.errors import EXIT_REGRESSION, ProfkitError, SettingError
    from profkit.report.history_html import verdict

    if fail_if_slower is not None and not 0 <= fail_if_slower < 1000:
        raise SettingError("fail_if_slower", f"must be a percentage between 0 and 1000 (got {fail_if_slower:g})")
    outputs = history(
        folder,
        html=out,
        json_path=json_out,
        write_json_summary=json_summary or json_out is not None,
        threshold=None if fail_if_slower is None else fail_if_slower / 100,
        force=force,
    )
    say(verdict(outputs.history))
    for skipped in outputs.history.skipped:
        say(f"not read: {skipped}")
    wrote("HTML history", outputs.html)
    wrote("JSON history", outputs.json)
    latest = outputs.history.latest_regressions()
    if fail_if_slower is not None and latest:
        names = ", ".join(f"{config} {p.change:+.1%}" for config, p in latest)
        raise ProfkitError(f"the newest run is slower than the previous one: {names}", EXIT_REGRESSION)
