"""`profkit doctor`: the flags; the checks are in :mod:`profkit.app.doctor`."""

from __future__ import annotations

from typing import Annotated

import typer

HELP = (
    "What works here: torch build and CUDA, GPUs, NVML, CUPTI, nsys and the nvtx package, torchao, the compile "
    "toolchain, diffusers and transformers; each line ok / missing / what to do. Exit 0 when capture and bench can run."
)
EPILOG = "Example: profkit doctor --json"


def doctor(
    json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout, for machines.")] = False,
) -> None:
    import orjson

    from profkit.app.doctor import diagnose
    from profkit.cli.output import console
    from profkit.errors import EXIT_RUN_FAILED, ProfkitError
    from profkit.report.doctor import print_doctor

    diagnosis = diagnose()
    if json:
        print(orjson.dumps(diagnosis.to_dict(), option=orjson.OPT_INDENT_2).decode())
    else:
        print_doctor(diagnosis, console)
    if not diagnosis.can_run:
        names = ", ".join(f"{c.name} ({c.fix})" for c in diagnosis.blockers)
        raise ProfkitError(f"capture and bench cannot run here: {names}", EXIT_RUN_FAILED)
