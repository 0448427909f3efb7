"""Kineto parsing: declared tables, exact counts on real traces, bad events and bad files."""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson
import pytest

from profkit.errors import ProfkitError
from profkit.parsers import SCHEMAS, detect_format, load_trace, registry, trace_suffixes
from profkit.parsers.kineto import parse_kineto_document
from profkit.parsers.tables import NUMPY_DTYPES
from tests.conftest import corpus_traces
from tests.tracebuilder import diffusion_trace


def _raw_kernels(path: Path) -> tuple[int, float]:
    events = orjson.loads(gzip.decompress(path.read_bytes()))["traceEvents"]
    kernels = [e for e in events if isinstance(e, dict) and e.get("cat") == "kernel"]
    return len(kernels), sum(e["dur"] for e in kernels)


@pytest.mark.corpus
@pytest.mark.parametrize("path", corpus_traces(), ids=lambda p: p.name)
def test_corpus_kernel_count_and_time_match_a_plain_count(corpus, path):
    tables = load_trace(path)
    count, total = _raw_kernels(path)
    assert len(tables.kernels) == count
    assert tables.kernels["dur"].sum() == pytest.approx(total)
    for table_name, schema in SCHEMAS.items():
        frame = getattr(tables, table_name)
        assert list(frame.columns) == list(schema)
        for column, dtype in schema.items():
            assert frame[column].dtype == NUMPY_DTYPES[dtype], (table_name, column)


def test_correlation_ids_join_launches_to_kernels(tmp_path):
    tables = load_trace(diffusion_trace(steps=2).write(tmp_path / "t.json"))
    joined = tables.kernels.to_pandas().merge(tables.launches.to_pandas(), on="correlation", suffixes=("", "_launch"))
    assert len(joined) == len(tables.kernels) == 4
    assert (joined["ts_launch"] < joined["ts"]).all()
    assert set(tables.memops["direction"]) == {"D2H"}


def test_bad_events_are_skipped_and_counted(tmp_path):
    doc = diffusion_trace(steps=2).document()
    doc["traceEvents"] += [
        {"ph": "X", "cat": "kernel", "name": "no_ts", "dur": 3},
        {"ph": "X", "cat": "kernel", "name": "nan_dur", "ts": 1, "dur": float("nan")},
        {"ph": "X", "cat": "kernel", "name": "negative", "ts": 1, "dur": -5},
        {"ph": "X", "cat": "mystery_category", "name": "x", "ts": 1, "dur": 1},
        "not an event",
    ]
    tables = parse_kineto_document(doc, tmp_path / "t.json")
    assert len(tables.kernels) == 4
    assert tables.info.skipped_total == 4
    assert tables.info.skipped_events["negative dur"] == 1
    assert tables.info.unknown_categories == {"mystery_category": 1}
    assert any("skipped 4" in w for w in tables.info.warnings)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "empty"),
        (b"hello, not json", "not valid JSON"),
        (b'{"foo": 1}', "no 'traceEvents'"),
        (b'{"traceEvents": []}', "no duration events"),
        (b'{"traceEvents": {"a": 1}}', "not an array"),
        (b"42", "not a Kineto"),
    ],
)
def test_unusable_files_raise_one_clear_error(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(ProfkitError, match=message):
        load_trace(path)


def test_truncated_gzip_and_missing_paths(tmp_path):
    good = diffusion_trace().write(tmp_path / "t.json.gz")
    truncated = tmp_path / "truncated.json.gz"
    truncated.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    with pytest.raises(ProfkitError, match="truncated or corrupt"):
        load_trace(truncated)
    with pytest.raises(ProfkitError, match="no such file"):
        load_trace(tmp_path / "missing.json")
    with pytest.raises(ProfkitError, match="is a directory"):
        load_trace(tmp_path)


# ---------------------------------------------------------------- the format registry


def test_content_beats_the_suffix(tmp_path):
    """A Kineto JSON named ``.sqlite`` and an nsys SQLite export named ``.json`` are each read for what they are."""
    from tests.nsysbuilder import nsys_diffusion

    kineto = load_trace(diffusion_trace(steps=2).write(tmp_path / "x.sqlite"))
    assert kineto.info.source_format == "kineto" and len(kineto.kernels) == 4
    gzipped = tmp_path / "x.nsys-rep"
    gzipped.write_bytes(gzip.compress(orjson.dumps(diffusion_trace(steps=2).document())))
    assert load_trace(gzipped).info.source_format == "kineto"
    nsys = load_trace(nsys_diffusion(steps=2).write(tmp_path / "export.json"))
    assert nsys.info.source_format == "nsys" and len(nsys.kernels) == 4


def test_the_suffix_decides_when_the_content_does_not(tmp_path):
    bogus = tmp_path / "bogus.sqlite"
    bogus.write_bytes(b"not a database")
    with pytest.raises(ProfkitError, match="not an SQLite database"):
        load_trace(bogus)
    report = tmp_path / "run.qdrep"
    report.write_bytes(b"\x00" * 64)
    assert detect_format(report).name == "nsys-report" and detect_format(report).needs_conversion
    with pytest.raises(ProfkitError, match="exported to SQLite before parsing"):
        load_trace(report)
    unknown = tmp_path / "trace.txt"
    unknown.write_bytes(b"hello")
    assert detect_format(unknown) is None
    with pytest.raises(ProfkitError, match="not valid JSON"):  # the default format's parser says what is wrong
        load_trace(unknown)


def test_suffixes_name_the_reports(tmp_path):
    from profkit.app.inputs import default_report_base

    assert {".json.gz", ".json", ".gz", ".sqlite", ".nsys-rep", ".qdrep"} <= set(trace_suffixes())
    for name, base in [
        ("trace.json.gz", "trace"),
        ("trace.json", "trace"),
        ("run.sqlite", "run"),
        ("run.nsys-rep", "run"),
        ("run.qdrep", "run"),
        ("notes.txt", "notes.txt"),
    ]:
        assert default_report_base(tmp_path / name) == tmp_path / base


def test_a_registered_format_is_found_by_its_sniff(tmp_path, monkeypatch):
    seen = []

    def load_toy(path):
        seen.append(path)
        return load_trace(diffusion_trace(steps=1).write(tmp_path / "real.json"))

    toy = registry.TraceFormat("toy", (".toy",), sniff=lambda head: head.startswith(b"TOY1"), load=load_toy)
    monkeypatch.setitem(registry._FORMATS, "toy", toy)
    path = tmp_path / "capture.bin"
    path.write_bytes(b"TOY1 payload")
    assert detect_format(path) is toy and len(load_trace(path).kernels) == 3 and seen == [path]
    assert ".toy" in trace_suffixes()
