"""Summary statistics of a sample."""

from __future__ import annotations

import msgspec
import numpy as np

from profkit.parsers.columns import median


class Summary(msgspec.Struct, frozen=True):
    count: int
    mean: float
    median: float
    min: float
    max: float
    std: float  # sample standard deviation (n-1); 0 for one value
    cv: float  # std / mean; 0 when the mean is 0


def summarize(values: np.ndarray | list[float]) -> Summary | None:
    data = np.asarray(values, dtype=np.float64)
    data = data[np.isfinite(data)]
    if data.size == 0:
        return None
    mean = float(np.mean(data))
    std = float(np.std(data, ddof=1)) if data.size > 1 else 0.0
    return Summary(
        count=int(data.size),
        mean=mean,
        median=median(data),
        min=float(np.min(data)),
        max=float(np.max(data)),
        std=std,
        cv=std / mean if mean else 0.0,
    )
