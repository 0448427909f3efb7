"""A load-test document -> a self-contained HTML report (``templates/load.html.j2``: offline, autoescaped).

It leads with the answer (goodput under the SLO, the knee, why the ramp stopped), then the latency-throughput
curve and latency against load with fitted, labelled axes, the levels, errors by kind and the server phases.
"""

from __future__ import annotations

from typing import Any

from profkit.model.load import LoadLevel, LoadTestResult
from profkit.report.charts import axis_ticks, nice_axis
from profkit.report.html import common_context
from profkit.report.jinja import render

_W, _H = 620.0, 240.0
#: profkit serve's Server-Timing phases in the order a request passes them (other servers' phases follow, sorted)
PHASE_ORDER = ("queue", "preprocess", "text_encode", "denoise", "vae_decode", "encode_image")
_LEFT, _RIGHT, _TOP, _BOTTOM = 64.0, 20.0, 16.0, 44.0


def xy_chart(points: list[tuple[float, float]], x_label: str, y_label: str, slo: float | None = None) -> dict[str, Any]:
    """SVG geometry of a line through ``(x, y)`` points on axes from 0 fitted to the data (and to the SLO line)."""
    x_top, x_step = nice_axis(max((x for x, _ in points), default=1.0))
    y_top, y_step = nice_axis(max([y for _, y in points] + ([slo] if slo else []), default=1.0))
    plot_w, plot_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM

    def at(x: float, y: float) -> tuple[float, float]:
        return _LEFT + plot_w * x / x_top, _TOP + plot_h - plot_h * y / y_top

    dots = [at(x, y) for x, y in points]
    return {
        "width": _W,
        "height": _H,
        "left": _LEFT,
        "top": _TOP,
        "right": _W - _RIGHT,
        "bottom": _TOP + plot_h,
        "points": " ".join(f"{x:.1f},{y:.1f}" for x, y in dots),
        "dots": dots,
        "x_ticks": [(at(v, 0)[0], v) for v in axis_ticks(x_top, x_step)],
        "y_ticks": [(at(0, v)[1], v) for v in axis_ticks(y_top, y_step)],
        "slo_y": at(0, slo)[1] if slo else None,
        "x_label": x_label,
        "y_label": y_label,
    }


def _load_of(level: LoadLevel) -> float:
    return float(level.users if level.users is not None else level.rate or 0.0)


def headline(result: LoadTestResult) -> str:
    """The answer first: the highest throughput whose P95 meets the SLO, or that none did."""
    unit = "arrivals/s" if result.mode == "open" else "users"
    if result.goodput_rps is None:
        slo = f"P95 <= {result.slo_ms:g} ms" if result.slo_ms is not None else "an error rate under the threshold"
        return f"No level met {slo}."
    best = max((lvl for lvl in result.levels if abs(lvl.rps - result.goodput_rps) < 1e-9), key=_load_of, default=None)
    if best is not None and unit == "users" and _load_of(best) == 1:
        unit = "user"
    where = f" at {_load_of(best):g} {unit}" if best is not None else ""
    target = f" with P95 <= {result.slo_ms:g} ms" if result.slo_ms is not None else ""
    return f"Goodput {result.goodput_rps:.2f} req/s ({result.goodput_images_per_s or 0:.2f} images/s){target}{where}."


def load_html(result: LoadTestResult) -> str:
    levels = [lvl for lvl in result.levels if lvl.latency is not None]
    load_label = "arrivals/s" if result.mode == "open" else "users"
    curve = xy_chart(
        [(lvl.rps, lvl.latency.p95) for lvl in levels], "answered requests/s", "P95 latency (ms)", result.slo_ms
    )  # type: ignore[union-attr]
    by_load = xy_chart(
        [(_load_of(lvl), lvl.latency.p95) for lvl in levels], load_label, "P95 latency (ms)", result.slo_ms
    )  # type: ignore[union-attr]
    found = {name for lvl in result.levels for name in lvl.server_phases_ms if name != "step"}
    phases = [p for p in PHASE_ORDER if p in found] + sorted(found - set(PHASE_ORDER))
    errors = sorted({kind for lvl in result.levels for kind in lvl.errors})
    knee = result.levels[result.knee_index] if result.knee_index is not None else None
    return render(
        "load.html.j2",
        result=result,
        headline=headline(result),
        knee=knee,
        knee_load=_load_of(knee) if knee is not None else None,
        curve=curve,
        by_load=by_load,
        load_label=load_label,
        load_of=_load_of,
        phases=phases,
        errors=errors,
        data=result.to_builtins(),
        **common_context(),
    )
