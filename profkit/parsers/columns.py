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
