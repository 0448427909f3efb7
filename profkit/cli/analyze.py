"""`profkit analyze`: the flags; the work is :func:`profkit.app.analyze.analyze_path`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from profkit.app import DETAIL_EVENTS

HELP = (
    "Analyze a Kineto trace (.json/.json.gz), an Nsight Systems export (.sqlite, .nsys-rep) or a capture folder: "
    "stages, steps, kernels, idle time, findings. A folder of traces (ranks of a job, runs of a sweep) is analyzed "
    "in parallel processes into one index report."
)
EPILOG = (
    "Example: profkit analyze runs/tiny-sd_fp32_10steps_64x64_b1/trace.json.gz --json  "
    "(writes <run>.report.html and <run>.summary.json in the run folder; a trace outside a capture folder gets "
    "<trace>.report.html beside it; a folder that is not writable sends them to the current folder)"
)


def analyze(
    trace: Annotated[
        Path, typer.Argument(help="Trace file (.json, .json.gz, .sqlite, .nsys-rep) or a profkit capture folder.")
    ],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="HTML report path (default: beside the input, see below).")
    ] = None,
    json_summary: Annotated[bool, typer.Option("--json", help="Also write a JSON summary next to the trace.")] = False,
    json_out: Annotated[Path | None, typer.Option("--json-out", help="Write the JSON summary to this path.")] = None,
    no_html: Annotated[bool, typer.Option("--no-html", help="Do not write the HTML report.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No terminal summary; only the paths written.")] = False,
    force: Annotated[
        bool,
        typer.Option("--force", help="Overwrite existing report files (a capture folder's reports: analyze it again)."),
    ] = False,
    jobs: Annotated[
        int | None,
        typer.Option(
            "--jobs", "-j", help="A folder of traces: processes analyzing in parallel (default: CPUs, max 8)."
        ),
    ] = None,
    detail_events: Annotated[
        int,
        typer.Option(
            "--detail-events",
            help="Nsight Systems exports with more GPU events (kernels, copies, memsets) than this are analyzed in "
            "detail over their first whole pipeline calls within it, and as a whole by SQLite aggregates (memory "
            "bounded). 0: every event in detail, however large.",
        ),
    ] = DETAIL_EVENTS,
) -> None:
    from profkit.app.analyze import analyze_path
    from profkit.app.analyze_folder import is_folder_of_traces
    from profkit.cli.output import say, wrote
    from profkit.errors import SettingError

    if detail_events < 0:
        raise SettingError("detail_events", f"must be 0 (no limit) or more (got {detail_events})")
    limit = detail_events or None
    if is_folder_of_traces(trace):
        _analyze_folder(trace, out, json_out, json_summary or json_out is not None, force, jobs, quiet, limit)
        return
    outputs = analyze_path(
        trace,
        html=out,
        json_path=json_out,
        write_html=not no_html,
        write_json_summary=json_summary or json_out is not None,
        force=force,
        keep_existing=True,
        detail_events=limit,
    )
    for note in outputs.notes:
        say(f"note: {note}")
    if not quiet and outputs.result is not None:
        from profkit.cli.output import console
        from profkit.report.terminal import print_analysis

        print_analysis(outputs.result, console)
    for what, path in (("HTML report", outputs.html), ("JSON summary", outputs.json)):
        if path in outputs.kept:
            say(f"{what} already there: {path} (--force to analyze again)")
        else:
            wrote(what, path)


def _analyze_folder(
    folder: Path,
    out: Path | None,
    json_out: Path | None,
    write_json: bool,
    force: bool,
    jobs: int | None,
    quiet: bool,
    detail_events: int | None,
) -> None:
    from profkit.app.analyze_folder import analyze_folder
    from profkit.cli.output import console, say, wrote
    from profkit.errors import ProfkitError, SettingError
    from profkit.report.terminal_index import print_index

    if jobs is not None and not 1 <= jobs <= 64:
        raise SettingError("jobs", f"must be between 1 and 64 (got {jobs})")
    outputs = analyze_folder(
        folder,
        html=out,
        json_path=json_out,
        write_json_summary=write_json,
        force=force,
        jobs=jobs,
        detail_events=detail_events,
    )
    for note in outputs.notes:
        say(f"note: {note}")
    if not quiet:
        print_index(outputs.index, console)
    wrote("HTML index", outputs.html)
    wrote("JSON index", outputs.json)
    failed = outputs.index.failed
    if failed:
        raise ProfkitError(
            f"{len(failed)} of {len(outputs.index.rows)} traces could not be analyzed (first: {failed[0].label}: "
            f"{failed[0].error}); the others are in the index"
        )
