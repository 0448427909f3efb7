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
