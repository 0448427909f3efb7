"""Work per distinct name instead of per event: a string column is factorized once (codes + unique names), a
decision is taken for each unique name and spread back through the codes.

Several analyses read the same name columns (kernel, launch and CPU operator names); the factorization of a
column is kept while the column's array is alive, so it is computed once per trace, not once per analysis.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np

from profkit.parsers import columns

_CACHE: dict[int, tuple[weakref.ref, np.ndarray, np.ndarray]] = {}


def factorize(names: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(codes, uniques)`` of a column: ``uniques[codes]`` gives the names back; a missing name has code -1."""
    array = names
    key = id(array)
    hit = _CACHE.get(key)
    if hit is not None and hit[0]() is array:
        return hit[1], hit[2]
    codes, uniques = columns.factorize(names)
    uniques = np.asarray(uniques, dtype=object)
    try:
        ref = weakref.ref(array, lambda _, key=key: _CACHE.pop(key, None))
    except TypeError:  # an array type without weak references: not cached
        return codes, uniques
    _CACHE[key] = (ref, codes, uniques)
    return codes, uniques


def per_name(names: np.ndarray, decide: Callable[[str], Any], missing: Any, dtype: Any = object) -> np.ndarray:
    """``decide(name)`` for each row, computed once per distinct name; ``missing`` for missing names."""
    codes, uniques = factorize(names)
    values = np.empty(len(uniques) + 1, dtype=dtype)
    for index, name in enumerate(uniques):  # one by one: a tuple result stays one object
        values[index] = decide(str(name))
    values[-1] = missing  # code -1
    return values[codes]


def name_match(names: np.ndarray, pattern: re.Pattern[str]) -> np.ndarray:
    """Rows whose name matches ``pattern`` at its start (``str.match`` of each name, False where missing)."""
    return per_name(names, lambda name: pattern.match(name) is not None, False, dtype=bool)
