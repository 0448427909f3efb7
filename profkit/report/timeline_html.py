"""What ``timeline.html.j2`` draws: one panel per analyzed trace (A above B in a comparison) on one time scale,
each with the line that says how to open its trace in Perfetto or Nsight Systems."""

from __future__ import annotations

from pathlib import PurePath
from typing import Any

import msgspec

from profkit.analysis.summary import AnalysisResult

CAUSE_COLORS = {"host": "#d92d20", "after_sync": "#e07b24", "queued": "#7a5af8", "unknown": "#98a2b3"}


def open_hint(result: AnalysisResult) -> str:
    """How to open this result's trace in a trace viewer, naming the file."""
    path = PurePath(result.trace.path)
    if result.trace.source_format == "nsys":
        report = path.with_suffix(".nsys-rep").name
        beside = "" if report == path.name else f" (beside {path.name})"
        return (
            f"The whole run: open {report}{beside} in Nsight Systems (File › Open); "
            "Perfetto does not read Nsight Systems reports."
        )
    return (
        f"The whole run: open https://ui.perfetto.dev, click “Open trace file” and pick {path.name} "
        f"(or drag it onto the page) as written, from {path.parent}."
    )


def timeline_context(results: list[tuple[str, AnalysisResult | None]], stage_colors: dict[str, str]) -> dict[str, Any]:
    """The ``timelines`` variable of the templates: panels of the results that have a timeline, one time scale."""
    panels = [
        {"title": title, "open_hint": open_hint(result), "data": msgspec.to_builtins(result.timeline)}
        for title, result in results
        if result is not None and result.timeline is not None
    ]
    span = max((p["data"]["end_us"] - p["data"]["start_us"] for p in panels), default=0.0)
    return {"panels": panels, "span_us": span, "stage_colors": stage_colors, "cause_colors": CAUSE_COLORS}
