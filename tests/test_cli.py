"""The CLI through a subprocess: help, exit codes and one-line errors."""

from __future__ import annotations

import gzip

import pytest

from tests.conftest import corpus_traces, run_cli
from tests.tracebuilder import diffusion_trace


@pytest.mark.parametrize("command", ["capture", "analyze", "compare", "bench", "check"])
def test_help_has_an_example(command):
    done = run_cli(command, "--help")
    assert done.returncode == 0
    assert "Example: profkit " + command in done.stdout


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


def test_bad_input_gives_one_line_and_exit_2(tmp_path):
    for kind, path in _bad_inputs(tmp_path).items():
        for args in (("analyze", str(path)), ("compare", str(path), str(path))):
            done = run_cli(*args, cwd=tmp_path)
            assert done.returncode == 2, (kind, args, done.stderr)
            assert "Traceback" not in done.stderr, (kind, done.stderr)
            lines = [line for line in done.stderr.splitlines() if line.strip()]
            assert len(lines) == 1 and lines[0].startswith("profkit: error:"), (kind, done.stderr)


def test_existing_report_is_not_overwritten_without_force(tmp_path):
    trace = diffusion_trace().write(tmp_path / "t.json")
    assert run_cli("analyze", str(trace), "-q").returncode == 0
    again = run_cli("analyze", str(trace), "-q")
    assert again.returncode == 2 and "--force" in again.stderr
    assert run_cli("analyze", str(trace), "-q", "--force").returncode == 0


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


def test_unknown_option_is_a_usage_error():
    done = run_cli("analyze", "--no-such-option")
    assert done.returncode == 2 and "Traceback" not in done.stderr


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
    assert (run / "trace.report.html").is_file()
    assert "wrote   trace" in done.stdout
