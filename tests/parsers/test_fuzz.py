"""Mutated traces never crash the parser or the analysis: only ProfkitError may escape.

Besides random edits of a trace's events, hostile classes built as raw bytes (what no JSON writer emits but a
broken tool or an attacker can): nesting inside any field, numbers beyond int64 and float64, invalid UTF-8 in
strings, markup and template characters in every string field. Each goes through the bytes entry point, to the
typed decoder or (after a first event that is not an object) to the tolerant one.
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any

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
        pd.testing.assert_frame_equal(getattr(typed, table).to_pandas(), getattr(tolerant, table).to_pandas())


# ---------------------------------------------------------------- hostile classes, as raw bytes

HOSTILE_BASE = diffusion_trace(steps=2).document()
PLACEHOLDER = "\x00hole\x00"  # a JSON string no trace holds; its serialized form is replaced by raw bytes


def _with_hole(draw, fields: list[str], tolerant: bool) -> tuple[dict[str, Any], int]:
    """A copy of the base trace with ``PLACEHOLDER`` put at one drawn field; returns it and how many holes."""
    document = orjson.loads(orjson.dumps(HOSTILE_BASE))
    events = document["traceEvents"]
    holes = draw(st.integers(1, 3))
    for _ in range(holes):
        event = events[draw(st.integers(0, len(events) - 1))]
        field = draw(st.sampled_from(fields))
        if field.startswith("args."):
            if not isinstance(event.get("args"), dict):
                event["args"] = {}
            event["args"][field[5:]] = PLACEHOLDER
        elif field.startswith("top."):
            document[field[4:]] = PLACEHOLDER
        elif field == "device.name":
            document["deviceProperties"] = [{"id": 0, "name": PLACEHOLDER}]
        else:
            event[field] = PLACEHOLDER
    if tolerant:
        events.insert(0, 5)  # not an object: the typed decoder gives up, the tolerant one reads the rest
    return document, holes


def _fill(document: dict[str, Any], values: list[bytes]) -> bytes:
    parts = orjson.dumps(document).split(orjson.dumps(PLACEHOLDER))
    filled = [parts[0]]
    for index, part in enumerate(parts[1:]):
        filled += [values[index % len(values)], part]
    return b"".join(filled)


def _decode_or_refuse(raw: bytes, analyze: bool):
    """Parse (and analyze every other example, by content: the analysis costs ten parses): success, or one
    ProfkitError; nothing else may escape."""
    try:
        tables = parse_kineto_bytes(raw, Path("fuzz.json"))
    except ProfkitError:
        return None
    assert tables.info.decoder in ("typed", "tolerant")
    orjson.dumps([tables.info.devices, tables.info.trace_metadata])  # shallow enough to write out
    for table in ("kernels", "launches", "memops", "cpu_ops", "ranges", "syncs"):
        for name in getattr(tables, table)["name"]:
            name.encode()  # no lone surrogate: every report can write it
    if analyze and zlib.crc32(raw) % 2 == 0:
        result = analyze_tables(tables)
        if result.gaps is not None:
            assert result.gaps.busy_us <= result.gaps.window_us + 1e-6
    return tables


ANY_FIELD = ["name", "cat", "ph", "ts", "dur", "pid", "tid", "args", "extra", "top.deviceProperties", "top.other"]
ANY_FIELD += ["top.traceName", "top.distributedInfo", "device.name", "args.grid", "args.correlation", "args.x"]


@st.composite
def nested_traces(draw):
    document, _ = _with_hole(draw, ANY_FIELD, draw(st.booleans()))
    depth = draw(st.one_of(st.integers(1, 300), st.integers(800, 1100), st.integers(1100, 20_000)))
    opener, closer = draw(st.sampled_from([(b"[", b"]"), (b'{"k":', b"}"), (b'[{"a":', b"}]")]))
    return _fill(document, [opener * depth + b"0" + closer * depth])


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(nested_traces())
def test_nesting_anywhere_decodes_or_fails_cleanly(raw):
    _decode_or_refuse(raw, analyze=False)


NUMBER_FIELDS = ["ts", "dur", "pid", "tid", "args.correlation", "args.External id", "args.device", "args.stream"]
NUMBER_FIELDS += ["args.grid", "args.block", "args.registers per thread", "args.shared memory", "args.bytes"]
NUMBER_FIELDS += ["top.schemaVersion", "top.deviceProperties"]
EDGES = [2**53 + 1, 2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**64, 2**64 + 1, 2**70, -(2**70), 10**400]
number_literals = st.one_of(
    st.integers(-(2**200), 2**200).map(lambda n: b"%d" % n),
    st.sampled_from(EDGES).map(lambda n: b"%d" % n),
    st.sampled_from([b"1e308", b"1e309", b"-1e400", b"1e-400", b"1.7976931348623157e308", b"-0", b"0e0"]),
    st.floats(allow_nan=False, allow_infinity=False).map(lambda x: repr(x).encode()),
)


@st.composite
def huge_number_traces(draw):
    document, holes = _with_hole(draw, NUMBER_FIELDS, draw(st.booleans()))
    values = [draw(number_literals) for _ in range(holes)]
    if draw(st.booleans()):  # inside a list, as grid and block are
        values = [b"[" + value + b",1,1]" for value in values]
    return _fill(document, values)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(huge_number_traces())
def test_numbers_of_any_size_decode_or_fail_cleanly(raw):
    _decode_or_refuse(raw, analyze=True)


STRING_FIELDS = ["name", "cat", "ph", "pid", "tid", "args.stream", "args.device", "args.x", "extra", "device.name"]
STRING_FIELDS += ["top.traceName", "top.other"]
invalid_utf8 = st.one_of(
    st.lists(st.integers(0x80, 0xFF), min_size=1, max_size=6).map(bytes),  # stray continuation / lead bytes
    st.sampled_from([b"\xed\xa0\x80", b"\xc0\xaf", b"\xf4\x90\x80\x80", b"\xe2\x82", b"\xff\xfe"]),
    st.binary(min_size=1, max_size=6),  # anything, a quote or a backslash included
)


@st.composite
def invalid_utf8_traces(draw):
    document, holes = _with_hole(draw, STRING_FIELDS, draw(st.booleans()))
    values = [b'"' + draw(st.text(max_size=3)).encode() + draw(invalid_utf8) + b'"' for _ in range(holes)]
    return _fill(document, values)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(invalid_utf8_traces())
def test_invalid_utf8_in_strings_decodes_or_fails_cleanly(raw):
    tables = _decode_or_refuse(raw, analyze=False)
    if tables is not None and any("\ufffd" in name for name in tables.kernels["name"]):
        assert any("invalid UTF-8" in warning for warning in tables.info.warnings)


MARKUP = ["[/]", "[bold]", "[/bold]", "[link=https://x.invalid]x[/link]", "[red", "]", "\\[", "<script>x</script>"]
MARKUP += ["{{ 7*7 }}", "{% raw %}", "%s%n", "${x}", "&amp;", "\u202e", "\x1b[31m", "\n", "\x00", "\U0001f600"]
markup_text = st.lists(st.one_of(st.sampled_from(MARKUP), st.text(max_size=4)), min_size=1, max_size=4).map("".join)


@st.composite
def markup_traces(draw):
    """Markup in every string field of a few events: names, categories, ids, args, the header."""
    document = orjson.loads(orjson.dumps(HOSTILE_BASE))
    events = document["traceEvents"]
    for _ in range(draw(st.integers(1, 6))):
        event = events[draw(st.integers(0, len(events) - 1))]
        for field in draw(st.lists(st.sampled_from(["name", "cat", "ph", "pid", "tid", "args"]), min_size=1)):
            if field == "args":
                event["args"] = {draw(markup_text): draw(markup_text), "stream": draw(markup_text)}
            elif field in ("cat", "ph") and draw(st.booleans()):
                event[field] = event.get(field, "") + draw(markup_text)  # still mostly recognisable
            else:
                event[field] = draw(markup_text)
    document["deviceProperties"][0]["name"] = draw(markup_text)
    document["traceName"] = draw(markup_text)
    if draw(st.booleans()):
        events.insert(0, 5)
    return orjson.dumps(document)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(markup_traces())
def test_markup_in_every_string_field_decodes_or_fails_cleanly(raw):
    _decode_or_refuse(raw, analyze=True)
