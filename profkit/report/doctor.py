"""`profkit doctor` on the terminal: one line per check (status, name, what was found), then what to do.

Markup-safe: names, versions and paths are shown as written (Text, never console markup).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text

if TYPE_CHECKING:
    from rich.console import Console

    from profkit.app.doctor import Diagnosis

STYLES = {"ok": "green", "missing": "red", "warning": "yellow", "none": "dim"}
NAME_WIDTH = 13


def print_doctor(diagnosis: Diagnosis, console: Console) -> None:
    """The checks, then one line: whether capture and bench can run here."""
    console.print(Text(f"profkit {diagnosis.profkit}: what works here", style="bold"), highlight=False)
    for check in diagnosis.checks:
        line = Text(f"{check.status:<8}", style=STYLES.get(check.status, ""))
        line.append(f" {check.name:<{NAME_WIDTH}} {check.detail}{' (needed)' if check.needed else ''}")
        console.print(line, highlight=False, soft_wrap=True)
        if check.fix:
            console.print(Text(f"{'':<{NAME_WIDTH + 10}}to do: {check.fix}"), highlight=False, soft_wrap=True)
    if diagnosis.can_run:
        console.print(Text("capture and bench can run here", style="green"), highlight=False)
    else:
        names = ", ".join(c.name for c in diagnosis.blockers)
        console.print(Text(f"capture and bench cannot run here: {names} missing", style="red"), highlight=False)
