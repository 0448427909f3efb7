"""Column helpers and the event tables' columns: one shared object per value, not one string per row (memory of
per-event label columns); factorizations as pandas gives them."""

from __future__ import annotations

import numpy as np
import pytest

from profkit.parsers.columns import (
    choose,
    counts,
    distinct,
    factorize,
    isin,
    median,
    object_column,
    pair_keys,
    percentiles,
    text_column,
)
from profkit.parsers.tables import Table


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


def _pandas_factorize(values: np.ndarray) -> tuple[np.ndarray, list]:
    import pandas as pd

    codes, uniques = pd.factorize(pd.Series(values, dtype=object), sort=False)
    return codes, list(uniques)


def test_factorize_matches_pandas_order_and_missing_values() -> None:
    rng = np.random.default_rng(3)
    names = text_column(rng.choice(np.array(["gemm", "conv", "add", None], dtype=object), 2000).tolist())
    codes, uniques = factorize(names)
    expected_codes, expected_uniques = _pandas_factorize(names)
    assert list(uniques) == expected_uniques  # first appearance, None left out
    assert np.array_equal(codes, expected_codes)  # None is -1
    numbers = rng.choice(np.array([5.0, -1.0, np.nan, 2.5]), 2000)
    codes, uniques = factorize(numbers)
    expected_codes, expected_uniques = _pandas_factorize(numbers.astype(object))
    assert uniques.tolist() == expected_uniques and np.array_equal(codes, expected_codes)
    assert factorize(np.zeros(0, dtype=object))[1].size == 0


def test_counts_are_value_counts_most_frequent_first_ties_in_order_of_appearance() -> None:
    values = text_column(["b", "a", None, "a", "c", "b", "d"])
    assert list(counts(values).items()) == [("b", 2), ("a", 2), ("c", 1), ("d", 1)]


def test_text_column_keeps_text_and_missing_and_writes_anything_else_as_text() -> None:
    column = text_column(["x", None, 3, ["a"]])
    assert column.dtype == object and column.tolist() == ["x", None, "3", "['a']"]
    assert text_column([]).shape == (0,)


def test_a_table_selects_rows_and_columns_and_keeps_its_columns_apart() -> None:
    table = Table({"ts": np.array([3.0, 1.0, 2.0]), "name": text_column(["c", "a", None])})
    assert len(table) == 3 and list(table) == ["ts", "name"] and "ts" in table and not table.empty
    assert table[table["ts"] > 1.5]["name"].tolist() == ["c", None]
    assert table[np.array([2, 0])]["ts"].tolist() == [2.0, 3.0]
    assert table.sorted_by("ts")["name"].tolist() == ["a", None, "c"]
    assert table.sorted_by("ts", descending=True)["ts"].tolist() == [3.0, 2.0, 1.0]
    assert list(table.rows("name", "ts")) == [("c", 3.0), ("a", 1.0), (None, 2.0)]
    narrowed = table[["ts"]]
    narrowed["end"] = narrowed["ts"] + 1
    assert "end" not in table and table.assign(dur=np.ones(3)).columns == ["ts", "name", "dur"]
    assert table["name"].dtype == object and Table({"kind": np.array(["a", "b"])})["kind"].dtype == object
    with pytest.raises(ValueError, match="rows"):
        table["short"] = np.zeros(2)
    assert table[np.zeros(3, dtype=bool)].empty and len(Table()) == 0
    frame = table.to_pandas()
    assert list(frame.columns) == ["ts", "name"] and frame["ts"].tolist() == [3.0, 1.0, 2.0]


def test_small_and_wide_integer_ranges_factorize_alike() -> None:
    rng = np.random.default_rng(5)
    for values in (rng.integers(-3, 40, 5000), rng.integers(0, 2**40, 5000), np.array([7, 7, 7]), np.array([-1, 2])):
        codes, uniques = factorize(values)
        expected_codes, expected_uniques = _pandas_factorize(values.astype(object))
        assert uniques.tolist() == expected_uniques and np.array_equal(codes, expected_codes)
        assert uniques.dtype == values.dtype


def test_pair_keys_number_each_distinct_pair_and_leave_missing_ones_out() -> None:
    first = text_column(["a", "a", "b", None, "a"])
    second = np.array([1.0, 2.0, 1.0, 1.0, 1.0])
    codes, uniques = factorize(pair_keys(first, second))
    assert codes.tolist() == [0, 1, 2, -1, 0] and len(uniques) == 3


# ---------------------------------------------------------------- numpy's set and order statistics, numpy.ma not needed

_RNG = np.random.default_rng(7)


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 10, 101, 2000])
def test_percentiles_and_median_equal_numpys_bit_for_bit(size: int) -> None:
    quantiles = [0, 1, 2.5, 25, 50, 75, 90, 95, 97.5, 99, 99.9, 100, 33.3]
    for scale in (1e-3, 1.0, 1e6):
        values = _RNG.standard_normal(size) * scale
        for data in (values, np.round(values)):  # ties too
            assert np.array_equal(percentiles(data, quantiles), np.percentile(data, quantiles))
            assert float(percentiles(data, 50)) == float(np.percentile(data, 50))
            assert median(data) == float(np.median(data))


def test_percentiles_and_median_of_nan_are_nan_and_of_nothing_refused() -> None:
    data = np.array([1.0, np.nan, 3.0])
    assert np.isnan(percentiles(data, [10, 50])).all() and np.isnan(median(data))
    assert np.isnan(median([]))
    with pytest.raises(ValueError):
        percentiles([], 50)


def test_distinct_and_isin_equal_numpys() -> None:
    for size in (0, 1, 7, 300):
        data = _RNG.integers(0, 25, size).astype(float)
        data[::6] = np.nan
        assert np.array_equal(distinct(data), np.unique(data), equal_nan=True)
        for wanted in (data[:3], _RNG.integers(0, 25, 40).astype(float), [np.nan, 1.0]):
            assert np.array_equal(isin(data, wanted), np.isin(data, wanted))
    text = np.array(["b", None, "a", "b", "c"], dtype=object)
    assert list(isin(text, ["a", "c"])) == list(np.isin(text, ["a", "c"]))
    assert list(isin(text, [f"x{i}" for i in range(30)] + ["b"])) == [True, False, False, True, False]
    assert list(distinct(np.array(["b", "a", "b"], dtype=object))) == ["a", "b"]
