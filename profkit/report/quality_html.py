"""The quality report: verdicts, per-configuration scores, worst pairs side by side with a difference heat map,
per-step latent drift, and the speed-versus-quality chart with its Pareto front (inline SVG and PNG data URIs:
the file works offline)."""

from __future__ import annotations

import math
from typing import Any

from profkit.model.quality import ParetoPoint, QualityDocument
from profkit.report.html import common_context
from profkit.report.jinja import render

WIDTH, HEIGHT, PAD = 560, 300, 48


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
        marks.append(
            {
                "label": p.label,
                "x": _scale(p.seconds, low_s, high_s, PAD, WIDTH - PAD / 2),
                "y": _scale(quality, low_q, top, HEIGHT - PAD, PAD / 2),
                "on_front": p.on_front,
                "text": f"{p.label}: {p.seconds * 1000:.1f} ms, "
                + ("identical" if p.quality is None else f"{p.quality:.2f}"),
            }
        )
    front = sorted((m for m in marks if m["on_front"]), key=lambda m: m["x"])
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "pad": PAD,
        "marks": marks,
        "front": " ".join(f"{m['x']:.1f},{m['y']:.1f}" for m in front),
        "x_label": f"latency per call (s), {low_s:.3f} to {high_s:.3f}",
        "y_label": "PSNR (dB; top: identical)" if metric == "psnr_db" else "CLIP score",
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
        drift_labels=[c.label for c in document.configs if c.drift is not None],
        fmt=fmt,
        **common_context(),
    )
