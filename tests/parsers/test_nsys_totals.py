"""A large nsys export read in part: whole calls up to the detail limit, and SQL totals over every row.

Each builder export holds several pipeline calls (kernels of call-dependent lengths, copies, memsets, syncs,
OS runtime calls). The export read with a detail limit must give (1) tables equal to the full read cut at the
window's end, the end of a whole call, and (2) totals equal to the same aggregates computed by pandas over the
full read's tables: SQLite's aggregates are checked against the per-event path, not against numbers written here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from msgspec.structs import replace

from profkit.analysis.intervals import union_length
from profkit.naming import PIPELINE
from profkit.parsers.nsys import load_nsys_sqlite
from profkit.parsers.tables import SCHEMAS, DetailLimit, TraceTables
from tests.nsysbuilder import KERNEL, PER_CALL, nsys_calls


def _pandas(tables: TraceTables) -> TraceTables:
    """The tables (and totals) as DataFrames: pandas' groupby is the independent check of the SQL aggregates."""
    totals = tables.totals
    if totals is not None:
        totals = replace(totals, **{name: getattr(totals, name).to_pandas() for name in _TOTALS})
    return replace(tables, **{name: getattr(tables, name).to_pandas() for name in SCHEMAS}, totals=totals)


_TOTALS = ("kernels", "memops", "busy", "api", "ranges")


def _read(path: Path, events: int, call_range: str = PIPELINE) -> tuple[TraceTables, TraceTables]:
    return _pandas(load_nsys_sqlite(path)), _pandas(load_nsys_sqlite(path, detail=DetailLimit(events, call_range)))


def _grouped(frame: pd.DataFrame, extremes: bool = True) -> dict[str, tuple]:
    functions = ["size", "sum", *(["min", "max"] if extremes else [])]
    grouped = frame.groupby("name")["dur"].agg(functions)
    return {str(name): tuple(float(v) for v in row) for name, row in grouped.iterrows()}


def _close(got: dict[str, tuple], expected: dict[str, tuple]) -> None:
    assert got.keys() == expected.keys()
    for name, values in expected.items():
        np.testing.assert_allclose(got[name], values, rtol=1e-12, err_msg=name)


def _totals(frame: pd.DataFrame, extremes: bool = True) -> dict[str, tuple]:
    columns = ["count", "total_us", *(["min_us", "max_us"] if extremes else [])]
    return {str(row["name"]): tuple(float(row[c]) for c in columns) for _, row in frame.iterrows()}


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return nsys_calls().write(tmp_path_factory.mktemp("totals") / "calls.sqlite")


def test_the_window_holds_the_first_whole_calls_within_the_limit(export: Path) -> None:
    full, part = _read(export, 200)
    totals = part.totals
    assert totals is not None
    assert totals.calls_in_window == 200 // PER_CALL == 2
    assert totals.gpu_events_in_window == 2 * PER_CALL == len(part.kernels) + len(part.memops)
    assert totals.gpu_events == 5 * PER_CALL
    calls_full = full.ranges[full.ranges["name"] == PIPELINE]
    assert totals.window_end_us == pytest.approx(calls_full["end"].iloc[1])  # the end of the second call
    for name in SCHEMAS:  # the full read cut at the window's end: the same rows, the same values
        table = getattr(full, name)
        cut = table[table["ts"] <= totals.window_end_us].reset_index(drop=True)
        pd.testing.assert_frame_equal(getattr(part, name), cut, check_exact=True)
    assert part.info.event_count == full.info.event_count  # the export's events, not the window's
    assert part.info.time_origin_us == full.info.time_origin_us


def test_totals_equal_the_per_event_aggregates_of_the_full_read(export: Path) -> None:
    full, part = _read(export, 200)
    totals = part.totals
    assert totals is not None
    _close(_totals(totals.kernels), _grouped(full.kernels))
    _close(_totals(totals.ranges), _grouped(full.ranges))
    _close(_totals(totals.api, extremes=False), _grouped(full.launches, extremes=False))
    memops = full.memops.groupby("name").agg(count=("dur", "size"), total=("dur", "sum"), nbytes=("bytes", "sum"))
    _close(
        {r["name"]: (r["count"], r["total_us"], r["bytes"]) for _, r in totals.memops.iterrows()},
        {str(name): (r["count"], r["total"], r["nbytes"]) for name, r in memops.iterrows()},
    )
    assert set(totals.memops["direction"]) == set(full.memops["direction"])
    work = pd.concat([full.kernels[["ts", "end"]], full.memops[["ts", "end"]]])
    assert totals.busy_us == pytest.approx(union_length(work["ts"].to_numpy(), work["end"].to_numpy()), rel=1e-12)
    assert totals.busy["first_us"].min() == pytest.approx(work["ts"].min())
    assert totals.busy["last_us"].max() == pytest.approx(work["end"].max())
    last = max(getattr(full, name)["end"].max() for name in SCHEMAS if len(getattr(full, name)))
    assert totals.export_end_us == pytest.approx(last)
    pipeline = full.ranges[full.ranges["name"] == PIPELINE]
    np.testing.assert_allclose(totals.call_durations_us, pipeline["dur"].to_numpy())


def test_an_export_within_the_limit_is_read_whole(export: Path) -> None:
    full, part = _read(export, 5 * PER_CALL)
    assert part.totals is None
    for name in SCHEMAS:
        pd.testing.assert_frame_equal(getattr(part, name), getattr(full, name), check_exact=True)


def test_one_call_over_the_limit_is_held_whole(export: Path) -> None:
    _, part = _read(export, 10)
    assert part.totals is not None and part.totals.calls_in_window == 1
    assert len(part.kernels) + len(part.memops) == PER_CALL  # the whole first call, though more than the limit


def test_without_call_ranges_the_window_is_cut_by_time_within_the_limit(export: Path) -> None:
    full, part = _read(export, 150, call_range="no/such/range")
    totals = part.totals
    assert totals is not None and totals.calls_in_window == 0
    assert 0 < totals.gpu_events_in_window <= 150
    assert part.kernels["ts"].max() <= totals.window_end_us
    starts = np.sort(np.concatenate([full.kernels["ts"], full.memops["ts"]]))
    assert starts[totals.gpu_events_in_window] > totals.window_end_us  # the next event lies beyond the window


def test_the_cut_never_splits_a_call(tmp_path: Path) -> None:
    builder = nsys_calls()
    full_ranges = load_nsys_sqlite(nsys_calls().write(tmp_path / "plain.sqlite")).ranges.to_pandas()
    pipeline = full_ranges[full_ranges["name"] == PIPELINE]
    # a call running from inside the second call to inside the third (concurrent requests of a server)
    builder.nvtx(PIPELINE, pipeline["ts"].iloc[1] + 50, pipeline["ts"].iloc[2] - pipeline["ts"].iloc[1])
    full, part = _read(builder.write(tmp_path / "overlap.sqlite"), 200)
    totals = part.totals
    assert totals is not None
    calls_full = full.ranges[full.ranges["name"] == PIPELINE]
    crossing = (calls_full["ts"] <= totals.window_end_us) & (calls_full["end"] > totals.window_end_us)
    assert not crossing.any()
    assert totals.calls_in_window == 1  # the cut after the second call would split the overlapping one


def test_unusable_rows_are_skipped_in_totals_as_in_tables(tmp_path: Path) -> None:
    builder = nsys_calls()
    builder.set(KERNEL, 3, "streamId", "abc")
    builder.set(KERNEL, -2, "end", 0)  # ends before it starts
    full, part = _read(builder.write(tmp_path / "hostile.sqlite"), 200)
    assert part.info.skipped_events == full.info.skipped_events and sum(full.info.skipped_events.values()) == 2
    assert part.totals is not None
    _close(_totals(part.totals.kernels), _grouped(full.kernels))


def test_busy_time_is_the_union_over_every_device(tmp_path: Path) -> None:
    builder = nsys_calls()
    for row in range(0, len(builder.rows[KERNEL]), 3):
        builder.set(KERNEL, row, "deviceId", 1)
    full, part = _read(builder.write(tmp_path / "devices.sqlite"), 200)
    totals = part.totals
    assert totals is not None
    assert list(totals.busy["device"]) == [0, 1]
    assert totals.busy["events"].sum() == totals.gpu_events
    work = pd.concat([full.kernels[["ts", "end"]], full.memops[["ts", "end"]]])
    assert totals.busy_us == pytest.approx(union_length(work["ts"].to_numpy(), work["end"].to_numpy()), rel=1e-12)


def test_the_tables_are_bounded_by_the_limit_not_the_export(tmp_path: Path) -> None:
    small = load_nsys_sqlite(nsys_calls(5).write(tmp_path / "small.sqlite"), detail=DetailLimit(200, PIPELINE))
    large = load_nsys_sqlite(nsys_calls(40).write(tmp_path / "large.sqlite"), detail=DetailLimit(200, PIPELINE))
    assert small.totals is not None and large.totals is not None
    assert large.totals.gpu_events == 8 * small.totals.gpu_events
    for name in SCHEMAS:
        assert len(getattr(large, name)) == len(getattr(small, name))
