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
