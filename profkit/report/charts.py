"""Chart geometry for inline SVG (computed here, drawn by the templates: no JS library, no network)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str
    value_us: float
    series: int = 0


@dataclass
class BarChart:
    width: int
    height: int
    bars: list[Bar]
    max_value_us: float
    y_ticks: list[tuple[float, float]]  # (y position, value in us)
    x_labels: list[tuple[float, str]]
    series_names: list[str]


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    magnitude = 10 ** len(str(int(value))) / 10
    for step in (1, 2, 2.5, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return value


def step_chart(series: list[list[float]], names: list[str], width: int = 760, height: int = 220) -> BarChart:
    """Grouped bars: one group per step, one bar per series (run)."""
    left, bottom, top = 56.0, 24.0, 10.0
    groups = max((len(s) for s in series), default=0)
    peak = _nice_max(max((v for s in series for v in s), default=0.0))
    plot_w, plot_h = width - left - 8, height - bottom - top
    group_w = plot_w / groups if groups else plot_w
    bar_w = max(group_w * 0.8 / max(len(series), 1), 1.0)
    bars = []
    for index, values in enumerate(series):
        for step, value in enumerate(values):
            bar_h = plot_h * value / peak
            bars.append(
                Bar(
                    x=left + step * group_w + group_w * 0.1 + index * bar_w,
                    y=top + plot_h - bar_h,
                    width=bar_w,
                    height=bar_h,
                    label=f"{names[index]} step {step}",
                    value_us=value,
                    series=index,
                )
            )
    ticks = [(top + plot_h - plot_h * f, peak * f) for f in (0, 0.25, 0.5, 0.75, 1.0)]
    every = max(1, groups // 20)
    labels = [(left + s * group_w + group_w / 2, str(s)) for s in range(0, groups, every)]
    return BarChart(width, height, bars, peak, ticks, labels, names)
