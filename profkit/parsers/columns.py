"""Column helpers shared by the parsers and the analyses (numpy only: cheap to import)."""

from __future__ import annotations

from typing import Any

import numpy as np


def object_column(length: int, value: Any) -> np.ndarray:
    """An object array with ``value`` in every row: the same object, not one copy per row as
    ``np.full(length, "text", dtype=object)`` makes (it goes through a fixed-width string array)."""
    column = np.empty(length, dtype=object)
    column.fill(value)
    return column


def choose(condition: np.ndarray, if_true: str, if_false: str) -> np.ndarray:
    """An object array holding ``if_true`` where ``condition`` holds, else ``if_false``: the same two string objects
    in every row (``np.where(...).astype(object)`` would make a new string per row)."""
    chosen = object_column(np.size(condition), if_false)
    chosen[condition] = if_true
    return chosen


def text_column(values: Any) -> np.ndarray:
    """An object array of text: ``str`` values kept, ``None`` (missing) kept, anything else as ``str(value)``."""
    column = np.empty(len(values), dtype=object)
    column[:] = values
    kinds = set(map(type, values if isinstance(values, list) else column.tolist()))
    if kinds - {str, type(None)}:
        column[:] = [value if value is None or type(value) is str else str(value) for value in column.tolist()]
    return column


def distinct(values: Any) -> np.ndarray:
    """The sorted distinct values (as ``np.unique``, NaNs as one, without its masked-array check, which imports
    ``numpy.ma``: 6 ms of a command's start)."""
    ordered = np.sort(np.asarray(values).ravel())
    if ordered.size < 2:
        return ordered
    first = np.empty(ordered.size, dtype=bool)
    first[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    if ordered.dtype.kind in "fc" and np.isnan(ordered[-1]):  # NaNs sort last and differ from each other
        first[int(np.searchsorted(ordered, np.nan)) + 1 :] = False
    return ordered[first]


def isin(values: Any, wanted: Any) -> np.ndarray:
    """Whether each value is one of ``wanted`` (as ``np.isin``, whose unique step imports ``numpy.ma``): a few
    wanted values are compared one by one, many are looked up in a set (text) or their sorted array (numbers)."""
    values = np.asarray(values)
    wanted = np.asarray(wanted)
    if wanted.size <= 16:
        found = np.zeros(values.shape, dtype=bool)
        for value in dict.fromkeys(wanted.ravel().tolist()):
            found |= values == value
        return found
    if values.dtype == object or wanted.dtype == object:
        lookup = set(wanted.ravel().tolist())
        return np.fromiter((value in lookup for value in values.ravel().tolist()), bool, values.size).reshape(
            values.shape
        )
    ordered = np.sort(wanted.ravel())
    at = np.minimum(np.searchsorted(ordered, values), ordered.size - 1)
    return ordered[at] == values


def percentiles(values: Any, q: Any) -> np.ndarray:
    """``np.percentile(values, q)`` (linear interpolation, NaN when any value is NaN) without its unique step, which
    imports ``numpy.ma``; one partition around the ranks needed, no full sort."""
    data = np.asarray(values, dtype=np.float64).ravel()
    if data.size == 0:
        raise ValueError("percentiles of no values")
    rank = np.asarray(q, dtype=np.float64) / 100 * (data.size - 1)
    below = np.floor(rank).astype(np.intp)
    above = np.minimum(below + 1, data.size - 1)
    ordered = np.partition(data, sorted({*below.ravel().tolist(), *above.ravel().tolist(), data.size - 1}))
    if np.isnan(ordered[-1]):
        return np.full(rank.shape, np.nan)
    low, high, step = ordered[below], ordered[above], rank - below
    gap = high - low
    # numpy's lerp: from the nearer end, so that a step of 1 gives ``high`` exactly
    return np.where(step >= 0.5, high - gap * (1 - step), low + gap * step)


def median(values: Any) -> float:
    """``np.median(values)`` (NaN when empty or any value is NaN) without its masked-array check, which imports
    ``numpy.ma``."""
    data = np.asarray(values, dtype=np.float64).ravel()
    if data.size == 0:
        return float("nan")
    half = data.size // 2
    ordered = np.partition(data, sorted({half - 1 if data.size % 2 == 0 else half, half, data.size - 1}))
    if np.isnan(ordered[-1]):
        return float("nan")
    return float(ordered[half]) if data.size % 2 else float(np.mean(ordered[half - 1 : half + 1]))


def is_missing(value: Any) -> bool:
    """A missing value of a column: ``None`` or a NaN."""
    return value is None or value != value


def _small_ints(values: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """:func:`factorize` of integers spanning a range no wider than the column (codes, steps, ids): a table per
    value instead of a sort (a third of the memory on a 2M-row column); None for a wider range."""
    low, high = int(values.min()), int(values.max())
    if high - low > max(len(values), 1 << 16):
        return None
    offsets = values.astype(np.int64) - low
    first = np.full(high - low + 1, len(values), dtype=np.int64)
    first[offsets[::-1]] = np.arange(len(values) - 1, -1, -1)  # repeated indexes: the last write (first row) wins
    present = np.flatnonzero(first < len(values))
    order = present[np.argsort(first[present], kind="stable")]  # the values present, by first appearance
    rank = np.empty(high - low + 1, dtype=np.int64)
    rank[order] = np.arange(len(order))
    return rank[offsets], (order + low).astype(values.dtype)


def factorize(values: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(codes, uniques)`` of a column: ``uniques`` in order of first appearance, ``uniques[codes]`` gives the values
    back; a missing value (``None``, NaN) has code -1 and is not among the uniques."""
    values = np.asarray(values)
    if values.dtype.kind in "iu" and len(values) and (small := _small_ints(values)) is not None:
        return small
    if values.dtype != object:
        uniques, first, codes = np.unique(values, return_index=True, return_inverse=True)
        order = np.argsort(first, kind="stable")  # by first appearance
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(len(order))
        codes, uniques = rank[codes.reshape(-1)], uniques[order]
        if values.dtype.kind in "fc" and np.isnan(uniques).any():  # NaN: missing
            missing = np.isnan(uniques)
            renumber = np.where(missing, -1, np.cumsum(~missing) - 1)
            codes, uniques = renumber[codes], uniques[~missing]
        return codes.astype(np.int64), uniques
    seen = dict.fromkeys(values.tolist())  # first appearance order
    lookup = dict(zip(seen, range(len(seen)), strict=True))
    codes = np.fromiter(map(lookup.__getitem__, values.tolist()), dtype=np.int64, count=len(values))
    uniques = np.empty(len(seen), dtype=object)
    uniques[:] = list(seen)
    missing = np.fromiter(map(is_missing, seen), dtype=bool, count=len(seen))
    if missing.any():
        renumber = np.where(missing, -1, np.cumsum(~missing) - 1)
        codes, uniques = renumber[codes], uniques[~missing]
    return codes, uniques


def counts(values: Any) -> dict[Any, int]:
    """How often each value occurs (missing values left out), most frequent first, ties in order of appearance
    (``Series.value_counts()``)."""
    codes, uniques = factorize(values)
    tally = np.bincount(codes[codes >= 0], minlength=len(uniques))
    order = np.argsort(-tally, kind="stable")
    return {uniques[i]: int(tally[i]) for i in order.tolist()}


def pair_keys(first: Any, second: Any) -> np.ndarray:
    """One number per distinct (first, second) pair of two columns, NaN where either is missing: a key column for
    :func:`factorize` (each column factorized once; no sort of the pairs)."""
    first_codes, _ = factorize(first)
    second_codes, second_values = factorize(second)
    keys = first_codes * (len(second_values) + 1.0) + second_codes
    keyed = (first_codes >= 0) & (second_codes >= 0)
    return keys if keyed.all() else np.where(keyed, keys, np.nan)
