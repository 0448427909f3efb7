"""Whole-process start-up and analyze times of the CLI, now versus an earlier commit, in the same run.

Each case runs ``--repeats`` times in fresh processes, interleaved (before, now, before, now, ...), so drift on a
busy machine hits both sides alike; the table shows medians. The earlier commit is checked out in a temporary
``git worktree`` and run from source (``python -m profkit`` with PYTHONPATH pointing there).

    python benchmarks/startup.py                 # before = 9313c92, the commit before the re-housing
    python benchmarks/startup.py --before HEAD~3 --repeats 7

Targets (issue 9): ``profkit --help`` under 0.3 s; ``profkit analyze`` of the 54 MB-class V100 trace (HTML + JSON)
at least 1.6x faster than before.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = Path(os.environ.get("PROFKIT_CORPUS", ROOT.parent / "shared" / "corpus"))
DEFAULT_TRACE = CORPUS / "kineto" / "v100_training_rank0.json.gz"
HELP_TARGET_S = 0.3
ANALYZE_SPEEDUP_TARGET = 1.6


def cases(trace: Path, out: Path) -> dict[str, list[str]]:
    return {
        "--help": ["--help"],
        "--version": ["--version"],
        f"analyze {trace.name}": [
            "analyze",
            str(trace),
            "--out",
            str(out / "r.html"),
            "--json-out",
            str(out / "r.json"),
            "--quiet",
            "--force",
        ],
    }


def timed(tree: Path, args: list[str], cwd: Path) -> float | None:
    """Seconds of one fresh ``python -m profkit ARGS`` from ``tree``; None when it fails."""
    env = {**os.environ, "PYTHONPATH": str(tree), "COLUMNS": "120"}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "profkit", *args], cwd=cwd, env=env, capture_output=True)
    elapsed = time.perf_counter() - started
    return elapsed if done.returncode == 0 else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="9313c92", help="The commit to compare with (default: %(default)s).")
    parser.add_argument("--repeats", type=int, default=5, help="Fresh processes per case and tree.")
    parser.add_argument("--trace", type=Path, default=DEFAULT_TRACE, help="The trace to analyze.")
    options = parser.parse_args()
    if not options.trace.is_file():
        print(f"startup.py: no trace at {options.trace} (set PROFKIT_CORPUS or pass --trace)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="profkit-startup-") as scratch:
        scratch_dir = Path(scratch)
        before_tree = scratch_dir / "before"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet", str(before_tree), options.before],
            check=True,
        )
        try:
            return _measure(options, scratch_dir, {"before": before_tree, "now": ROOT})
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(before_tree)], check=False)


def _measure(options: argparse.Namespace, scratch: Path, trees: dict[str, Path]) -> int:
    out = scratch / "out"
    out.mkdir()
    runs = cases(options.trace, out)
    times: dict[tuple[str, str], list[float]] = {(case, tree): [] for case in runs for tree in trees}
    failed: set[tuple[str, str]] = set()
    for _ in range(options.repeats):
        for case, args in runs.items():
            for tree, path in trees.items():
                seconds = timed(path, args, scratch)
                if seconds is None:
                    failed.add((case, tree))
                else:
                    times[case, tree].append(seconds)
    medians = {key: statistics.median(values) if values else None for key, values in times.items()}
    python = sys.version.split()[0]
    print(f"median of {options.repeats} fresh processes (s); before = {options.before}, python {python}")
    print(f"{'case':<40} {'before':>8} {'now':>8} {'speedup':>8}")
    for case in runs:
        before, now = medians[case, "before"], medians[case, "now"]
        speedup = f"{before / now:.2f}x" if before and now else "-"
        print(f"{case:<40} {_seconds(before):>8} {_seconds(now):>8} {speedup:>8}")
    for case, tree in sorted(failed):
        print(f"note: {case} failed at least once in {tree} (e.g. an option that tree lacks)")
    help_now = medians["--help", "now"]
    analyze = f"analyze {options.trace.name}"
    before, now = medians[analyze, "before"], medians[analyze, "now"]
    help_met = help_now is not None and help_now < HELP_TARGET_S
    analyze_met = bool(before and now and before / now >= ANALYZE_SPEEDUP_TARGET)
    print(
        f"targets: {'met' if help_met and analyze_met else 'not met'} "
        f"(--help < {HELP_TARGET_S} s: {'yes' if help_met else 'no'}; "
        f"analyze >= {ANALYZE_SPEEDUP_TARGET}x faster: {'yes' if analyze_met else 'no'})"
    )
    return 0 if help_met and analyze_met else 1


def _seconds(value: float | None) -> str:
    return f"{value:.3f}" if value is not None else "failed"


if __name__ == "__main__":
    sys.exit(main())
