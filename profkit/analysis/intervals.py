"""Interval arithmetic on numpy arrays: unions and point-in-interval lookups."""

from __future__ import annotations

import numpy as np


def merge_blocks(starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The union of ``[start, end)`` intervals as sorted, disjoint blocks.

    Returns the blocks' starts and ends, and for each block the index (into the inputs) of the interval
    that opens it and of the one that reaches its end.
    """
    starts = np.asarray(starts, dtype=np.float64)
    ends = np.asarray(ends, dtype=np.float64)
    if starts.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return starts, ends, empty, empty
    order = np.argsort(starts, kind="stable")
    sorted_starts, sorted_ends = starts[order], ends[order]
    running_end = np.maximum.accumulate(sorted_ends)
    # a new block starts where an interval begins after everything before it ended
    new_block = np.empty(starts.size, dtype=bool)
    new_block[0] = True
    new_block[1:] = sorted_starts[1:] > running_end[:-1]
    first = np.flatnonzero(new_block)
    last = np.append(first[1:] - 1, starts.size - 1)
    position = np.arange(starts.size)
    holder = np.maximum.accumulate(np.where(sorted_ends >= running_end, position, 0))  # who holds the running end
    return sorted_starts[first], running_end[last], order[first], order[holder[last]]


def merge(starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The union of ``[start, end)`` intervals as sorted, disjoint intervals."""
    merged_starts, merged_ends, _, _ = merge_blocks(starts, ends)
    return merged_starts, merged_ends


def union_length(starts: np.ndarray, ends: np.ndarray) -> float:
    """Total length of the union of ``[start, end)`` intervals (the sums of :func:`merge` with a third of its
    temporary memory: no block indices, ends accumulated in place)."""
    if np.size(starts) == 0:
        return 0.0
    order = np.argsort(starts, kind="stable")
    sorted_starts = np.asarray(starts, dtype=np.float64)[order]
    running_end = np.asarray(ends, dtype=np.float64)[order]
    del order
    np.maximum.accumulate(running_end, out=running_end)
    new_block = np.flatnonzero(sorted_starts[1:] > running_end[:-1]) + 1  # where a block opens (after the first)
    first = np.concatenate(([0], new_block))
    last = np.append(new_block - 1, running_end.size - 1)
    return float(np.sum(running_end[last] - sorted_starts[first]))


def locate(points: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Index of the disjoint interval holding each point (intervals sorted by start), or -1."""
    points = np.asarray(points, dtype=np.float64)
    if starts.size == 0:
        return np.full(points.size, -1, dtype=np.int64)
    index = np.searchsorted(starts, points, side="right") - 1
    found = index >= 0
    found[found] = points[found] <= ends[index[found]]
    return np.where(found, index, -1)


def gaps(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Lengths of the idle gaps between merged busy intervals."""
    merged_starts, merged_ends = merge(starts, ends)
    if merged_starts.size < 2:
        return np.zeros(0)
    return merged_starts[1:] - merged_ends[:-1]
