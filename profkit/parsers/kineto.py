"""Kineto (torch.profiler) chrome-trace JSON, plain or gzipped -> :class:`TraceTables`."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any

from profkit.errors import ProfkitError
from profkit.jsonio import read_json
from profkit.parsers.tables import TraceInfo, TraceTables, build_table

_CPU_OP_CATS = {"cpu_op", "python_function", "operator", "cpu_instant_event"}
_RANGE_CATS = {"user_annotation": False, "gpu_user_annotation": True}
_KNOWN_IGNORED = {"ac2g", "fwdbwd", "flow_link", "Trace", "trace", "cuda_profiler_range", "overhead"}
_MEMCPY_DIRECTIONS = (("HtoD", "H2D"), ("DtoH", "D2H"), ("DtoD", "D2D"), ("PtoP", "P2P"), ("HtoH", "H2H"))


def _int(value: Any, default: int = -1) -> int:
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return int(value)
    if isinstance(value, str):
        try:
            return int(value, 0)
        except ValueError:
            return default
    return default


def _float(value: Any) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return math.nan


def _memcpy_direction(name: str) -> str:
    for token, direction in _MEMCPY_DIRECTIONS:
        if token in name:
            return direction
    return "other"


def _events_of(document: Any, path: Path) -> list[Any]:
    if isinstance(document, dict):
        events = document.get("traceEvents")
        if events is None:
            raise ProfkitError(f"{path}: JSON, but not a Kineto/Chrome trace (no 'traceEvents' array)")
    elif isinstance(document, list):
        events = document
    else:
        raise ProfkitError(f"{path}: JSON, but not a Kineto/Chrome trace")
    if not isinstance(events, list):
        raise ProfkitError(f"{path}: 'traceEvents' is not an array")
    if not any(isinstance(event, dict) and event.get("ph") == "X" for event in events):
        raise ProfkitError(f"{path}: the trace has no duration events (empty or not a profiler trace)")
    return events


def parse_kineto_document(document: Any, path: Path) -> TraceTables:
    events = _events_of(document, path)
    header = document if isinstance(document, dict) else {}
    skipped: Counter[str] = Counter()
    unknown: Counter[str] = Counter()
    cols: dict[str, dict[str, list[Any]]] = {
        name: {} for name in ("kernels", "launches", "memops", "cpu_ops", "ranges", "syncs")
    }

    def add(table: str, **values: Any) -> None:
        bucket = cols[table]
        for key, value in values.items():
            bucket.setdefault(key, []).append(value)

    for event in events:
        if not isinstance(event, dict):
            skipped["not an object"] += 1
            continue
        if event.get("ph") != "X":
            continue
        cat = event.get("cat")
        if not isinstance(cat, str):
            skipped["no category"] += 1
            continue
        ts = _float(event.get("ts"))
        dur = _float(event.get("dur"))
        if not math.isfinite(ts):
            skipped["missing or bad ts"] += 1
            continue
        if not math.isfinite(dur):
            skipped["missing or bad dur"] += 1
            continue
        if dur < 0:
            skipped["negative dur"] += 1
            continue
        name = event.get("name")
        name = name if isinstance(name, str) else str(name)
        args = event.get("args")
        args = args if isinstance(args, dict) else {}
        cat_lower = cat.lower()
        if cat_lower == "kernel":
            grid, block = args.get("grid"), args.get("block")
            add(
                "kernels",
                name=name,
                ts=ts,
                dur=dur,
                device=_int(args.get("device"), _int(event.get("pid"))),
                stream=_int(args.get("stream"), _int(event.get("tid"))),
                correlation=_int(args.get("correlation")),
                external_id=_int(args.get("External id")),
                grid=None if grid is None else str(grid),
                block=None if block is None else str(block),
                registers=_float(args.get("registers per thread")),
                shared_memory=_float(args.get("shared memory")),
            )
        elif cat_lower in ("gpu_memcpy", "gpu_memset"):
            kind = "memcpy" if cat_lower == "gpu_memcpy" else "memset"
            add(
                "memops",
                name=name,
                kind=kind,
                direction=_memcpy_direction(name) if kind == "memcpy" else "memset",
                ts=ts,
                dur=dur,
                device=_int(args.get("device"), _int(event.get("pid"))),
                stream=_int(args.get("stream"), _int(event.get("tid"))),
                correlation=_int(args.get("correlation")),
                bytes=_float(args.get("bytes")),
            )
        elif cat_lower in ("cuda_runtime", "cuda_driver"):
            add(
                "launches",
                name=name,
                ts=ts,
                dur=dur,
                pid=str(event.get("pid")),
                tid=str(event.get("tid")),
                correlation=_int(args.get("correlation")),
                external_id=_int(args.get("External id")),
                api="driver" if cat_lower == "cuda_driver" else "runtime",
            )
        elif cat_lower in _CPU_OP_CATS:
            add(
                "cpu_ops",
                name=name,
                cat=cat,
                ts=ts,
                dur=dur,
                pid=str(event.get("pid")),
                tid=str(event.get("tid")),
                external_id=_int(args.get("External id")),
            )
        elif cat_lower in _RANGE_CATS:
            add(
                "ranges",
                name=name,
                ts=ts,
                dur=dur,
                pid=str(event.get("pid")),
                tid=str(event.get("tid")),
                on_gpu=_RANGE_CATS[cat_lower],
            )
        elif cat_lower == "cuda_sync":
            add(
                "syncs",
                name=name,
                ts=ts,
                dur=dur,
                device=_int(args.get("device"), _int(event.get("pid"))),
                stream=_int(args.get("stream"), _int(event.get("tid"))),
            )
        elif cat not in _KNOWN_IGNORED:
            unknown[cat] += 1

    origin = min((min(bucket["ts"]) for bucket in cols.values() if bucket.get("ts")), default=0.0)
    devices = header.get("deviceProperties")
    info = TraceInfo(
        path=path,
        source_format="kineto",
        devices=[d for d in devices if isinstance(d, dict)] if isinstance(devices, list) else [],
        event_count=len(events),
        skipped_events=dict(skipped),
        unknown_categories=dict(unknown),
        trace_metadata={k: header[k] for k in ("schemaVersion", "traceName", "distributedInfo") if k in header},
        time_origin_us=origin,
    )
    if "deviceProperties" not in header:
        info.warnings.append("the trace has no deviceProperties block: GPU model unknown")
    if skipped:
        detail = ", ".join(f"{count} {reason}" for reason, count in skipped.most_common())
        info.warnings.append(f"skipped {sum(skipped.values())} unusable events ({detail})")
    return TraceTables(
        info=info,
        kernels=build_table("kernels", cols["kernels"], origin),
        launches=build_table("launches", cols["launches"], origin),
        memops=build_table("memops", cols["memops"], origin),
        cpu_ops=build_table("cpu_ops", cols["cpu_ops"], origin),
        ranges=build_table("ranges", cols["ranges"], origin),
        syncs=build_table("syncs", cols["syncs"], origin),
    )


def load_kineto(path: Path) -> TraceTables:
    return parse_kineto_document(read_json(path, "Kineto trace (.json or .json.gz)"), path)
