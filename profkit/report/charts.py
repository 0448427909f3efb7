"""Chart geometry for inline SVG (computed here, drawn by the templates: no JS library, no network)."""

from __future__ import annotations

import math

import msgspec


class Bar(msgspec.Struct):
    x: float
    y: float
    width: float
    height: float
    label: str
    value_us: float
    series: int = 0


class BarChart(msgspec.Struct):
    width: int
    height: int
    bars: list[Bar]
    max_value_us: float
    y_ticks: list[tuple[float, float]]  # (y position, value in us)
    x_labels: list[tuple[float, str]]
    series_names: list[str]


def nice_axis(value: float, low: float = 0.0) -> tuple[float, float]:
    """(top, tick step) of an axis from ``low`` that fits ``value``: a round step of about an eighth of the range,
    so the top stays within 1.25x of the data (not the 2x of rounding the top itself)."""
    import math

    span = value - low
    if not span > 0 or not math.isfinite(span):
        return (low + 1.0, 0.25)
    raw = span / 8
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    top = low + math.ceil(span / step - 1e-9) * step
    return (top, step)


def axis_ticks(top: float, step: float, low: float = 0.0, most: int = 9) -> list[float]:
    """Tick values from ``low`` to ``top``: every ``step``, thinned to at most ``most`` (the top always kept)."""
    count = round((top - low) / step)
    every = max(1, math.ceil(count / (most - 1))) if count else 1
    values = [low + i * step for i in range(0, count + 1, every)]
    if values[-1] < top - 1e-9:
        values.append(top)
    return values


def step_chart(series: list[list[float]], names: list[str], width: int = 760, height: int = 220) -> BarChart:
    """Grouped bars: one group per step, one bar per series (run)."""
    left, bottom, top = 56.0, 24.0, 10.0
    groups = max((len(s) for s in series), default=0)
    peak, tick_step = nice_axis(max((v for s in series for v in s), default=0.0))
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
    ticks = [(top + plot_h - plot_h * v / peak, v) for v in axis_ticks(peak, tick_step)]
    every = max(1, groups // 20)
    labels = [(left + s * group_w + group_w / 2, str(s)) for s in range(0, groups, every)]
    return BarChart(width, height, bars, peak, ticks, labels, names)


class DistributionRow(msgspec.Struct):
    name: str
    y: float
    whisker: tuple[float, float]  # x of min and max
    box: tuple[float, float]  # x of P25 and P75
    median: float
    p90: float
    p99: float
    dots: list[float]  # x of every sample


class DistributionChart(msgspec.Struct):
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
    low, high, step = latency_axis(min(values, default=0.0), max(values, default=1.0))
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
    ticks = [(x(v), v) for v in axis_ticks(high, step, low)]
    return DistributionChart(width, height, rows, ticks, row_h)


def latency_axis(lowest: float, highest: float) -> tuple[float, float, float]:
    """(low, high, step) of a latency axis: from 0 when the data spans most of it, else from a round value below
    the fastest sample, so that a 174 ms vs 190 ms difference is not squeezed into the right tenth."""
    if highest <= 0 or lowest < 0.5 * highest:
        top, step = nice_axis(highest)
        return 0.0, top, step
    step = nice_axis(highest - lowest * 0.95)[1]
    low = math.floor(lowest * 0.95 / step) * step
    top, step = nice_axis(highest, low)
    return low, top, step


class LineSeries(msgspec.Struct):
    name: str
    points: str  # SVG polyline "x,y x,y ..."
    color: str


class LineChart(msgspec.Struct):
    width: int
    height: int
    series: list[LineSeries]
    y_ticks: list[tuple[float, float]]  # (y position, value)
    x_ticks: list[tuple[float, float, str]]  # (x position, seconds, text-anchor: the last one ends at the edge)
    y_label: str  # the y axis's unit ("%", "MB")
    bands: list[tuple[float, float, str]]  # (x0, x1, label): what ran when
    left: float = 56.0
    right: float = 16.0
    top: float = 24.0  # room for the unit above the y axis
    bottom: float = 24.0


def from_first_trial(t: list[float], labels: list[str] | None, start_s: float | None = None) -> int:
    """Index of the first sample taken once the first measured trial started (at ``start_s`` when known, else the
    first sample labelled with a configuration rather than loading or warm-up): the readings before it (the sampler's
    first CPU reading counts the whole start-up, thousands of %) are dropped from the charts."""
    if start_s is not None:
        return next((i for i, ti in enumerate(t) if ti >= start_s), len(t))
    for index, label in enumerate(labels or ()):
        if label and not label.startswith(("loading", "warm-up")):
            return index
    return 0


def line_chart(
    t: list[float],
    series: dict[str, list[float]],
    y_label: str,
    labels: list[str] | None = None,
    width: int = 860,
    height: int = 180,
    start_s: float | None = None,
) -> LineChart:
    """Time series over seconds (x) with shaded bands where each labelled configuration ran; both axes fitted to
    the data (the top within 1.25x of the largest reading), samples before the first trial dropped."""
    colors = ["var(--s0)", "var(--s1)", "#2a9d8f", "#8e44ad"]
    first = from_first_trial(t, labels, start_s)
    t = t[first:]
    series = {name: values[first:] for name, values in series.items()}
    labels = labels[first:] if labels else None
    left, bottom, top, right = 56.0, 24.0, 24.0, 16.0
    plot_w, plot_h = width - left - right, height - bottom - top
    t0 = t[0] if t else 0.0
    t_top, t_step = nice_axis(max(t, default=1.0) - t0)
    finite = [v for vs in series.values() for v in vs if not math.isnan(v)]
    y_max, y_step = nice_axis(max(finite, default=1.0))

    def x(ti: float) -> float:
        return left + plot_w * (ti - t0) / t_top

    lines = []
    for index, (name, values) in enumerate(series.items()):
        points = " ".join(
            f"{x(ti):.1f},{top + plot_h - plot_h * v / y_max:.1f}"
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
                    bands.append((x(t[start]), x(t[i - 1]), labels[start]))
                start = i
    y_ticks = [(top + plot_h - plot_h * v / y_max, v) for v in axis_ticks(y_max, y_step)]
    seconds = axis_ticks(t_top, t_step, most=7)
    x_ticks = [(x(t0 + v), v, "end" if v == seconds[-1] else "middle") for v in seconds]
    return LineChart(width, height, lines, y_ticks, x_ticks, y_label, bands, left, right, top, bottom)
