"""The chunked Kineto decode gives the same tables as the whole-document decode, and falls back when it must."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import orjson
import pandas as pd
import pytest

from profkit.jsonio import read_bytes
from profkit.parsers import kineto
from profkit.parsers.kineto_chunked import ChunkFallback, _last_boundary, parse_kineto_chunked
from profkit.parsers.tables import TraceTables
from tests.conftest import corpus_dir
from tests.tracebuilder import diffusion_trace

TABLES = ("kernels", "memops", "launches", "cpu_ops", "ranges", "syncs")


def _corpus_files() -> list[Path]:
    root = corpus_dir().parent
    return sorted([*root.glob("kineto/*.json.gz"), *root.glob("h100/*/trace.json.gz")])


def _whole(path: Path) -> TraceTables:
    return kineto.parse_kineto_bytes(read_bytes(path), path)


def assert_same(chunked: TraceTables, whole: TraceTables) -> None:
    for table in TABLES:
        pd.testing.assert_frame_equal(
            getattr(chunked, table).to_pandas(), getattr(whole, table).to_pandas(), check_exact=True
        )
    a, b = chunked.info, whole.info
    assert (a.devices, a.event_count, a.skipped_events, a.unknown_categories) == (
        b.devices,
        b.event_count,
        b.skipped_events,
        b.unknown_categories,
    )
    assert (a.trace_metadata, a.time_origin_us, sorted(a.warnings)) == (
        b.trace_metadata,
        b.time_origin_us,
        sorted(b.warnings),
    )


@pytest.mark.parametrize("path", _corpus_files(), ids=lambda p: p.parent.name + "/" + p.name)
def test_corpus_trace_chunked_equals_whole(path: Path) -> None:
    # a small block size: every trace is cut into many blocks
    assert_same(parse_kineto_chunked(path, chunk_size=1 << 16), _whole(path))


def _builder_doc() -> dict:
    doc = diffusion_trace(steps=6).document()
    events = doc["traceEvents"]
    for i, event in enumerate(events):  # names holding the boundary the cutter looks for
        if i % 3 == 0:
            event["name"] = f'weird }},{{ "name" }} ,\n {{ {i}'
    doc["traceName"] = "tail key after the events"
    doc["deviceProperties"] = [{"id": 0, "name": "NVIDIA H100 80GB HBM3"}]
    return {"schemaVersion": 1, **doc}


@pytest.mark.parametrize("chunk_size", [64, 200, 1 << 20])
@pytest.mark.parametrize("gz", [False, True])
def test_separators_inside_strings(tmp_path: Path, chunk_size: int, gz: bool) -> None:
    doc = _builder_doc()
    # header keys on both sides of the events array, events one per line like Kineto writes them
    data = orjson.dumps(doc, option=orjson.OPT_INDENT_2)
    path = tmp_path / ("t.json.gz" if gz else "t.json")
    path.write_bytes(gzip.compress(data) if gz else data)
    try:
        chunked = parse_kineto_chunked(path, chunk_size=chunk_size)
    except ChunkFallback:
        chunked = None  # a cut inside a string was detected: load_kineto decodes the whole document
    whole = _whole(path)
    if chunked is not None:
        assert_same(chunked, whole)
    assert_same(kineto.load_kineto(path), whole)


def test_cut_inside_a_string_is_detected(tmp_path: Path) -> None:
    events = [{"ph": "X", "cat": "kernel", "ts": i, "dur": 1, "name": "k},{" * 8 + "x"} for i in range(50)]
    path = tmp_path / "t.json"
    path.write_bytes(orjson.dumps({"traceEvents": events}))
    whole, detected = _whole(path), 0
    for chunk_size in range(40, 140, 7):
        try:
            assert_same(parse_kineto_chunked(path, chunk_size=chunk_size), whole)
        except ChunkFallback:
            detected += 1
    assert detected


def test_load_falls_back_to_the_whole_document(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    events = [{"ph": "X", "cat": "kernel", "name": f"a}},{{b{i}", "ts": i, "dur": 1} for i in range(200)]
    events.append({"ph": "X", "cat": "kernel", "name": "tolerant", "ts": "7", "dur": 1})  # typed decode rejects
    path = tmp_path / "t.json"
    path.write_bytes(orjson.dumps({"traceEvents": events}))
    monkeypatch.setattr(kineto, "CHUNKED_MIN_BYTES", 1)
    tables = kineto.load_kineto(path)
    assert tables.info.decoder == "tolerant"
    assert len(tables.kernels) == 200
    assert tables.info.skipped_events == {"missing or bad ts": 1}


def test_large_files_take_the_chunked_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = diffusion_trace(steps=3).write(tmp_path / "t.json")
    calls = []
    import profkit.parsers.kineto_chunked as chunked

    real = chunked.parse_kineto_chunked
    monkeypatch.setattr(chunked, "parse_kineto_chunked", lambda p, mapper: calls.append(p) or real(p, 128, mapper))
    monkeypatch.setattr(kineto, "CHUNKED_MIN_BYTES", 1)
    assert_same(kineto.load_kineto(path), _whole(path))
    assert calls == [path]


def test_no_duration_events_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_bytes(orjson.dumps({"traceEvents": [{"ph": "i", "name": "x", "ts": 1}] * 20}))
    with pytest.raises(kineto.ProfkitError, match="no duration events"):
        parse_kineto_chunked(path, chunk_size=64)


def test_last_boundary() -> None:
    buf = b'{"a":1}, {"b":"}"} ,\n{"c":3}'
    assert _last_boundary(buf, len(buf)) == (18, 21)
    assert _last_boundary(b'{"a":1}', 7) is None


def test_the_decoded_size_decides_the_path_gzip_by_its_trailer(tmp_path: Path) -> None:
    path = diffusion_trace(steps=3).write(tmp_path / "t.json")
    raw = path.read_bytes()
    assert kineto._decoded_size(path) == len(raw)
    packed = tmp_path / "t.json.gz"
    packed.write_bytes(gzip.compress(raw))
    assert kineto._decoded_size(packed) == max(len(raw), packed.stat().st_size * kineto._MIN_GZIP_RATIO)
    big = tmp_path / "big.json.gz"
    big.write_bytes(gzip.compress(b" " * (3 << 20)))  # 3 MB that pack into a few kB: the trailer tells
    assert kineto._decoded_size(big) == 3 << 20
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert kineto._decoded_size(fifo) == 0  # not opened: left to the reader to refuse
