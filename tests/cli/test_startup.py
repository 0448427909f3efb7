"""Fast start: the CLI loads heavy libraries only in the commands that need them (module sets, not timings)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.tracebuilder import diffusion_trace

HEAVY = ("torch", "diffusers", "scipy", "pandas", "numpy")

_RUN_MAIN = """
import json, sys
sys.argv = ["profkit", *json.loads(sys.argv[1])]
from profkit.cli import main
try:
    main()
except SystemExit as done:
    assert not done.code, done.code
print(json.dumps(sorted(name for name in {heavy} if name in sys.modules)))
"""


def _loaded_by(*args: str, modules: tuple[str, ...] = HEAVY) -> set[str]:
    """Which of ``modules`` (the heavy libraries) running ``profkit ARGS`` loads, in a fresh interpreter."""
    code = _RUN_MAIN.format(heavy=modules)
    done = subprocess.run([sys.executable, "-c", code, json.dumps(args)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def test_importing_the_cli_loads_no_heavy_library() -> None:
    code = f"import sys, profkit.cli; print([m for m in {HEAVY} if m in sys.modules])"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_help_and_version_load_no_heavy_library() -> None:
    assert _loaded_by("--help") == set()
    assert _loaded_by("analyze", "--help") == set()
    assert _loaded_by("--version") == set()


def test_analyze_loads_neither_pandas_scipy_nor_torch(tmp_path) -> None:
    trace = diffusion_trace().write(tmp_path / "t.json.gz")
    loaded = _loaded_by("analyze", str(trace), "--json", "--quiet")
    assert "numpy" in loaded  # the analysis itself ran
    assert not loaded & {"pandas", "scipy", "torch", "diffusers"}  # event tables are numpy columns
    assert (tmp_path / "t.summary.json").is_file()


def test_a_command_loads_no_other_command(tmp_path) -> None:
    trace = diffusion_trace().write(tmp_path / "t.json.gz")
    loaded = _loaded_by("analyze", str(trace), "--json", "--quiet", modules=("profkit.cli.bench", "profkit.cli.load"))
    assert not loaded  # each command module is imported when its command runs


def test_a_quiet_analysis_loads_only_what_it_uses(tmp_path) -> None:
    """Whole-process time (issue 16): ``analyze -q`` prints plain lines (no rich), decodes in this process (no
    multiprocessing) and computes its order statistics without ``numpy.ma`` (np.unique, np.isin, np.percentile and
    np.median import it: 6 ms)."""
    trace = diffusion_trace().write(tmp_path / "t.json.gz")
    unused = ("rich", "multiprocessing", "numpy.ma", "jinja2", "profkit.report.terminal")
    loaded = _loaded_by("analyze", str(trace), "--json", "--quiet", "--no-html", modules=unused)
    assert loaded == set()
    assert (tmp_path / "t.summary.json").is_file()
    assert _loaded_by("analyze", str(trace), "--json", "--quiet", "--force", modules=unused) == {"jinja2"}  # HTML
