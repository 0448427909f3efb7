"""Build a large Kineto trace by replicating a real one end to end (for scale tests of `profkit analyze`).

Each copy is shifted in time past the previous one, and its correlation and external ids are offset
so launches still join to their own kernels. Written uncompressed, copy by copy, so building it needs
little memory.

    python benchmarks/make_big_trace.py --size-gb 1 --out /tmp/big_trace.json
    /usr/bin/time -v profkit analyze /tmp/big_trace.json --json --force
"""

from __future__ import annotations

import argparse
import gzip
import os
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
CORPUS = Path(os.environ.get("PROFKIT_CORPUS", ROOT.parent / "shared" / "corpus" / "kineto"))
ID_KEYS = ("correlation", "External id")


def shifted(events: list[dict], copy: int, time_shift: float, id_shift: int) -> list[dict]:
    result = []
    for event in events:
        event = dict(event)
        if isinstance(event.get("ts"), (int, float)):
            event["ts"] = event["ts"] + copy * time_shift
        args = event.get("args")
        if isinstance(args, dict) and any(key in args for key in ID_KEYS):
            args = dict(args)
            for key in ID_KEYS:
                if isinstance(args.get(key), int) and args[key] >= 0:
                    args[key] += copy * id_shift
            event["args"] = args
        result.append(event)
    return result


def write_big_trace(source: Path, out: Path, size_gb: float | None = None, copies: int | None = None) -> int:
    """Write ``copies`` copies of ``source`` (or as many as make ``size_gb``) to ``out``; the number of events."""
    document = orjson.loads(gzip.decompress(source.read_bytes()))
    events = document.pop("traceEvents")
    timed = [e for e in events if isinstance(e.get("ts"), (int, float))]
    span = max(e["ts"] + e.get("dur", 0) for e in timed) - min(e["ts"] for e in timed) + 1000
    id_shift = 1 + max(
        (
            e["args"][k]
            for e in events
            if isinstance(e.get("args"), dict)
            for k in ID_KEYS
            if isinstance(e["args"].get(k), int)
        ),
        default=0,
    )
    if copies is None:
        copies = max(1, round((size_gb or 1.0) * 1e9 / len(orjson.dumps(events))))
    with out.open("wb") as handle:
        header = orjson.dumps(document)
        handle.write(header[:-1] + (b',"traceEvents":[' if len(header) > 2 else b'{"traceEvents":['))
        for copy in range(copies):
            chunk = orjson.dumps(shifted(events, copy, span, id_shift))[1:-1]
            handle.write((b"," if copy else b"") + chunk)
        handle.write(b"]}")
    return len(events) * copies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, default=CORPUS / "a100_80gb_training_rank0.json.gz")
    parser.add_argument("--size-gb", type=float, default=1.0)
    parser.add_argument("--copies", type=int, help="this many copies of the source (instead of --size-gb)")
    parser.add_argument("--out", type=Path, required=True)
    options = parser.parse_args()
    events = write_big_trace(options.source, options.out, options.size_gb, options.copies)
    size_gb = options.out.stat().st_size / 1e9
    print(f"wrote {options.out}: {events} events ({options.source.name} copied), {size_gb:.2f} GB")


if __name__ == "__main__":
    main()
