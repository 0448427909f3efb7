"""The terminal table of a folder analysis (markup-safe: trace names are shown as written)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from profkit.model.index import AnalysisIndex


def _cell(value: float | None, fmt: str, missing: str = "–") -> Text:
    return Text(missing if value is None else fmt.format(value))


def print_index(index: AnalysisIndex, console: Console) -> None:
    table = Table(title=Text(f"{len(index.rows)} traces in {index.folder}"), title_justify="left")
    for name, justify in (
        ("trace", "left"),
        ("total ms", "right"),
        ("GPU busy", "right"),
        ("median step ms", "right"),
        ("median iteration ms", "right"),
        ("top finding", "left"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for row in index.rows:
        label = Text(row.label + (f" (rank {row.rank})" if row.rank is not None else ""))
        if row.detail_calls is not None:
            label.append(f" (steps: first {row.detail_calls} of {row.calls_total} calls)")
        if not row.ok:
            table.add_row(label, Text("not analyzed", style="red"), Text(""), Text(""), Text(""), Text(row.error or ""))
            continue
        table.add_row(
            label,
            _cell(row.total_ms, "{:.2f}"),
            _cell(row.gpu_busy_share, "{:.1%}", "no GPU"),
            _cell(row.median_step_ms, "{:.2f}"),
            _cell(row.median_iteration_ms, "{:.2f}"),
            Text(row.top_finding or "–"),
        )
    console.print(table)
    slowest = next((r for r in index.ranks if r.slowest), None)
    if slowest is not None:
        extra = f", {slowest.vs_fastest:+.1%} against the fastest" if slowest.vs_fastest else ""
        console.print(Text(f"slowest rank: {slowest.rank} ({slowest.label}){extra}"))
