"""Folder-analysis index -> self-contained HTML: one row per trace with links to each report, ranks side by side."""

from __future__ import annotations

import os
from pathlib import Path

from profkit.model.index import AnalysisIndex
from profkit.report.html import common_context, device_label
from profkit.report.jinja import render


def _link(target: str | None, base: Path) -> str | None:
    """``target`` relative to the index's folder (the index moves with the reports), or ``None``."""
    if target is None:
        return None
    try:
        return Path(os.path.relpath(target, base)).as_posix()
    except ValueError:  # another drive
        return Path(target).resolve().as_uri()


def index_html(index: AnalysisIndex, base: Path) -> str:
    links = {row.item: _link(row.report, base) for row in index.rows}
    devices = {row.item: device_label(list(row.devices)) for row in index.rows}
    return render("index.html.j2", ix=index, links=links, devices=devices, data=index.to_builtins(), **common_context())
