"""The nsys reader's large-export path: rows fetched in small batches give the very tables of one big fetch.

A large export is read ``BATCH_ROWS`` rows at a time into numpy columns with one shared ``str`` per distinct
name; forcing tiny batches here makes every table span many batches (NULLs in some batches only, names
repeated across batches), and the tables, the trace facts and the analysis numbers must not change. Names
are fetched as ``StringIds`` ids and looked up once per id: that must read exactly as the SQL join does.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from profkit.analysis import analyze_tables
from profkit.parsers import nsys
from profkit.parsers.nsys import BATCH_ROWS, load_nsys_sqlite
from profkit.parsers.tables import SCHEMAS
from tests.nsysbuilder import KERNEL, RUNTIME, NsysBuilder, nsys_diffusion

ROOT = Path(__file__).resolve().parents[2]


def _same_tables(path: Path, batch: int) -> None:
    plain, batched = load_nsys_sqlite(path), load_nsys_sqlite(path, batch=batch)
    for name in SCHEMAS:
        pd.testing.assert_frame_equal(
            getattr(plain, name).to_pandas(), getattr(batched, name).to_pandas(), check_exact=True
        )
    assert plain.info == batched.info
    summary_plain = analyze_tables(plain).to_dict()
    summary_batched = analyze_tables(batched).to_dict()
    summary_plain.pop("trace", None), summary_batched.pop("trace", None)
    assert summary_plain == summary_batched


@pytest.mark.parametrize("batch", [1, 3, 7])
def test_tiny_batches_give_the_tables_and_summary_of_one_fetch(tmp_path: Path, batch: int) -> None:
    path = nsys_diffusion(steps=6).write(tmp_path / "diffusion.sqlite")
    _same_tables(path, batch)


def _hostile() -> NsysBuilder:
    builder = nsys_diffusion(steps=5)
    for pid in (10, 11):  # two processes: correlation ids repeat across them
        for i in range(12):
            builder.kernel(f"kernel_{i % 4}", 4000 + i * 10, 4005 + i * 10, 3, pid=pid, stream=7 + pid % 2)
    builder.set(KERNEL, 0, "gridX", None)  # NULL in an optional column: that batch reads as float
    builder.set(KERNEL, -1, "registersPerThread", None)
    builder.set(KERNEL, 2, "streamId", "abc")  # unusable: skipped and counted
    builder.set(RUNTIME, 4, "correlationId", None)
    builder.set(RUNTIME, 6, "correlationId", 1)  # a repeated correlation id in process 10
    builder.set("NVTX_EVENTS", 1, "globalTid", None)
    builder.set("OSRT_API", 0, "nameId", 99999)  # no such string: an empty name
    return builder


@pytest.mark.parametrize("batch", [1, 5])
def test_nulls_bad_rows_and_processes_read_the_same_in_batches(tmp_path: Path, batch: int) -> None:
    path = _hostile().write(tmp_path / "hostile.sqlite", constraints=False)
    tables = load_nsys_sqlite(path, batch=batch)
    assert tables.info.skipped_events  # the hostile cells did reach the reader
    assert tables.kernels["grid"][0] == "[0, 1, 1]"  # NULL dims read as 0, as before
    _same_tables(path, batch)


@pytest.mark.parametrize("hostile", [False, True])
def test_names_looked_up_by_id_read_as_the_sql_join(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hostile: bool
) -> None:
    builder = _hostile() if hostile else nsys_diffusion(steps=4)
    path = builder.write(tmp_path / "run.sqlite", constraints=not hostile)
    by_id = load_nsys_sqlite(path, batch=5)
    monkeypatch.setattr(nsys._Strings, "usable", lambda self: False)  # every name through the LEFT JOIN
    joined = load_nsys_sqlite(path, batch=5)
    for name in SCHEMAS:
        pd.testing.assert_frame_equal(
            getattr(by_id, name).to_pandas(), getattr(joined, name).to_pandas(), check_exact=True
        )
    assert by_id.info == joined.info
    assert (by_id.kernels["name"] != "").all() and (by_id.launches["name"] != "").all()


def test_invalid_utf8_names_are_counted_per_row_when_looked_up_by_id(tmp_path: Path) -> None:
    builder = NsysBuilder()
    for i in range(6):
        builder.kernel("gemm", i * 10, i * 10 + 2, 5)
    path = builder.write(tmp_path / "k.sqlite")
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE StringIds SET value = CAST(? AS TEXT) WHERE value = 'gemm'", (b"g\xffm",))
    connection.close()
    tables = load_nsys_sqlite(path)
    assert set(tables.kernels["name"]) == {"g\ufffdm"}
    assert "6 text values were not valid UTF-8: decoded with replacement characters" in tables.info.warnings


def test_names_are_shared_not_one_object_per_row(tmp_path: Path) -> None:
    builder = NsysBuilder()
    for i in range(300):
        builder.kernel(f"gemm_{i % 3}", i * 10, i * 10 + 2, 5, pid=10 + i % 2)
    tables = load_nsys_sqlite(builder.write(tmp_path / "k.sqlite"), batch=16)
    assert BATCH_ROWS > 16
    for table, column in (("kernels", "name"), ("kernels", "grid"), ("launches", "name"), ("launches", "pid")):
        values = getattr(tables, table)[column]
        assert len({id(v) for v in values}) == len(set(values)) < 10, (table, column)
    assert list(dict.fromkeys(tables.launches["name"].tolist())) == ["cudaLaunchKernel"]
    assert sorted(set(tables.launches["pid"].tolist())) == ["10", "11"]


@pytest.mark.slow
def test_big_export_builder_and_analyze(tmp_path: Path) -> None:
    """benchmarks/make_big_nsys.py builds a repeated pipeline that `profkit analyze` reads whole."""
    path = tmp_path / "big.sqlite"
    subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "make_big_nsys.py"), "--size-gb", "0.002", "--out", str(path)],
        check=True,
        capture_output=True,
    )
    tables = load_nsys_sqlite(path, batch=1000)
    calls = int((tables.ranges["name"] == "profkit/pipeline").sum())
    assert calls >= 2 and len(tables.kernels) == calls * (40 + 20 * 500 + 60)
    assert len(tables.launches) == len(tables.kernels) + calls * (2 + 1 + 20)  # + copies, memset, syncs
    joined = tables.kernels.to_pandas().merge(tables.launches.to_pandas(), on="correlation", suffixes=("", "_launch"))
    assert len(joined) == len(tables.kernels) and (joined["ts_launch"] < joined["ts"]).all()
    _same_tables(path, 4096)
