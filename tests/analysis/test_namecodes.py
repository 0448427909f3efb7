"""Per-distinct-name work: same answers as pandas' per-row string methods, one factorization per column."""

from __future__ import annotations

import gc
import re

import numpy as np
import pandas as pd

from profkit.analysis import namecodes
from profkit.analysis.graphs import GRAPH_LAUNCH, SYNC_CALL
from profkit.parsers.columns import text_column
from profkit.parsers.tables import Table


def _names() -> np.ndarray:
    values = ["cudaGraphLaunch", "cuGraphLaunch_v2", "cudaLaunchKernel", None, "cudaStreamSynchronize", "x"] * 50
    return text_column(values)


def test_name_match_equals_str_match_with_missing_names_false():
    names = _names()
    for pattern in (GRAPH_LAUNCH, SYNC_CALL, re.compile("cuda")):
        expected = pd.Series(names, dtype="string").str.match(pattern.pattern, na=False).to_numpy(dtype=bool)
        assert np.array_equal(namecodes.name_match(names, pattern), expected)


def test_per_name_decides_once_per_distinct_name():
    names = _names()
    seen: list[str] = []
    result = namecodes.per_name(names, lambda name: seen.append(name) or len(name), -1, dtype=np.int64)
    assert sorted(seen) == sorted({n for n in names if isinstance(n, str)})
    assert result.tolist() == [len(n) if isinstance(n, str) else -1 for n in names]


def test_factorization_is_shared_while_the_column_lives():
    frame = Table({"name": _names()})
    first = namecodes.factorize(frame["name"])
    assert namecodes.factorize(frame["name"])[0] is first[0]  # the same column: computed once
    assert first[1][first[0][0]] == "cudaGraphLaunch" and first[0][3] == -1
    key = id(frame["name"])
    del frame, first
    gc.collect()
    assert key not in namecodes._CACHE  # dropped with its column
