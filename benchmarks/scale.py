"""Time and peak RSS of whole-process `profkit analyze` against trace size, with the fitted slope.

Builds each trace with make_big_trace.py (replicas of a corpus trace), or with ``--format nsys`` an
Nsight Systems SQLite export with make_big_nsys.py (one diffusion pipeline call repeated), then runs
`profkit analyze TRACE --json --no-html --force -q` in a fresh process per size and reads its peak RSS
from wait4 ("peak RSS") and the peak of its RSS summed with its decode workers' ("with workers", sampled every
20 ms; what the job holds in all, the number the memory targets are read against; the ratio to the file size and the
fitted slope use it).

    python benchmarks/scale.py                               # Kineto: 0.1, 0.5, 1 GB
    python benchmarks/scale.py --sizes 0.1 0.5 1 5           # 5 GB too (needs ~6 GB of disk)
    python benchmarks/scale.py --format nsys --sizes 0.5 1 2 # nsys SQLite exports
    python benchmarks/scale.py --format nsys --detail-events 0  # every nsys event in detail (memory grows with it)
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil

HERE = Path(__file__).resolve().parent


def _tree_rss_mb(root: psutil.Process) -> float:
    """RSS of a process and all its descendants (decode workers), in MB of 2**20 bytes (as ru_maxrss / 1024); pages
    they share count once per process."""
    total = 0
    with contextlib.suppress(psutil.Error):  # ended meanwhile
        for process in [root, *root.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                total += process.memory_info().rss
    return total / 2**20


def measure(command: list[str]) -> tuple[float, float, int]:
    """(seconds, peak RSS in MB, exit code) of one fresh process; its CPU seconds (children included) in
    ``measure.cpu`` and the peak summed RSS of it and its worker processes (sampled every 20 ms) in ``measure.tree``."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    watched, tree = psutil.Process(process.pid), 0.0
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        tree = max(tree, _tree_rss_mb(watched))
        time.sleep(0.02)
    elapsed = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        sys.stderr.write(process.stderr.read().decode() if process.stderr else "")
    measure.cpu = usage.ru_utime + usage.ru_stime  # type: ignore[attr-defined]  # less disturbed by other load
    measure.tree = tree  # type: ignore[attr-defined]
    return elapsed, usage.ru_maxrss / 1024, process.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[0.1, 0.5, 1.0], help="trace sizes in GB")
    parser.add_argument("--dir", type=Path, default=None, help="where to build the traces (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the built traces")
    parser.add_argument("--format", choices=("kineto", "nsys"), default="kineto", help="the trace format built")
    parser.add_argument(
        "--detail-events", type=int, default=None, help="passed to profkit analyze (default: profkit's own)"
    )
    options = parser.parse_args()
    folder = options.dir or Path(tempfile.mkdtemp(prefix="profkit-scale-"))
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    print(f"{'size GB':>8} {'time s':>8} {'peak RSS MB':>12} {'with workers':>13} {'CPU s':>7} {'RSS/file':>9}")
    for size in options.sizes:
        nsys = options.format == "nsys"
        suffix, builder = (".sqlite", "make_big_nsys.py") if nsys else (".json", "make_big_trace.py")
        trace = folder / f"big_{size:g}gb{suffix}"
        subprocess.run(
            [sys.executable, str(HERE / builder), "--size-gb", str(size), "--out", str(trace)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        actual = trace.stat().st_size / 1e9
        limit = [] if options.detail_events is None else ["--detail-events", str(options.detail_events)]
        seconds, rss, code = measure(
            [sys.executable, "-m", "profkit", "analyze", str(trace), "--json", "--no-html", "--force", "-q", *limit]
        )
        whole = max(rss, measure.tree)  # the parent alone, or the parent and its workers at one moment
        ratio = whole / (actual * 1000)  # peak RSS over the file's own size
        line = f"{actual:8.2f} {seconds:8.2f} {rss:12.0f} {measure.tree:13.0f} {measure.cpu:7.2f} {ratio:8.1f}x"
        print(line + (f"  (exit {code})" if code else ""), flush=True)
        rows.append((actual, seconds, whole))
        if not options.keep:
            trace.unlink()
            for extra in folder.glob(trace.name.removesuffix(suffix) + "*"):
                extra.unlink()
    if len(rows) >= 2:
        size, seconds, rss = (np.array(column) for column in zip(*rows, strict=True))
        time_slope, time_icept = np.polyfit(size, seconds, 1)
        rss_slope, rss_icept = np.polyfit(size, rss, 1)
        print(
            f"fit: time = {time_icept:.2f} s + {time_slope:.2f} s/GB; "
            f"peak RSS = {rss_icept:.0f} MB + {rss_slope:.0f} MB/GB"
        )


if __name__ == "__main__":
    main()
