"""Text from traces, metadata, bench results and the user is never read as rich console markup.

Kernel, operator, model, config, device and file names holding ``[/]``, ``[bold]`` ... are printed verbatim by
analyze, compare, check and capture. The table :data:`CASES` runs each command in-process through the CLI's
``main`` (rows marked ``cli=True`` also as a subprocess, ``slow``); a hypothesis fuzzer puts markup characters
in every string field of a trace.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Any

import msgspec
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console

from profkit.analysis import analyze_tables
from profkit.model.bench import BenchResult
from profkit.parsers import load_trace
from profkit.report.terminal import print_analysis, print_bench, print_comparison
from tests.benchbuilder import bench_result
from tests.conftest import run_cli
from tests.hostile.test_outputs import FP16, _main_in_process, capture_folder
from tests.tracebuilder import diffusion_trace

#: Markup a trace or a user may contain: closing tags without opening ones, styles, links, escapes.
MARKUP = ("[/]", "[bold]b[/bold]", "[red]", "[link=http://x]l[/link]", "\\[esc]", "[/nope]", "[@click]c[/]")
KERNELS = tuple(f"kernel{m}" for m in MARKUP)
DEVICE = "[bold red]GPU[/] [/]"
MODEL = "[bold]model[/]"
BENCH_DEVICE = "[i]cpu[/i]"
TIME_LIMIT_S = 60


def markup_trace(path: Path) -> Path:
    builder = diffusion_trace(steps=3, kernel_name=KERNELS[0])
    builder.device_name = DEVICE
    t = 5000.0
    for name in KERNELS[1:]:
        builder.kernel(name, t, t + 10, 50.0)
        builder.cpu_op(f"aten::{name}", t, 5.0)
        t += 100
    return builder.write(path)


def markup_bench(path: Path) -> Path:
    """A bench result whose config and device names are markup."""
    data = orjson.loads(bench_result().to_json().replace(b"fp32 b1", b"[bold]fp32[/] b1"))
    data["device"] = BENCH_DEVICE
    return BenchResult.from_builtins(data).write(path)


def _verbatim(out: str, *texts: str) -> None:
    for text in texts:
        assert text in out, f"{text!r} not shown as written:\n{out}"


# ---------------------------------------------------------------- the table


def b_analyze_trace(tmp: Path) -> tuple[list[str], tuple[str, ...]]:
    trace = markup_trace(tmp / "[bold]trace[red].json.gz")
    return ["analyze", str(trace), "--no-html"], (*KERNELS, "[bold]trace[red]")


def b_compare_models(tmp: Path) -> tuple[list[str], tuple[str, ...]]:
    a = capture_folder(tmp, "a", model=MODEL)
    b = capture_folder(tmp, "b", FP16, model=MODEL)
    return ["compare", str(a), str(b), "--out", str(tmp / "c.html")], (f"{MODEL} fp32", f"{MODEL} fp16")


def b_compare_traces(tmp: Path) -> tuple[list[str], tuple[str, ...]]:
    a = markup_trace(tmp / "[red]a.json.gz")
    b = markup_trace(tmp / "[i]b[blue].json.gz")
    return ["compare", str(a), str(b), "--out", str(tmp / "c.html")], ("[red]a", "[i]b[blue]")


def b_check(tmp: Path) -> tuple[list[str], tuple[str, ...]]:
    result = markup_bench(tmp / "new" / "bench.json")
    baseline = markup_bench(tmp / "old" / "bench.json")
    return ["check", str(result), "--baseline", str(baseline)], ("[bold]fp32[/] b1", BENCH_DEVICE)


def b_wrote_path(tmp: Path) -> tuple[list[str], tuple[str, ...]]:
    trace = markup_trace(tmp / "t.json.gz")
    out = tmp / "runs[exp1]" / "[bold]r.html"
    return ["analyze", str(trace), "-q", "--out", str(out)], (f"wrote HTML report: {out}",)


Build = Callable[[Path], tuple[list[str], tuple[str, ...]]]


def case(build: Build, code: int, first_line: str | None, cli: bool = False) -> object:
    return pytest.param(build, code, first_line, cli, id=build.__name__[2:])


CASES = [
    case(b_analyze_trace, 0, None, cli=True),
    case(b_compare_models, 0, None, cli=True),
    case(b_compare_traces, 0, None),
    case(b_check, 0, None, cli=True),
    case(b_wrote_path, 0, None),
]


def _check(code: int, got: int, out: str, err: str, shown: tuple[str, ...]) -> None:
    assert "Traceback" not in err and "MarkupError" not in err, err
    assert got == code, err
    assert not [line for line in err.splitlines() if line.startswith("profkit: error:")], err
    _verbatim(out, *shown)


@pytest.mark.parametrize(("build", "code", "first_line", "cli"), CASES)
def test_markup_case_in_process(build: Build, code: int, first_line, cli: bool, tmp_path: Path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "300")
    args, shown = build(tmp_path)
    from profkit.cli.output import console

    monkeypatch.setattr(console, "_width", 300)
    started = time.monotonic()
    got, out, err = _main_in_process(args, monkeypatch, capsys)
    assert time.monotonic() - started < TIME_LIMIT_S
    _check(code, got, out, err, shown)


@pytest.mark.slow
@pytest.mark.parametrize(("build", "code", "first_line", "cli"), [c for c in CASES if c.values[3]])
def test_markup_case_as_a_subprocess(build: Build, code: int, first_line, cli: bool, tmp_path: Path):
    args, shown = build(tmp_path)
    done = run_cli(*args, cwd=tmp_path, timeout=TIME_LIMIT_S)
    _check(code, done.returncode, done.stdout, done.stderr, shown)


# ---------------------------------------------------------------- the renderers, on any console


def _recording_console() -> Console:
    """A console that DOES read markup: the renderers must be safe whatever console they are given."""
    return Console(record=True, width=300, file=open("/dev/null", "w"))


def test_print_analysis_shows_every_name_verbatim(tmp_path: Path) -> None:
    from profkit.app.analyze import analyze_path

    folder = capture_folder(tmp_path, "run", model=MODEL, device={"type": "cuda", "name": DEVICE})
    markup_trace(folder / "trace.json.gz")
    result = analyze_path(folder, write_html=False).result
    console = _recording_console()
    print_analysis(result, console)
    _verbatim(console.export_text(), f"{MODEL} fp32", *KERNELS)


def test_print_comparison_and_bench_show_every_name_verbatim(tmp_path: Path) -> None:
    from profkit.app.bench import CostOptions, GateOptions, check
    from profkit.app.compare import compare_paths

    a = capture_folder(tmp_path, "a", model=MODEL)
    b = capture_folder(tmp_path, "b", FP16, model=MODEL)
    comparison = compare_paths(a, b, html=tmp_path / "c.html").comparison
    console = _recording_console()
    print_comparison(comparison, console)
    _verbatim(console.export_text(), f"A: {MODEL} fp32", f"B: {MODEL} fp16")
    result, baseline = markup_bench(tmp_path / "n.json"), markup_bench(tmp_path / "o.json")
    outputs = check(result, CostOptions(), GateOptions(baseline=baseline), None, False)
    console = _recording_console()
    print_bench(outputs.summary, console)
    _verbatim(console.export_text(), "[bold]fp32[/] b1", BENCH_DEVICE)


@pytest.mark.slow
def test_capture_prints_an_out_folder_with_brackets_as_given(tmp_path: Path) -> None:
    done = run_cli("capture", "--device", "cpu", "--steps", "1", "--warmup", "0", "--no-analyze", "--out", "runs[exp1]",
                   cwd=tmp_path, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "run: runs[exp1]/tiny-sd_fp32_1steps_64x64_b1" in done.stdout, done.stdout
    assert (tmp_path / "runs[exp1]" / "tiny-sd_fp32_1steps_64x64_b1" / "trace.json.gz").is_file()


# ---------------------------------------------------------------- the fuzzer

_PIECES = [*"[]/\\=@#:bold red link", "[/]", "[b]", "\x1b", "é"]
_MARKUP_TEXT = st.lists(st.sampled_from(_PIECES), max_size=12).map("".join)


def _with_text(value: Any, text: str, counter: list[int]) -> Any:
    """``value`` with every string field (dataclasses, msgspec structs, lists, dict values) replaced by ``text``
    and a number: every name that can reach the terminal carries the fuzzed markup."""
    if isinstance(value, Enum) or value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        counter[0] += 1
        return f"{text}{counter[0]}"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {f.name: _with_text(getattr(value, f.name), text, counter) for f in dataclasses.fields(value)}
        return msgspec.structs.replace(value, **changes)
    if isinstance(value, msgspec.Struct):
        fields = {name: _with_text(getattr(value, name), text, counter) for name in value.__struct_fields__}
        return msgspec.structs.replace(value, **fields)
    if isinstance(value, (list, tuple)):
        return type(value)(_with_text(item, text, counter) for item in value)
    if isinstance(value, dict):
        return {key: _with_text(item, text, counter) for key, item in value.items()}
    return value


@pytest.fixture(scope="module")
def rendered_inputs(tmp_path_factory: pytest.TempPathFactory):
    """A real analysis (with GPU kernels), comparison and bench summary to fill with markup."""
    from profkit.analysis.compare import compare_results
    from profkit.app.bench import CostOptions, GateOptions, check

    folder = tmp_path_factory.mktemp("fuzz")
    result = analyze_tables(load_trace(markup_trace(folder / "t.json.gz")), label="x")
    comparison = compare_results(result, result, "a", "b")
    bench = bench_result().write(folder / "bench.json")
    summary = check(bench, CostOptions(), GateOptions(baseline=bench), None, False).summary
    return result, comparison, summary


_SLOW_OK = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]


@settings(max_examples=500, deadline=None, suppress_health_check=_SLOW_OK)
@given(text=_MARKUP_TEXT)
def test_fuzz_markup_in_every_string_field_prints_verbatim(text: str, rendered_inputs) -> None:
    result, comparison, summary = rendered_inputs
    for value, render in ((result, print_analysis), (comparison, print_comparison), (summary, print_bench)):
        counter = [0]
        console = _recording_console()
        render(_with_text(value, text, counter), console)
        shown = console.export_text()
        if text.isprintable() and text.strip() == text and text:
            assert f"{text}1" in shown or render is print_bench
