"""Column helpers: one shared object per value, not one string per row (memory of per-event label columns)."""

from __future__ import annotations

import numpy as np

from profkit.parsers.columns import choose, object_column


def test_object_column_holds_one_object_in_every_row() -> None:
    label = "".join(["out", "side"])  # a str built at run time, not an interned literal
    column = object_column(1000, label)
    assert column.dtype == object and column.shape == (1000,)
    assert all(value is label for value in column)
    assert not all(value is label for value in np.full(1000, label, dtype=object))  # what numpy alone does


def test_choose_picks_per_row_and_shares_the_two_objects() -> None:
    yes, no = "".join(["other"]), "".join(["outside"])
    condition = np.arange(10) % 3 == 0
    chosen = choose(condition, yes, no)
    assert list(chosen) == [yes if flag else no for flag in condition]
    assert all(value is (yes if flag else no) for value, flag in zip(chosen, condition, strict=True))
    assert choose(np.zeros(0, dtype=bool), yes, no).shape == (0,)
