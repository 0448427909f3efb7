"""HTML reports: trace strings escaped, nothing fetched from a network, templates shipped in the wheel."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from profkit.analysis import analyze_tables
from profkit.analysis.compare import compare_results
from profkit.parsers import load_trace
from profkit.report import analysis_html, comparison_html
from tests.benchbuilder import bench_result
from tests.conftest import REPO, run_cli
from tests.tracebuilder import diffusion_trace

EVIL = "<script>alert('pwned')</script><img src=x onerror=alert(1)>"


def _evil_trace(tmp_path: Path, name: str) -> Path:
    builder = diffusion_trace(steps=2, kernel_name=f"{EVIL}_gemm_kernel")
    builder.cpu_op(f"aten::{EVIL}", 210, 30)
    return builder.write(tmp_path / name)


def _assert_inert(html: str) -> None:
    assert EVIL not in html
    assert "<script>alert" not in html
    assert "<img src=x" not in html
    assert "&lt;script&gt;alert(" in html  # shown as text
    # the only script elements are profkit's own: its data and code, the timeline's data and code
    assert len(re.findall(r"<script\b", html)) == 4
    data = re.search(r'<script type="application/json" id="profkit-data">(.*?)</script>', html, re.S).group(1)
    assert "<" not in data  # |tojson escapes < so the JSON block cannot close the element
    assert orjson.loads(data)


def _assert_offline(html: str) -> None:
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "@import" not in html and "url(http" not in html


def test_analysis_report_escapes_kernel_and_op_names(tmp_path):
    result = analyze_tables(load_trace(_evil_trace(tmp_path, "evil.json")))
    html = analysis_html(result)
    _assert_inert(html)
    _assert_offline(html)


def test_comparison_report_escapes_names(tmp_path):
    a = analyze_tables(load_trace(_evil_trace(tmp_path, "a.json")), label=f"A {EVIL}")
    b = analyze_tables(load_trace(diffusion_trace(steps=2).write(tmp_path / "b.json")), label="B")
    html = comparison_html(compare_results(a, b), "a.json", "b.json", a, b)
    _assert_inert(html)
    _assert_offline(html)


def test_cpu_op_names_escaped_in_cpu_only_report(tmp_path):
    from tests.tracebuilder import TraceBuilder

    builder = TraceBuilder(device_name=None).cpu_op(f"aten::{EVIL}", 0, 100).cpu_op("aten::mm", 100, 50)
    html = analysis_html(analyze_tables(load_trace(builder.write(tmp_path / "cpu.json"))))
    _assert_inert(html)
    assert "No GPU activity" in html


@pytest.mark.slow
def test_report_from_own_capture_has_every_section(captured):
    _, outputs = captured
    html = outputs.reports[0].html.read_text(encoding="utf-8")
    for section in (
        'id="summary"',
        'id="findings"',
        'id="stages"',
        'id="steps"',
        'id="categories"',
        'id="top"',
        'id="run"',
        "<svg",
    ):
        assert section in html
    _assert_offline(html)
    compare_html = outputs.comparisons[0].html.read_text(encoding="utf-8")
    assert "fp16 on CPU" in compare_html
    _assert_offline(compare_html)


@pytest.mark.slow
def test_non_editable_wheel_install_renders_a_report(tmp_path):
    wheel_dir, target = tmp_path / "wheel", tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(wheel_dir),
            str(REPO),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = wheel_dir.glob("profkit-*.whl")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    assert (target / "profkit" / "report" / "templates" / "analysis.html.j2").is_file()
    trace = diffusion_trace(steps=2).write(tmp_path / "t.json")

    def installed_profkit(*args: str) -> subprocess.CompletedProcess[str]:
        """Run the profkit CLI from the wheel's install (asserting it is that copy, not the repo's)."""
        code = (
            "import sys, profkit, profkit.cli; assert profkit.__file__.startswith(sys.argv[1]), profkit.__file__;"
            "sys.argv = ['profkit', *sys.argv[2:]]; profkit.cli.main()"
        )
        return subprocess.run(
            [sys.executable, "-c", code, str(target), *args],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"},
            timeout=120,
        )

    done = installed_profkit("analyze", str(trace), "-q")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "t.report.html").is_file()
    # the bench report and the price table (package data) from the same install
    result = tmp_path / "bench.json"
    bench_result().write(result)
    done = installed_profkit(
        "check", str(result), "--baseline", str(result), "--instance", "aws-g5.xlarge", "-o", "bench.html"
    )
    assert done.returncode == 0, done.stderr
    html = (tmp_path / "bench.html").read_text()
    assert "aws-g5.xlarge" in html and "Latency distribution" in html


def test_cli_analyze_writes_report_next_to_trace(tmp_path):
    trace = diffusion_trace(steps=2).write(tmp_path / "gpu.json.gz")
    done = run_cli("analyze", str(trace), "--json")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "gpu.report.html").is_file()
    summary = orjson.loads((tmp_path / "gpu.summary.json").read_bytes())
    assert summary["schema_version"] == 1 and summary["kind"] == "profkit.analysis"
    assert len(summary["view"]["steps"]) == 2
    assert "Stages" in done.stdout and "wrote HTML report" in done.stdout
