"""The CLI: help, exit codes and one-line errors; settings named by the library, flags by the CLI.

Tests that start ``profkit`` in a subprocess are integration tests (marked ``slow``); the others run in-process.
"""

from __future__ import annotations

import ast
import gzip
import io
import json
import re
import sys
from pathlib import Path

import pytest

from profkit.cli.errors import FLAGS, error_line, flag_for
from profkit.errors import (
    EXIT_BAD_INPUT,
    ConflictingSettings,
    OutputExists,
    ProfkitError,
    SettingError,
    SetupMismatch,
)
from tests.conftest import REPO, corpus_traces, run_cli
from tests.tracebuilder import diffusion_trace


@pytest.mark.slow
@pytest.mark.parametrize("command", ["capture", "analyze", "compare", "bench", "check"])
def test_help_has_an_example(command):
    done = run_cli(command, "--help")
    assert done.returncode == 0
    assert "Example: profkit " + command in done.stdout


@pytest.mark.slow
def test_top_level_help_lists_commands():
    done = run_cli("--help")
    assert done.returncode == 0
    for command in ("capture", "analyze", "compare", "bench", "check"):
        assert command in done.stdout


def _bad_inputs(tmp_path):
    good = diffusion_trace().write(tmp_path / "good.json.gz").read_bytes()
    files = {
        "missing": tmp_path / "missing.json",
        "directory": tmp_path,
        "not_json": tmp_path / "notes.json",
        "truncated_gz": tmp_path / "cut.json.gz",
        "foreign_json": tmp_path / "package.json",
        "no_events": tmp_path / "empty_trace.json",
        "gz_of_garbage": tmp_path / "garbage.json.gz",
    }
    files["not_json"].write_text("this is not json")
    files["truncated_gz"].write_bytes(good[: len(good) // 3])
    files["foreign_json"].write_text('{"name": "left-pad", "version": "1.0.0"}')
    files["no_events"].write_text('{"traceEvents": [{"ph": "M", "name": "process_name"}]}')
    files["gz_of_garbage"].write_bytes(gzip.compress(b"\x00\x01garbage"))
    return files


@pytest.mark.slow
def test_bad_input_gives_one_line_and_exit_2(tmp_path):
    for kind, path in _bad_inputs(tmp_path).items():
        for args in (("analyze", str(path)), ("compare", str(path), str(path))):
            done = run_cli(*args, cwd=tmp_path)
            assert done.returncode == 2, (kind, args, done.stderr)
            assert "Traceback" not in done.stderr, (kind, done.stderr)
            lines = [line for line in done.stderr.splitlines() if line.strip()]
            assert len(lines) == 1 and lines[0].startswith("profkit: error:"), (kind, done.stderr)


@pytest.mark.slow
def test_existing_report_is_not_overwritten_without_force(tmp_path):
    trace = diffusion_trace().write(tmp_path / "t.json")
    assert run_cli("analyze", str(trace), "-q").returncode == 0
    again = run_cli("analyze", str(trace), "-q")
    assert again.returncode == 2 and "--force" in again.stderr
    assert run_cli("analyze", str(trace), "-q", "--force").returncode == 0


@pytest.mark.slow
def test_capture_rejects_impossible_settings_with_exit_2(tmp_path):
    for args, message in (
        (["--steps", "0"], "--steps"),
        (["--dtype", "fp8"], "unknown dtype"),
        (["--prompts-file", str(tmp_path / "none.txt")], "no such file"),
        (["--device", "cuda"], "no CUDA GPU"),
    ):
        done = run_cli("capture", "--out", str(tmp_path / "runs"), *args)
        assert done.returncode == 2, done.stderr
        assert message in done.stderr and "Traceback" not in done.stderr


@pytest.mark.slow
def test_unknown_option_is_a_usage_error():
    done = run_cli("analyze", "--no-such-option")
    assert done.returncode == 2 and "Traceback" not in done.stderr


@pytest.mark.slow
@pytest.mark.corpus
@pytest.mark.parametrize("path", corpus_traces(), ids=lambda p: p.name)
def test_analyze_every_corpus_trace(corpus, path, tmp_path):
    done = run_cli("analyze", str(path), "--out", str(tmp_path / "r.html"), "--json-out", str(tmp_path / "r.json"))
    assert done.returncode == 0, done.stderr
    assert "No profkit ranges" in done.stdout
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "no profkit ranges" in html


@pytest.mark.slow
def test_capture_end_to_end_through_the_cli(tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("# comment\na red bicycle\n\na blue boat\n")
    done = run_cli(
        "capture",
        "--model",
        "tiny-dit",
        "--steps",
        "2",
        "--warmup",
        "0",
        "--batch",
        "2",
        "--prompts-file",
        str(prompts),
        "--out",
        str(tmp_path / "runs"),
    )
    assert done.returncode == 0, done.stderr
    run = tmp_path / "runs" / "tiny-dit_fp32_2steps_64x64_b2"
    assert (run / "trace.json.gz").is_file() and (run / "metadata.json").is_file()
    assert len(list((run / "images").glob("*.png"))) == 2
    assert (run / f"{run.name}.report.html").is_file()  # named after the run, as nsys runs are
    assert "wrote   trace" in done.stdout
    assert "USDT" not in done.stderr and "profiler_start" not in done.stderr  # Kineto's chatter is dropped


# ---------------------------------------------------------------- in-process: errors, flags, progress, version


def _main(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    from profkit.cli import main

    monkeypatch.setattr(sys, "argv", ["profkit", *args])
    try:
        main()
        code = 0
    except SystemExit as done:
        code = done.code or 0
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_version(monkeypatch, capsys):
    from profkit import __version__

    code, out, _ = _main(monkeypatch, capsys, "--version")
    assert code == 0 and out.strip() == f"profkit {__version__}"


def test_library_errors_name_settings_and_the_cli_names_flags():
    error = SettingError("steps", "must be at least 1 (got 0)")
    assert str(error) == "steps must be at least 1 (got 0)" and error.setting == "steps"
    assert error_line(error) == "profkit: error: --steps must be at least 1 (got 0)"
    both = SettingError("height/width", "must be positive multiples of 8 (got 50x64)")
    assert error_line(both) == "profkit: error: --height/--width must be positive multiples of 8 (got 50x64)"
    budget = SettingError("time_budget_s", "must be positive (got -1)")
    assert error_line(budget) == "profkit: error: --time-budget must be positive (got -1)"
    assert error_line(ConflictingSettings("prompt", "prompts_file")).endswith(
        "give --prompt or --prompts-file, not both"
    )
    exists = OutputExists("runs/x")
    assert "--" not in str(exists) and "already exists" in str(exists)
    assert error_line(exists) == "profkit: error: runs/x already exists: pass --force to overwrite it, or choose --out"
    mismatch = SetupMismatch("refusing to compare runs from different setups", ["device.name: A vs B"])
    assert str(mismatch).startswith("refusing to compare runs from different setups (device.name: A vs B)")
    assert "--" not in str(mismatch) and error_line(mismatch).endswith("): pass --force to compare anyway")
    plain = ProfkitError("a path with {braces} stays as it is")
    assert error_line(plain) == "profkit: error: a path with {braces} stays as it is"
    assert flag_for("sample_hz") == "sample_hz"  # no flag sets it: the name is shown


def test_an_impossible_setting_is_one_line_with_its_flag(monkeypatch, capsys, tmp_path):
    code, _, err = _main(monkeypatch, capsys, "capture", "--steps", "0", "--out", str(tmp_path))
    assert code == EXIT_BAD_INPUT and err.strip() == "profkit: error: --steps must be at least 1 (got 0)"
    code, _, err = _main(monkeypatch, capsys, "bench", "--prompt", "a", "--prompts-file", str(tmp_path / "p.txt"))
    assert code == EXIT_BAD_INPUT and err.strip() == "profkit: error: give --prompt or --prompts-file, not both"
    code, _, err = _main(monkeypatch, capsys, "bench", "--batch", "1,x", "--out", str(tmp_path / "b"))
    assert code == EXIT_BAD_INPUT and "--batch takes integers separated by commas" in err
    assert not (tmp_path / "b").exists()


def _raised_settings_and_texts() -> tuple[set[str], list[tuple[str, str]]]:
    """Setting names given to the error types, and the string literals of every raise below cli/."""
    settings: set[str] = set()
    texts: list[tuple[str, str]] = []
    for path in (REPO / "profkit").rglob("*.py"):
        if "cli" in path.relative_to(REPO / "profkit").parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Raise) and node.exc is not None:
                for part in ast.walk(node.exc):
                    if isinstance(part, ast.Constant) and isinstance(part.value, str):
                        texts.append((f"{path.name}:{node.lineno}", part.value))
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") in {"SettingError", "ConflictingSettings"}:
                for arg in node.args[: 2 if node.func.id == "ConflictingSettings" else 1]:
                    if isinstance(arg, ast.Constant):
                        settings.update(arg.value.split("/"))
            if isinstance(node, ast.keyword) and node.arg in {"settings", "mentions"}:
                for part in ast.walk(node.value):
                    if isinstance(part, ast.Constant) and isinstance(part.value, str):
                        settings.add(part.value)
    return settings, texts


def test_no_error_text_below_the_cli_names_a_flag_and_every_setting_has_one():
    settings, texts = _raised_settings_and_texts()
    flag = re.compile("(?:" + "|".join(re.escape(f) for f in set(FLAGS.values())) + r")(?![\w-])")
    assert [(where, text) for where, text in texts if flag.search(text)] == []
    assert {"steps", "trials", "force", "out", "prompts_file", "nsys_path"} <= settings
    assert settings - set(FLAGS) <= {"sample_hz"}  # set in code only, no flag


def test_one_rich_progress_serves_capture_and_bench():
    from rich.console import Console
    from rich.progress import Progress

    from profkit.cli.progress import RichProgress

    with Progress(console=Console(file=io.StringIO())) as progress:
        display = RichProgress(progress)
        display.start("", 3)  # bench: one bar over every call
        display.advance("warm-up fp32 b1")
        display.advance("fp32 b1")
        display.start("tiny-sd_fp16", 2)  # capture: a bar per run, counting its steps
        display.phase("recording")
        display.advance()
        display.finish()
    bench_task, run_task = progress.tasks
    assert (bench_task.completed, bench_task.total, bench_task.description) == (2, 3, "done")
    assert (run_task.completed, run_task.total, run_task.fields["run"]) == (1, 2, "tiny-sd_fp16")
    assert run_task.description == "done"


def test_no_test_waits_on_a_fixed_sleep():
    """A test may sleep only as the poll interval of a loop waiting on a condition."""
    fixed = []
    for path in Path(__file__).resolve().parent.parent.rglob("test_*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        in_loop = {id(n) for loop in ast.walk(tree) if isinstance(loop, ast.While) for n in ast.walk(loop)}
        for node in ast.walk(tree):
            name = getattr(node, "func", None) and getattr(node.func, "attr", getattr(node.func, "id", ""))
            if isinstance(node, ast.Call) and name == "sleep" and id(node) not in in_loop:
                fixed.append(f"{path.name}:{node.lineno}")
    assert fixed == []


def test_capture_bench_and_serve_share_one_declaration_of_the_knob_flags() -> None:
    """Each knob flag, with its default, reaches the three commands' options and their bodies as one dict."""
    import inspect

    from profkit.cli import bench, capture, serve
    from profkit.cli.settings import KNOB_DEFAULTS, knob_options

    for command in (capture.capture, bench.bench_command, serve.serve_command):
        parameters = inspect.signature(command).parameters
        assert "knobs" not in parameters
        for name, default in KNOB_DEFAULTS.items():
            assert parameters[name].default == default
            option = parameters[name].annotation.__metadata__[0]  # typer keeps Option("--x")'s name in .default
            assert "--" + name.replace("_", "-") in (option.default, *(option.param_decls or ()))

    seen = {}

    @knob_options
    def command(size: int = 1, knobs: dict[str, str] | None = None, out: str = "x") -> None:
        seen.update(size=size, knobs=knobs, out=out)

    assert list(inspect.signature(command).parameters) == ["size", *KNOB_DEFAULTS, "out"]
    command(size=2, out="y", **{**KNOB_DEFAULTS, "compile": "off,default"})
    assert seen == {"size": 2, "out": "y", "knobs": {**KNOB_DEFAULTS, "compile": "off,default"}}


@pytest.mark.parametrize("args", [("serve", "--port", "0"), ("load", "--serve", "--port", "1814787")])
def test_a_port_out_of_range_is_refused_before_any_server_starts(args: tuple[str, ...]) -> None:
    done = run_cli(*args, timeout=60)
    assert done.returncode == 2 and "--port" in done.stderr and "serving" not in done.stdout


_FREEZE_PROBE = """
import atexit, gc, sys
atexit.register(lambda: print("frozen at exit:", gc.get_freeze_count() > 0))  # runs after main's own handler
sys.argv = ["profkit", "--version"]
from profkit.cli import main
main()
"""


def test_shutdown_skips_rescanning_the_objects_of_the_finished_command() -> None:
    import subprocess

    done = subprocess.run([sys.executable, "-c", _FREEZE_PROBE], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "frozen at exit: True"


def test_a_large_nsys_export_is_analyzed_in_detail_up_to_the_limit(monkeypatch, capsys, tmp_path):
    from tests.nsysbuilder import PER_CALL, nsys_calls

    export = nsys_calls(4).write(tmp_path / "calls.sqlite")
    html, summary = tmp_path / "r.html", tmp_path / "r.json"
    args = ("analyze", str(export), "--out", str(html), "--json-out", str(summary), "--force")
    code, out, _ = _main(monkeypatch, capsys, *args, "--detail-events", str(2 * PER_CALL))
    assert code == 0
    assert "Whole export (SQLite aggregates over every event)" in out and "first 2 of 4 pipeline calls" in out
    whole = json.loads(summary.read_text())["whole"]
    assert whole["window"]["limit"] == 2 * PER_CALL and whole["window"]["calls_total"] == 4
    assert 'id="whole-export"' in html.read_text()
    code, out, _ = _main(monkeypatch, capsys, *args, "--detail-events", "0")  # no limit: every event in detail
    assert code == 0 and "Whole export" not in out and json.loads(summary.read_text())["whole"] is None
    code, _, err = _main(monkeypatch, capsys, *args, "--detail-events", "-1")
    assert code == EXIT_BAD_INPUT
    assert err.strip() == "profkit: error: --detail-events must be 0 (no limit) or more (got -1)"


def test_a_run_builds_only_the_command_it_names() -> None:
    """typer builds every registered command on each run: a named command gets an app with that command alone,
    which parses and helps it as the whole app does; anything else gets the whole app."""
    import typer.main

    from profkit.cli import COMMANDS, app, app_for

    one = typer.main.get_command(app_for(["analyze", "trace.json", "-q"]))
    assert list(one.commands) == ["analyze"]
    whole = typer.main.get_command(app)
    assert list(whole.commands) == list(COMMANDS)
    assert [p.name for p in one.commands["analyze"].params] == [p.name for p in whole.commands["analyze"].params]
    for args in ([], ["--help"], ["--version"], ["anlyze"], ["-h", "analyze"]):
        assert app_for(args) is app
