"""The quality report: verdicts, per-configuration scores, worst pairs side by side with a difference heat map,
per-step latent drift, and the speed-versus-quality chart with its Pareto front (inline SVG and PNG data URIs:
the file works offline)."""

from __future__ import annotations

import math
from typing import Any

from profkit.model.quality import ParetoPoint, QualityDocument
from profkit.report.charts import axis_ticks, nice_axis
from profkit.report.html import common_context
from profkit.report.jinja import render

WIDTH, HEIGHT, PAD = 560, 300, 48
DRIFT_WIDTH, DRIFT_HEIGHT = 640, 220
COLORS = ("#3866d6", "#e07b39", "#2a9d8f", "#8e44ad", "#c0392b", "#7f8c8d")


def _scale(value: float, low: float, high: float, out_low: float, out_high: float) -> float:
    if high <= low:
        return (out_low + out_high) / 2
    return out_low + (value - low) / (high - low) * (out_high - out_low)


def pareto_svg(points: list[ParetoPoint], metric: str) -> dict[str, Any]:
    """Positions for the speed-versus-quality chart: identical images (PSNR infinite) sit on the top edge."""
    finite = [p.quality for p in points if p.quality is not None]
    low_q = min(finite, default=0.0)
    high_q = max(finite, default=1.0)
    if low_q == high_q:
        low_q, high_q = low_q - 1, high_q + 1
    top = high_q + (high_q - low_q) * 0.15
    seconds = [p.seconds for p in points]
    low_s, high_s = min(seconds) * 0.95, max(seconds) * 1.05
    marks = []
    for p in points:
        quality = top if p.quality is None else p.quality
        x = _scale(p.seconds, low_s, high_s, PAD, WIDTH - PAD / 2)
        marks.append(
            {
                "label": p.label,
                "x": x,
                "anchor": "end" if x > WIDTH * 0.7 else "start",  # labels near the right edge grow leftwards
                "y": _scale(quality, low_q, top, HEIGHT - PAD, PAD / 2),
                "on_front": p.on_front,
                "text": f"{p.label}: {p.seconds * 1000:.1f} ms, "
                + ("identical" if p.quality is None else f"{p.quality:.2f}"),
            }
        )
    front = sorted((m for m in marks if m["on_front"]), key=lambda m: m["x"])
    y_ticks = [(_scale(v, low_q, top, HEIGHT - PAD, PAD / 2), f"{v:.1f}") for v in sorted({low_q, high_q})]
    if any(p.quality is None for p in points):
        y_ticks.append((PAD / 2, "∞"))
    return {
        "y_ticks": y_ticks,
        "width": WIDTH,
        "height": HEIGHT,
        "pad": PAD,
        "marks": marks,
        "front": " ".join(f"{m['x']:.1f},{m['y']:.1f}" for m in front),
        "x_label": f"latency per image (s), {low_s:.3f} to {high_s:.3f}",
        "y_label": "PSNR (dB; top: identical)" if metric == "psnr_db" else "CLIP score",
    }


def drift_svg(document: QualityDocument) -> dict[str, Any] | None:
    """The per-step drift chart: each configuration's distance to the reference's latents (% of their norm) by
    step, and the divergence threshold as a dashed line."""
    drifts = [(c.label, c.drift) for c in document.configs if c.drift is not None and c.drift.steps]
    if not drifts:
        return None
    left, right, top, bottom = 56.0, 16.0, 16.0, 32.0
    plot_w, plot_h = DRIFT_WIDTH - left - right, DRIFT_HEIGHT - top - bottom
    threshold = drifts[0][1].threshold * 100
    values = [s.relative * 100 for _, d in drifts for s in d.steps if math.isfinite(s.relative)]
    y_max, y_step = nice_axis(max([*values, threshold]))
    last = max(s.step for _, d in drifts for s in d.steps)

    def x(step: int) -> float:
        return left + (plot_w * step / last if last else plot_w / 2)

    def y(value: float) -> float:
        return top + plot_h - plot_h * min(value, y_max) / y_max

    lines = []
    for index, (label, drift) in enumerate(drifts):
        finite = [s for s in drift.steps if math.isfinite(s.relative)]
        lines.append(
            {
                "label": label,
                "color": COLORS[index % len(COLORS)],
                "points": " ".join(f"{x(s.step):.1f},{y(s.relative * 100):.1f}" for s in finite),
                "dots": [(x(s.step), y(s.relative * 100), f"step {s.step}: {s.relative * 100:.3f}%") for s in finite],
            }
        )
    steps = axis_ticks(*nice_axis(last), most=11) if last else [0.0]
    return {
        "width": DRIFT_WIDTH,
        "height": DRIFT_HEIGHT,
        "left": left,
        "top": top,
        "bottom": DRIFT_HEIGHT - bottom,
        "right": DRIFT_WIDTH - right,
        "lines": lines,
        "threshold_y": y(threshold),
        "threshold": threshold,
        "y_ticks": [(y(v), f"{v:g}") for v in axis_ticks(y_max, y_step, most=6)],
        "x_ticks": [(x(int(v)), int(v)) for v in steps if v <= last and v == int(v)],
    }


def drift_rows(document: QualityDocument) -> list[dict[str, Any]]:
    """One row per step with each configuration's relative drift (for the drift table)."""
    rows: dict[int, dict[str, Any]] = {}
    for config in document.configs:
        for step in config.drift.steps if config.drift else []:
            rows.setdefault(step.step, {"step": step.step, "values": {}})["values"][config.label] = step
    return [rows[key] for key in sorted(rows)]


def fmt(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if math.isinf(value):
        return "∞"
    return f"{value:.{digits}f}"


def quality_html(document: QualityDocument, visuals: dict[str, list[Any]] | None = None) -> str:
    chart = pareto_svg(document.pareto, document.pareto_metric or "psnr_db") if len(document.pareto) >= 2 else None
    return render(
        "quality.html.j2",
        d=document,
        data=document.to_builtins(),
        visuals=visuals or {},
        chart=chart,
        drift=drift_rows(document),
        drift_chart=drift_svg(document),
        computed={  # columns the reference row shows as identical only when some configuration has them
            "lpips": any(c.lpips is not None for c in document.configs),
            "fid": any(c.fid is not None for c in document.configs),
            "kid": any(c.kid is not None for c in document.configs),
        },
        drift_labels=[c.label for c in document.configs if c.drift is not None],
        fmt=fmt,
        **common_context(),
    )
