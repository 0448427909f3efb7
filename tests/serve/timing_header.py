"""Reading a Server-Timing header back (what a client such as ``profkit load`` does)."""

from __future__ import annotations

from profkit.serve.timing import PHASES


def parse_server_timing(header: str) -> dict[str, float]:
    entries = {}
    for entry in header.split(","):
        parts = [part.strip() for part in entry.split(";")]
        duration = next(p for p in parts[1:] if p.startswith("dur="))
        entries[parts[0]] = float(duration[4:])
    return entries


def assert_phases_sum_to_total(header: str) -> dict[str, float]:
    entries = parse_server_timing(header)
    assert set(PHASES) <= set(entries), entries
    assert abs(sum(entries[name] for name in PHASES) - entries["total"]) <= 1.0, entries
    return entries
