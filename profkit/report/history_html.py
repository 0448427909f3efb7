"""History document -> self-contained HTML: one trend chart per metric, environment changes marked."""

from __future__ import annotations

import math
from dataclasses import dataclass

from profkit.model.history import History
from profkit.report.html import common_context
from profkit.report.jinja import render

METRICS = {
    "p50_ms": ("P50 end to end", "ms"),
    "p95_ms": ("P95 end to end", "ms"),
    "images_per_s": ("throughput", "images/s"),
    "peak_allocated_mb": ("peak device memory", "MB"),
    "usd_per_1000_images": ("cost per 1,000 images", "USD"),
}
COLORS = ["#3866d6", "#e07b24", "#2a9d8f", "#8e44ad", "#d92d20", "#7a5af8"]


@dataclass(frozen=True)
class TrendLine:
    name: str
    color: str
    points: list[tuple[float, float, str]]  # x, y, tooltip


@dataclass(frozen=True)
class TrendChart:
    title: str
    unit: str
    width: int
    height: int
    lines: list[TrendLine]
    y_ticks: list[tuple[float, str]]
    x_ticks: list[tuple[float, str]]
    marks: list[tuple[float, str]]  # environment changes: x, what changed
    regressions: list[tuple[float, float, str]]


def _fmt(value: float) -> str:
    return f"{value:.3g}" if value < 100 else f"{value:,.0f}"


def _chart(doc: History, key: str, width: int = 860, height: int = 220) -> TrendChart | None:
    title, unit = METRICS[key]
    values = [getattr(p, key) for s in doc.series for p in s.points if getattr(p, key) is not None]
    if not values:
        return None
    left, right, top, bottom = 64.0, 16.0, 12.0, 28.0
    plot_w, plot_h = width - left - right, height - top - bottom
    low, high = min(values), max(values)
    pad = (high - low) * 0.1 or abs(high) * 0.1 or 1.0
    low, high = max(0.0, low - pad), high + pad
    n = max(len(doc.runs) - 1, 1)

    def x_of(run: int) -> float:
        return left + plot_w * (run / n if len(doc.runs) > 1 else 0.5)

    def y_of(value: float) -> float:
        return top + plot_h - plot_h * (value - low) / (high - low)

    lines, regressions = [], []
    for index, series in enumerate(doc.series):
        points = []
        for p in series.points:
            value = getattr(p, key)
            if value is None or not math.isfinite(value):
                continue
            run = doc.runs[p.run]
            commit = run.commit or "no commit"
            tip = f"{series.config}: {_fmt(value)} {unit} · {run.recorded_at} · {commit} · {run.source}"
            points.append((x_of(p.run), y_of(value), tip))
            if p.regressed and key in ("p50_ms", "p95_ms"):
                regressions.append((x_of(p.run), y_of(value), f"{series.config}: {p.change:+.1%} (p={p.p_value:.3g})"))
        lines.append(TrendLine(series.config, COLORS[index % len(COLORS)], points))
    y_ticks = [(y_of(low + (high - low) * f), f"{_fmt(low + (high - low) * f)}") for f in (0, 0.5, 1)]
    step = max(1, len(doc.runs) // 8)
    x_ticks = [(x_of(i), run.recorded_at[:10]) for i, run in enumerate(doc.runs) if i % step == 0]
    marks = [(x_of(i), "; ".join(run.environment_changes)) for i, run in enumerate(doc.runs) if run.environment_changes]
    return TrendChart(f"{title} ({unit})", unit, width, height, lines, y_ticks, x_ticks, marks, regressions)


def verdict(doc: History) -> str:
    latest = doc.latest_regressions()
    runs = f"{len(doc.runs)} runs of {len(doc.series)} configuration{'s' if len(doc.series) != 1 else ''}"
    if latest:
        names = ", ".join(f"{config} {p.change:+.1%}" for config, p in latest)
        return f"The newest run is slower than the one before it: {names} ({runs})."
    if doc.threshold is None:
        return f"{runs}; regressions are judged against a threshold only when one is given."
    return f"No configuration's newest run is slower than its previous run by more than {doc.threshold:.0%} ({runs})."


def history_html(doc: History) -> str:
    charts = [chart for key in METRICS if (chart := _chart(doc, key)) is not None]
    return render(
        "history.html.j2", h=doc, charts=charts, verdict=verdict(doc), data=doc.to_builtins(), **common_context()
    )
