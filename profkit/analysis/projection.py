"""GPU projection of profkit ranges (the idea of Nsight Systems' ``nvtx_gpu_proj_trace``).

A CPU range (a stage, a denoise step) launches work that the GPU may run much later. Its **projection** is the
GPU span from the first to the last kernel/copy launched inside the range (attributed by
:mod:`profkit.analysis.attribution`), the GPU busy time inside that span that belongs to the range (the union of
its own work), and how much the span overlaps the projections of the neighbouring ranges (the ranges before and
after it in projected-start order). ``busy / span`` never passes 100%, unlike ``busy / CPU wall``.
"""

from __future__ import annotations

import itertools

import msgspec
import numpy as np

from profkit.analysis.intervals import union_length


class Projection(msgspec.Struct):
    """One range projected onto the GPU; times in microseconds from the trace start."""

    start_us: float  # first GPU activity launched inside the range
    end_us: float  # end of the last one
    span_us: float  # end - start
    busy_us: float  # union of the range's own GPU work
    busy_share: float  # busy / span (1.0 for an empty span with work)
    lag_us: float  # how long after the CPU range ended the GPU finished its work (negative: before)
    overlap_prev_us: float = 0.0  # span shared with the projection of the range before it
    overlap_next_us: float = 0.0  # span shared with the projection of the range after it
    work_items: int = 0


def project(starts: np.ndarray, ends: np.ndarray, cpu_end_us: float) -> Projection | None:
    """The projection of the GPU work ``[starts, ends)`` launched inside a CPU range ending at ``cpu_end_us``."""
    starts = np.asarray(starts, dtype=np.float64)
    ends = np.asarray(ends, dtype=np.float64)
    if starts.size == 0:
        return None
    first, last = float(starts.min()), float(ends.max())
    busy = union_length(starts, ends)
    span = last - first
    return Projection(
        start_us=first,
        end_us=last,
        span_us=span,
        busy_us=busy,
        busy_share=busy / span if span > 0 else 1.0,
        lag_us=last - cpu_end_us,
        work_items=int(starts.size),
    )


def _overlap(a: Projection, b: Projection) -> float:
    return max(0.0, min(a.end_us, b.end_us) - max(a.start_us, b.start_us))


def link_neighbours(projections: list[Projection | None]) -> None:
    """Fill each projection's overlap with its neighbours, neighbours taken in projected-start order."""
    present = sorted((p for p in projections if p is not None), key=lambda p: p.start_us)
    for before, after in itertools.pairwise(present):
        shared = _overlap(before, after)
        before.overlap_next_us = shared
        after.overlap_prev_us = shared
