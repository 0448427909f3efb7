"""profkit analyze vs Holistic Trace Analysis on the same trace, in one run: time and peak memory.

Each measurement runs in a fresh child process so that peak RSS is that tool's alone:

* profkit: ``profkit analyze TRACE --out r.html --json-out r.json --force -q`` through the CLI's entry point
  (parse, every analysis, HTML report and JSON summary written);
* HTA: ``TraceAnalysis(trace_dir=...)`` + ``get_gpu_kernel_breakdown()`` + ``get_temporal_breakdown()``;
* the decode floor: a Python that imports numpy and msgspec, reads the file and decodes five fields of each event,
  nothing else (what any Python analysis of the whole trace pays at least).

"work" is the time from the first line of tool code to the last (library imports excluded, as an
interactive user pays them once); "process" is the child's whole wall time, interpreter start and
imports included. Peak memory is the child's maximum RSS. Runs alternate (profkit, HTA, profkit...)
and the median of ``--repeat`` runs is reported. profkit's modules are byte-compiled first (``compileall``), as an
installed package's are.

    python benchmarks/bench_vs_hta.py                      # the two traces below, HTA from .venv-hta
    python benchmarks/bench_vs_hta.py --setup-hta          # create .venv-hta first (pip, PyPI)
    python benchmarks/bench_vs_hta.py --trace big.json --no-hta   # profkit alone on a large trace

By default it measures the largest corpus trace (A100 80GB, 25.8 MB of JSON, 108,936 events) and a 50 MB-class
trace built from it by make_big_trace.py (two copies, 217,872 events, as many as the issue's held-out 54 MB V100
trace). Exit status 1 with ``--check`` when a target (work and whole-process time ratios >= 5, lower peak memory) is
missed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = Path(os.environ.get("PROFKIT_CORPUS", ROOT.parent / "shared" / "corpus" / "kineto"))
HTA_VENV = ROOT / ".venv-hta"
HTA_SPEC = "holistictraceanalysis==0.5.0"

_MEASURE = """
import json, resource, sys, time
started = time.perf_counter()
{imports}
imported = time.perf_counter()
{work}
done = time.perf_counter()
print("PROFKIT_BENCH " + json.dumps({{"import_s": imported - started, "work_s": done - imported,
      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""

#: the command users run, through its entry point (``main``: argument parsing, errors, exit handling), with the
#: analysis modules it loads imported first so that "imports" holds them
PROFKIT_CHILD = _MEASURE.format(
    imports="import profkit.app.analyze\nimport profkit.app.analyze_folder\nfrom profkit.cli import main",
    work="out = sys.argv[2]\n"
    "sys.argv = ['profkit', 'analyze', sys.argv[1], '--out', out + '/r.html', '--json-out', out + '/r.json',"
    " '--force', '-q']\n"
    "main()",
)
#: the least any Python analysis of the trace does: start, import numpy and msgspec, read (gunzip) the file and
#: decode five fields of every event into typed structs (no analysis, nothing written)
FLOOR_CHILD = _MEASURE.format(
    imports="import gzip\nimport msgspec\nimport numpy",
    work="class Event(msgspec.Struct):\n"
    "    ph: str = ''\n    name: str = ''\n    ts: float = 0.0\n    dur: float = 0.0\n    tid: int | str = 0\n"
    "class Trace(msgspec.Struct):\n    traceEvents: list[Event] = []\n"
    "raw = open(sys.argv[1], 'rb').read()\n"
    "raw = gzip.decompress(raw) if raw[:2] == b'\\x1f\\x8b' else raw\n"
    "events = msgspec.json.decode(raw, type=Trace).traceEvents",
)
HTA_CHILD = _MEASURE.format(
    imports="from hta.trace_analysis import TraceAnalysis",
    work="analyzer = TraceAnalysis(trace_dir=sys.argv[1])\n"
    "analyzer.get_gpu_kernel_breakdown(visualize=False)\n"
    "analyzer.get_temporal_breakdown(visualize=False)",
)


def run_child(python: str, code: str, *args: str) -> dict[str, float]:
    started = time.perf_counter()
    child = subprocess.Popen([python, "-c", code, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stdout, stderr = child.communicate()
    wall = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # cumulative: the difference is this child's
    lines = [line for line in stdout.splitlines() if line.startswith("PROFKIT_BENCH ")]
    if child.returncode != 0 or not lines:
        tail = (stderr or stdout).strip().splitlines()[-3:]
        raise SystemExit(f"bench: child failed ({python}): {' | '.join(tail)}")
    result = json.loads(lines[-1].removeprefix("PROFKIT_BENCH "))
    result["process_s"] = wall
    result["cpu_s"] = usage.ru_utime + usage.ru_stime - _CPU_SEEN[0]
    _CPU_SEEN[0] = usage.ru_utime + usage.ru_stime
    return result


#: CPU seconds of the children measured so far (RUSAGE_CHILDREN only grows)
_CPU_SEEN = [0.0]


def setup_hta() -> str:
    python = HTA_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(HTA_VENV)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", HTA_SPEC], check=True)
    return str(python)


def find_hta_python(explicit: str | None) -> str | None:
    candidates = [explicit] if explicit else [str(HTA_VENV / "bin" / "python"), sys.executable]
    for python in candidates:
        if python and Path(python).exists():
            probe = subprocess.run([python, "-c", "import hta.trace_analysis"], capture_output=True)
            if probe.returncode == 0:
                return python
    return None


def median(runs: list[dict[str, float]], key: str) -> float:
    return statistics.median(run[key] for run in runs)


def two_copies(scratch: Path) -> Path:
    """A 50 MB-class trace: the largest corpus trace twice over (217,872 events; the issue's held-out V100 trace has
    216k), written by make_big_trace.py."""
    trace = scratch / "a100_two_copies.json"
    # in a process of its own: a child's peak RSS on Linux starts from its parent's at the fork
    builder = [sys.executable, str(Path(__file__).with_name("make_big_trace.py")), "--copies", "2"]
    source = ["--source", str(CORPUS / "a100_80gb_training_rank0.json.gz"), "--out", str(trace)]
    subprocess.run([*builder, *source], check=True, capture_output=True)
    return trace


def bench(trace: Path, repeat: int, hta_python: str | None, scratch: Path) -> bool:
    """Measure profkit, the decode floor and HTA on ``trace``, print the table; whether every target is met."""
    size_mb = trace.stat().st_size / 1e6
    print(f"\ntrace: {trace.name} ({size_mb:.1f} MB on disk), {repeat} runs each, alternating")
    profkit_runs, hta_runs, floor_runs = [], [], []
    out = scratch / "out"
    out.mkdir(exist_ok=True)
    hta_dir = scratch / f"hta-{trace.name}"
    hta_dir.mkdir()
    if hta_python:
        shutil.copy(trace, hta_dir / trace.name)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    _CPU_SEEN[0] = usage.ru_utime + usage.ru_stime  # the probes and compileall before
    for _ in range(repeat):
        profkit_runs.append(run_child(sys.executable, PROFKIT_CHILD, str(trace), str(out)))
        floor_runs.append(run_child(sys.executable, FLOOR_CHILD, str(trace)))
        if hta_python:
            hta_runs.append(run_child(hta_python, HTA_CHILD, str(hta_dir)))
    shutil.rmtree(hta_dir)

    rows = [("profkit analyze", profkit_runs), ("decode floor", floor_runs)] + ([("HTA", hta_runs)] if hta_runs else [])
    print(f"{'tool':<16}{'work (s)':>10}{'imports (s)':>13}{'process (s)':>13}{'CPU (s)':>10}{'peak RSS (MB)':>15}")
    for name, runs in rows:
        print(
            f"{name:<16}{median(runs, 'work_s'):>10.3f}{median(runs, 'import_s'):>13.3f}"
            f"{median(runs, 'process_s'):>13.3f}{median(runs, 'cpu_s'):>10.3f}{median(runs, 'peak_rss_mb'):>15.1f}"
        )
    if not hta_runs:
        return True
    work_ratio = median(hta_runs, "work_s") / median(profkit_runs, "work_s")
    process_ratio = median(hta_runs, "process_s") / median(profkit_runs, "process_s")
    memory_ratio = median(hta_runs, "peak_rss_mb") / median(profkit_runs, "peak_rss_mb")
    cpu_ratio = median(hta_runs, "cpu_s") / median(profkit_runs, "cpu_s")
    print(
        f"profkit is {work_ratio:.1f}x faster (work), {process_ratio:.1f}x faster (whole process, "
        f"imports and interpreter start included; {cpu_ratio:.1f}x in CPU time, which other load on the machine "
        f"disturbs less); HTA uses {memory_ratio:.2f}x profkit's peak memory"
    )
    floor_ratio = median(hta_runs, "process_s") / median(floor_runs, "process_s")
    print(
        f"decode floor (start, import numpy + msgspec, read and decode five fields per event, nothing else): "
        f"HTA's whole process is {floor_ratio:.1f}x the floor; profkit's is "
        f"{median(profkit_runs, 'process_s') / median(floor_runs, 'process_s'):.1f}x the floor"
    )
    targets = {
        "work >= 5x faster": work_ratio >= 5,
        "whole process >= 5x faster (issue 16)": process_ratio >= 5,
        "lower peak memory": memory_ratio > 1,
    }
    print("targets: " + "; ".join(f"{target}: {'met' if met else 'MISSED'}" for target, met in targets.items()))
    return all(targets.values())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--trace",
        type=Path,
        action="append",
        help="a trace to measure (repeatable; default: the largest corpus trace and a 50 MB-class one built from it)",
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--hta-python", help="a Python with holistictraceanalysis installed")
    parser.add_argument("--setup-hta", action="store_true", help=f"create {HTA_VENV.name} with {HTA_SPEC}")
    parser.add_argument("--no-hta", action="store_true", help="measure profkit only")
    parser.add_argument("--check", action="store_true", help="exit 1 when the targets are missed")
    options = parser.parse_args()
    largest = CORPUS / "a100_80gb_training_rank0.json.gz"
    for trace in options.trace or [largest]:
        if not trace.is_file():
            print(f"bench: {trace}: no such trace (set PROFKIT_CORPUS or pass --trace)", file=sys.stderr)
            return 2
    hta_python = None
    if not options.no_hta:
        hta_python = setup_hta() if options.setup_hta else find_hta_python(options.hta_python)
        if hta_python is None:
            print(
                f"bench: HTA is not installed; run with --setup-hta (creates {HTA_VENV.name}) or --no-hta",
                file=sys.stderr,
            )
            return 2

    # profkit's bytecode compiled as pip does on install (HTA's was, in its venv): with PYTHONDONTWRITEBYTECODE set
    # and no __pycache__, every run would compile ~60 modules first (~50 ms)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "profkit")], check=True, capture_output=True)
    met = True
    with tempfile.TemporaryDirectory(prefix="profkit-bench-") as scratch:
        traces = options.trace or [largest, two_copies(Path(scratch))]
        for trace in traces:
            met = bench(trace, options.repeat, hta_python, Path(scratch)) and met
    return 1 if options.check and not met else 0


if __name__ == "__main__":
    raise SystemExit(main())
