"""The h100 captures as raw Kineto events, for tests that recompute analysis numbers independently of profkit.

The raw side uses no profkit code: GPU work, launches and ranges come straight from ``traceEvents``, and the
interval arithmetic is plain Python. :func:`analyzed` is profkit's analysis of the same capture, to compare.
"""

from __future__ import annotations

import gzip
import json
import os
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pytest

from profkit.analysis import AnalysisResult
from profkit.app.inputs import analyze_input, resolve_input
from tests.conftest import REPO

H100 = Path(os.environ.get("PROFKIT_CORPUS", REPO.parent / "shared" / "corpus")) / "h100"
FP32 = "tiny-sd_fp32_20steps_64x64_b1"
FP16 = "tiny-sd_fp16_20steps_64x64_b1"
DIT = "tiny-dit_fp32_20steps_256x256_b1"
COMPILED = "tiny-sd_fp16_compiled_reduce-overhead_10steps_256x256_b1"
CAPTURES = (FP32, FP16, DIT, COMPILED)
GPU_CATS = {"kernel", "gpu_memcpy", "gpu_memset"}


def capture_dir(name: str) -> Path:
    folder = H100 / name
    if not (folder / "trace.json.gz").is_file():
        if os.environ.get("CI") == "true":
            pytest.fail(f"real H100 capture not found at {folder} (set PROFKIT_CORPUS)")
        pytest.skip(f"real H100 capture not found at {folder}")
    return folder


@dataclass
class Raw:
    work: list[dict] = field(default_factory=list)  # kernels, memcpys, memsets
    launches: dict[int, dict] = field(default_factory=dict)  # correlation -> first runtime/driver call
    runtime: list[dict] = field(default_factory=list)  # every runtime/driver call
    ranges: list[dict] = field(default_factory=list)  # CPU-side user annotations
    cpu_ops: list[dict] = field(default_factory=list)

    def steps(self) -> list[dict]:
        """The CPU step ranges (``profkit/denoise/step_NNN``), in time order."""
        steps = [r for r in self.ranges if r["name"].startswith("profkit/denoise/step_") and r["name"].count("/") == 2]
        return sorted(steps, key=lambda r: r["ts"])

    def launched_in(self, start: float, end: float) -> list[dict]:
        """GPU work whose launch call starts inside ``[start, end]``."""
        found = []
        for item in self.work:
            launch = self.launches.get(item["args"].get("correlation", -1))
            if launch is not None and start <= launch["ts"] <= end:
                found.append(item)
        return found


@cache
def raw(name: str) -> Raw:
    with gzip.open(capture_dir(name) / "trace.json.gz") as handle:
        events = json.load(handle)["traceEvents"]
    result = Raw()
    origin = min(event["ts"] for event in events if event.get("ph") == "X")
    for event in events:
        cat = event.get("cat")
        if event.get("ph") != "X":
            continue
        event["ts"] -= origin  # exact; keeps ts + dur precise (raw times are ~1e12 us)
        if cat in GPU_CATS:
            result.work.append(event)
        elif cat in ("cuda_runtime", "cuda_driver"):
            result.runtime.append(event)
            result.launches.setdefault(event.get("args", {}).get("correlation", -1), event)
        elif cat == "user_annotation":
            result.ranges.append(event)
        elif cat == "cpu_op":
            result.cpu_ops.append(event)
    return result


def union(intervals: list[tuple[float, float]]) -> float:
    total, current_start, current_end = 0.0, None, None
    for start, end in sorted(intervals):
        if current_end is None or start > current_end:
            if current_end is not None:
                total += current_end - current_start
            current_start, current_end = start, end
        else:
            current_end = max(current_end, end)
    if current_end is not None:
        total += current_end - current_start
    return total


def spans(items: list[dict]) -> list[tuple[float, float]]:
    return [(item["ts"], item["ts"] + item["dur"]) for item in items]


def idle_inside(items: list[dict], start: float, end: float) -> float:
    """Length of ``[start, end)`` not covered by any of ``items``."""
    clipped = [(max(a, start), min(b, end)) for a, b in spans(items) if b > start and a < end]
    return end - start - union(clipped)


@cache
def analyzed(name: str) -> AnalysisResult:
    """profkit's analysis of a capture folder (metadata included), computed once per test session."""
    return analyze_input(resolve_input(capture_dir(name)))
