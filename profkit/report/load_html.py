"""A load-test document -> a self-contained HTML report (``templates/load.html.j2``: offline, autoescaped)."""

from __future__ import annotations

from typing import Any

from profkit.model.load import LoadTestResult
from profkit.report.html import common_context
from profkit.report.jinja import render

_W, _H, _PAD = 640.0, 220.0, 44.0


def _polyline(points: list[tuple[float, float]]) -> dict[str, Any]:
    """SVG coordinates of ``(x, y)`` points scaled into the chart box, with the axis maxima."""
    x_max = max((x for x, _ in points), default=1.0) or 1.0
    y_max = max((y for _, y in points), default=1.0) or 1.0
    coords = [(_PAD + (_W - 2 * _PAD) * x / x_max, _H - _PAD + -(_H - 2 * _PAD) * y / y_max) for x, y in points]
    return {
        "points": " ".join(f"{x:.1f},{y:.1f}" for x, y in coords),
        "dots": coords,
        "x_max": x_max,
        "y_max": y_max,
        "width": _W,
        "height": _H,
        "pad": _PAD,
    }


def load_html(result: LoadTestResult) -> str:
    levels = [lvl for lvl in result.levels if lvl.latency is not None]
    curve = _polyline([(lvl.rps, lvl.latency.p95) for lvl in levels])  # type: ignore[union-attr]
    load_axis = [(lvl.users if lvl.users is not None else lvl.rate or 0.0) for lvl in levels]
    by_load = _polyline([(x, lvl.latency.p95) for x, lvl in zip(load_axis, levels, strict=True)])  # type: ignore[union-attr]
    phases = sorted({name for lvl in result.levels for name in lvl.server_phases_ms})
    errors = sorted({kind for lvl in result.levels for kind in lvl.errors})
    return render(
        "load.html.j2",
        result=result,
        curve=curve,
        by_load=by_load,
        load_label="arrivals/s" if result.mode == "open" else "users",
        phases=phases,
        errors=errors,
        **common_context(),
    )
