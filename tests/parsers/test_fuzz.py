"""Mutated traces never crash the parser or the analysis: only ProfkitError may escape."""

from __future__ import annotations

from pathlib import Path

import orjson
import pandas as pd
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from profkit.analysis import analyze_tables
from profkit.errors import ProfkitError
from profkit.parsers.kineto import parse_kineto_bytes, parse_kineto_document
from tests.tracebuilder import diffusion_trace, launch_bound_trace

BASE = diffusion_trace(steps=3).document()["traceEvents"]
odd_values = st.one_of(
    st.none(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
    st.lists(st.integers(), max_size=3),
    st.booleans(),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
keys = st.sampled_from(["ph", "cat", "name", "ts", "dur", "pid", "tid", "args"])
arg_keys = st.sampled_from(["correlation", "stream", "device", "bytes", "External id", "grid"])


@st.composite
def mutated_traces(draw):
    events = [dict(e, args=dict(e.get("args", {}))) for e in BASE]
    for _ in range(draw(st.integers(1, 12))):
        index = draw(st.integers(0, len(events) - 1))
        action = draw(st.sampled_from(["set", "drop", "arg", "delete_event", "duplicate"]))
        event = events[index]
        if action == "set":
            event[draw(keys)] = draw(odd_values)
        elif action == "drop":
            event.pop(draw(keys), None)
        elif action == "arg" and isinstance(event.get("args"), dict):
            event["args"][draw(arg_keys)] = draw(odd_values)
        elif action == "delete_event" and len(events) > 1:
            events.pop(index)
        elif action == "duplicate":
            events.append(dict(event))
    return {"traceEvents": events}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_traces())
def test_mutated_traces_analyze_or_fail_cleanly(document):
    try:
        tables = parse_kineto_document(document, Path("fuzz.json"))
    except ProfkitError:
        return
    result = analyze_tables(tables)
    if result.gpu is not None:
        assert result.gpu.busy_us <= result.gpu.window_us + 1e-6


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_traces(), st.one_of(st.none(), st.integers(0, 4000)))
def test_mutated_trace_files_take_either_decoder_and_analyze_or_fail_cleanly(document, cut):
    """Through the bytes entry point: the typed decoder, its tolerant fallback, and truncated files."""
    try:
        raw = orjson.dumps(document)
    except TypeError:  # an integer JSON cannot hold: not a file anyone can write
        assume(False)
    if cut is not None:
        raw = raw[:cut]
    try:
        tables = parse_kineto_bytes(raw, Path("fuzz.json"))
    except ProfkitError:
        return
    assert tables.info.decoder in ("typed", "tolerant")
    result = analyze_tables(tables)
    if result.gaps is not None:
        assert result.gaps.busy_us <= result.gaps.window_us + 1e-6


def test_typed_and_tolerant_decoders_agree():
    document = launch_bound_trace(steps=3).document()
    raw = orjson.dumps(document)
    typed = parse_kineto_bytes(raw, Path("t.json"))
    tolerant = parse_kineto_document(orjson.loads(raw), Path("t.json"))
    assert typed.info.decoder == "typed" and tolerant.info.decoder == "tolerant"
    for table in ("kernels", "launches", "memops", "cpu_ops", "ranges", "syncs"):
        pd.testing.assert_frame_equal(getattr(typed, table), getattr(tolerant, table))
