"""Idle time in any window from the merged busy blocks equals the union of the work clipped to that window."""

from __future__ import annotations

import numpy as np

from profkit.analysis.graphs import _Busy
from profkit.analysis.intervals import union_length


def test_idle_from_merged_blocks_equals_union_of_clipped_items() -> None:
    rng = np.random.default_rng(7)
    starts = np.round(rng.uniform(0, 1000, 400), 1)
    ends = starts + np.round(rng.exponential(3, 400), 1) * (rng.random(400) > 0.05)  # some zero-length items
    busy = _Busy(starts, ends)
    lows, widths = rng.uniform(-50, 1050, 300), rng.uniform(0, 40, 300)
    windows = [(float(a), float(a + w)) for a, w in zip(lows, widths, strict=True)]
    windows += [(float(starts[3]), float(ends[3])), (float(ends[10]), float(ends[10]) + 1.0), (5.0, 5.0), (9.0, 2.0)]
    for start, end in windows:
        if end <= start:
            assert busy.idle(start, end) == 0.0
            continue
        inside = (ends > start) & (starts < end)
        union = union_length(np.clip(starts[inside], start, end), np.clip(ends[inside], start, end))
        assert busy.idle(start, end) == max(end - start - union, 0.0)  # bit for bit
