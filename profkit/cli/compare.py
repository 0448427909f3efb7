"""`profkit compare`: the flags; the work is :func:`profkit.app.compare.compare_paths`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

HELP = "Compare two traces, capture folders or analysis summaries (A vs B): total, stage and step speedup, kernel mix."
EPILOG = (
    "Example: profkit compare runs/tiny-sd_fp32_10steps_64x64_b1 runs/tiny-sd_fp16_10steps_64x64_b1 --json  "
    "(speedup = A time / B time: above 1 means B is faster). The outputs are named after both runs (the model and "
    "settings they share, then what differs: compare_tiny-sd_fp32_vs_fp16_10steps_64x64_b1.html) and go into the "
    "folder holding both runs (a capture's --out), else into the current folder"
)


def compare(
    a: Annotated[Path, typer.Argument(help="Baseline (A): trace file, capture folder or *.summary.json.")],
    b: Annotated[Path, typer.Argument(help="Candidate (B): trace file, capture folder or *.summary.json.")],
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="HTML report path (default: compare_<A>_vs_<B>.html beside both runs)."),
    ] = None,
    json_summary: Annotated[bool, typer.Option("--json", help="Also write a JSON comparison.")] = False,
    json_out: Annotated[Path | None, typer.Option("--json-out", help="Write the JSON comparison to this path.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No terminal summary; only the paths written.")] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite outputs; compare runs from different setups.")
    ] = False,
) -> None:
    from profkit.app.compare import compare_paths
    from profkit.cli.output import console, say, wrote
    from profkit.report.terminal import print_comparison

    outputs = compare_paths(
        a,
        b,
        html=out,
        json_path=json_out,
        write_json_summary=json_summary or json_out is not None,
        force=force,
        allow_different_setups=force,
    )
    for note in outputs.notes:
        say(f"note: {note}")
    if not quiet:
        print_comparison(outputs.comparison, console)
    wrote("HTML comparison", outputs.html)
    wrote("JSON comparison", outputs.json)
