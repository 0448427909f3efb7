"""Rows grouped by a key column: one factorization, then counts, totals and extremes per group by ``np.bincount``."""

from __future__ import annotations

from typing import Any

import numpy as np

from profkit.analysis.namecodes import factorize as name_factorization
from profkit.parsers.columns import factorize


class Groups:
    """Rows grouped by a key column (pandas' ``groupby(sort=False)`` without its per-call overhead): the keys in order
    of first appearance, each row's group (``codes``), and each group's row count and total time. Rows without a key
    (NaN) are in no group (code -1)."""

    def __init__(self, keys: Any, times: np.ndarray, names: bool = False) -> None:
        # name columns: the factorization the other analyses of the trace share
        self.codes, uniques = name_factorization(keys) if names else factorize(keys)
        self.keys = np.asarray(uniques, dtype=object)
        keyed_codes, _ = self._keyed(times)
        self.count = np.bincount(keyed_codes, minlength=len(self.keys))
        self.total = self.sum(times)

    def _keyed(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The codes and ``values`` of the rows in a group."""
        if len(self.codes) and self.codes.min() < 0:
            keyed = self.codes >= 0
            return self.codes[keyed], values[keyed]
        return self.codes, values

    def largest(self, limit: int | None = None) -> np.ndarray:
        """Group indexes by total time, largest first (ties in order of first appearance)."""
        return np.argsort(-self.total, kind="stable")[:limit]

    def first_rows(self) -> np.ndarray:
        """Each group's first row (codes are numbered in order of first appearance)."""
        highest = np.maximum.accumulate(self.codes)
        return np.flatnonzero(np.diff(highest, prepend=-1) > 0)

    def by_key(self) -> np.ndarray:
        """Group indexes in the keys' sorted order (``groupby(sort=True)``)."""
        return np.argsort(self.keys.astype(str), kind="stable")

    def sum(self, values: np.ndarray) -> np.ndarray:
        codes, values = self._keyed(values)
        return np.bincount(codes, weights=values, minlength=len(self.keys))

    def extreme(self, values: np.ndarray, ufunc: np.ufunc, start: float) -> np.ndarray:
        result = np.full(len(self.keys), start)
        ufunc.at(result, *self._keyed(values))
        return result
