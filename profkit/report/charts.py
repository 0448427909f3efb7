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


@dataclass
class DistributionRow:
    name: str
    y: float
    whisker: tuple[float, float]  # x of min and max
    box: tuple[float, float]  # x of P25 and P75
    median: float
    p90: float
    p99: float
    dots: list[float]  # x of every sample


@dataclass
class DistributionChart:
    width: int
    height: int
    rows: list[DistributionRow]
    x_ticks: list[tuple[float, float]]  # (x position, value in ms)
    row_height: float


def distribution_chart(samples: dict[str, list[float]], width: int = 860) -> DistributionChart:
    """One row per configuration: every sample as a dot, P25-P75 box, median, P90 and P99 marks (ms)."""
    import numpy as np

    left, right, row_h = 150.0, 16.0, 34.0
    values = [v for vs in samples.values() for v in vs]
    low = 0.0
    high = _nice_max(max(values, default=1.0))
    plot_w = width - left - right

    def x(value: float) -> float:
        return left + plot_w * (value - low) / (high - low)

    rows = []
    for index, (name, data) in enumerate(samples.items()):
        if not data:
            continue
        array = np.asarray(data, dtype=float)
        p25, p50, p75, p90, p99 = np.percentile(array, [25, 50, 75, 90, 99])
        rows.append(
            DistributionRow(
                name=name,
                y=10 + index * row_h + row_h / 2,
                whisker=(x(array.min()), x(array.max())),
                box=(x(p25), x(p75)),
                median=x(p50),
                p90=x(p90),
                p99=x(p99),
                dots=[x(v) for v in array],
            )
        )
    height = int(10 + len(samples) * row_h + 26)
    ticks = [(x(high * f), high * f) for f in (0, 0.25, 0.5, 0.75, 1.0)]
    return DistributionChart(width, height, rows, ticks, row_h)


@dataclass
class LineSeries:
    name: str
    points: str  # SVG polyline "x,y x,y ..."
    color: str


@dataclass
class LineChart:
    width: int
    height: int
    series: list[LineSeries]
    y_ticks: list[tuple[float, float]]
    x_ticks: list[tuple[float, float]]
    y_label: str
    bands: list[tuple[float, float, str]]  # (x0, x1, label): what ran when


def line_chart(
    t: list[float],
    series: dict[str, list[float]],
    y_label: str,
    labels: list[str] | None = None,
    width: int = 860,
    height: int = 200,
) -> LineChart:
    """Time series over seconds (x) with shaded bands where each labelled configuration ran."""
    import math

    colors = ["var(--s0)", "var(--s1)", "#2a9d8f", "#8e44ad"]
    left, bottom, top, right = 56.0, 24.0, 10.0, 10.0
    plot_w, plot_h = width - left - right, height - bottom - top
    t_max = max(t, default=1.0) or 1.0
    finite = [v for vs in series.values() for v in vs if not math.isnan(v)]
    y_max = _nice_max(max(finite, default=1.0))
    lines = []
    for index, (name, values) in enumerate(series.items()):
        points = " ".join(
            f"{left + plot_w * ti / t_max:.1f},{top + plot_h - plot_h * v / y_max:.1f}"
            for ti, v in zip(t, values, strict=False)
            if not math.isnan(v)
        )
        lines.append(LineSeries(name, points, colors[index % len(colors)]))
    bands: list[tuple[float, float, str]] = []
    if labels:
        start = 0
        for i in range(1, len(labels) + 1):
            if i == len(labels) or labels[i] != labels[start]:
                if labels[start]:
                    bands.append((left + plot_w * t[start] / t_max, left + plot_w * t[i - 1] / t_max, labels[start]))
                start = i
    y_ticks = [(top + plot_h - plot_h * f, y_max * f) for f in (0, 0.5, 1.0)]
    x_ticks = [(left + plot_w * f, t_max * f) for f in (0, 0.25, 0.5, 0.75, 1.0)]
    return LineChart(width, height, lines, y_ticks, x_ticks, y_label, bands)
