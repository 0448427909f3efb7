"""Hostile outputs: names taken from data, outputs that are inputs, unwritable targets, full disks and races.

The table :data:`CASES` lists each case: what is built, the command, the exit code and the start of the first
stderr line. Every row runs in-process through the CLI's ``main`` (fast); the rows marked ``cli=True`` also run
as a ``python -m profkit`` subprocess (``slow``) to prove the one-line contract end to end.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from profkit.errors import EXIT_BAD_INPUT, OutputExists, ProfkitError
from profkit.jsonio import write_bytes
from profkit.naming import safe_component
from tests.benchbuilder import bench_result
from tests.conftest import REPO, run_cli

FP32 = REPO / "traces" / "tiny-sd_fp32_4steps_64x64_b1"
FP16 = REPO / "traces" / "tiny-sd_fp16_4steps_64x64_b1"
TIME_LIMIT_S = 60

# ---------------------------------------------------------------- builders


def capture_folder(tmp: Path, name: str, source: Path = FP32, **metadata: object) -> Path:
    """A copy of a real capture folder, its metadata.json fields replaced by ``metadata``."""
    folder = tmp / name
    shutil.copytree(source, folder)
    path = folder / "metadata.json"
    data = orjson.loads(path.read_bytes())
    for key, value in metadata.items():
        if key.startswith("files."):
            data["files"][key.split(".", 1)[1]] = value
        else:
            data[key] = value
    path.write_bytes(orjson.dumps(data))
    return folder


def bench_files(tmp: Path) -> tuple[Path, Path]:
    result = bench_result().write(tmp / "new" / "bench.json")
    baseline = bench_result().write(tmp / "old" / "bench.json")
    return result, baseline


def _trace(tmp: Path) -> Path:
    return Path(shutil.copy(FP32 / "trace.json.gz", tmp / "trace.json.gz"))


def b_escape(tmp: Path) -> list[str]:
    a = capture_folder(tmp, "a", dtype="x/../../../escaped")
    return ["compare", str(a), str(FP16), "--json"]


def b_long_dtype(tmp: Path) -> list[str]:
    return ["compare", str(capture_folder(tmp, "a", dtype="d" * 300)), str(FP16)]


def b_trace_outside(tmp: Path) -> list[str]:
    (tmp / "victim").mkdir()
    shutil.copy(FP32 / "trace.json.gz", tmp / "victim" / "trace.json.gz")
    return ["analyze", str(capture_folder(tmp, "run", **{"files.trace": "../victim/trace.json.gz"}))]


def b_trace_absolute(tmp: Path) -> list[str]:
    victim = _trace(tmp)
    return ["analyze", str(capture_folder(tmp, "run", **{"files.trace": str(victim)}))]


def b_images_outside(tmp: Path) -> list[str]:
    return ["analyze", str(capture_folder(tmp, "run", **{"files.images": ["../../etc/passwd"]}))]


def b_nsys_report_outside(tmp: Path) -> list[str]:
    return ["analyze", str(capture_folder(tmp, "run", **{"files.nsys_report": "/tmp/x.nsys-rep"}))]


def b_out_is_input(tmp: Path) -> list[str]:
    trace = _trace(tmp)
    return ["analyze", str(trace), "--out", str(trace), "--force"]


def b_json_out_is_input(tmp: Path) -> list[str]:
    trace = _trace(tmp)
    return ["analyze", str(trace), "--json-out", str(trace), "--force"]


def b_out_hard_link(tmp: Path) -> list[str]:
    trace = _trace(tmp)
    os.link(trace, tmp / "report.html")
    return ["analyze", str(trace), "--out", str(tmp / "report.html"), "--force"]


def b_out_symlink(tmp: Path) -> list[str]:
    trace = _trace(tmp)
    (tmp / "report.html").symlink_to(trace)
    return ["analyze", str(trace), "--out", str(tmp / "report.html"), "--force"]


def b_out_dotted(tmp: Path) -> list[str]:
    trace = _trace(tmp)
    (tmp / "sub").mkdir()
    return ["analyze", str(trace), "--out", str(tmp / "sub" / ".." / "trace.json.gz"), "--force"]


def b_out_is_metadata(tmp: Path) -> list[str]:
    run = capture_folder(tmp, "run")
    return ["analyze", str(run), "--out", str(run / "metadata.json"), "--force"]


def b_two_outputs_one_file(tmp: Path) -> list[str]:
    return ["analyze", str(_trace(tmp)), "--out", str(tmp / "r.html"), "--json-out", str(tmp / "r.html")]


def b_compare_out_is_b(tmp: Path) -> list[str]:
    b = capture_folder(tmp, "b", FP16)
    return ["compare", str(FP32), str(b), "--out", str(b / "trace.json.gz"), "--force"]


def b_compare_json_out_is_a(tmp: Path) -> list[str]:
    a = capture_folder(tmp, "a")
    return ["compare", str(a), str(FP16), "--json-out", str(a / "metadata.json"), "--force"]


def b_check_out_is_baseline(tmp: Path) -> list[str]:
    result, baseline = bench_files(tmp)
    return ["check", str(result), "--baseline", str(baseline), "--out", str(baseline), "--force"]


def b_check_out_is_result(tmp: Path) -> list[str]:
    result, baseline = bench_files(tmp)
    return ["check", str(result), "--baseline", str(baseline), "--out", str(result), "--force"]


def b_bench_out_holds_baseline(tmp: Path) -> list[str]:
    _, baseline = bench_files(tmp)
    return ["bench", "--device", "cpu", "--baseline", str(baseline), "--out", str(baseline.parent), "--force"]


def b_bench_out_holds_prompts(tmp: Path) -> list[str]:
    (tmp / "out").mkdir()
    (tmp / "out" / "trials.csv").write_text("a prompt\n")
    return ["bench", "--device", "cpu", "--prompts-file", str(tmp / "out" / "trials.csv"), "--out", str(tmp / "out")]


def b_capture_folder_holds_prompts(tmp: Path) -> list[str]:
    run = tmp / "runs" / "tiny-sd_fp32_1steps_64x64_b1"
    run.mkdir(parents=True)
    (run / "prompts.txt").write_text("a prompt\n")
    prompts = str(run / "prompts.txt")
    return [
        "capture",
        "--device",
        "cpu",
        "--steps",
        "1",
        "--prompts-file",
        prompts,
        "--out",
        str(tmp / "runs"),
        "--force",
    ]


def b_out_under_a_file(tmp: Path) -> list[str]:
    (tmp / "file").write_text("not a folder")
    return ["analyze", str(_trace(tmp)), "--out", str(tmp / "file" / "sub" / "report.html")]


def b_out_in_proc(tmp: Path) -> list[str]:
    return ["analyze", str(_trace(tmp)), "--out", "/proc/profkit-report.html"]


def b_out_is_a_folder(tmp: Path) -> list[str]:
    (tmp / "folder.html").mkdir()
    return ["analyze", str(_trace(tmp)), "--out", str(tmp / "folder.html"), "--force"]


def b_compare_unwritable(tmp: Path) -> list[str]:
    (tmp / "file").write_text("not a folder")
    return ["compare", str(FP32), str(FP16), "--out", str(tmp / "file" / "c.html")]


def b_check_unwritable(tmp: Path) -> list[str]:
    result, baseline = bench_files(tmp)
    return ["check", str(result), "--baseline", str(baseline), "--out", "/proc/profkit-check.html"]


def b_exists_no_invite(tmp: Path) -> list[str]:
    trace = _trace(tmp)
    return ["analyze", str(trace), "--out", str(trace)]


Build = Callable[[Path], list[str]]
ERR = "profkit: error: "


def case(build: Build, code: int, first_line: str | None, cli: bool = False) -> object:
    """A row: builder, exit code, start of the first stderr line (``None``: no error line), also as a subprocess."""
    return pytest.param(build, code, first_line, cli, id=build.__name__[2:])


CASES = [
    # names taken from data become one safe path component
    case(b_escape, 0, None, cli=True),
    case(b_long_dtype, 0, None),
    # files named in metadata stay inside their folder
    case(b_trace_outside, 2, ERR + "{tmp}/run/metadata.json: files is '../victim/trace.json.gz'", cli=True),
    case(b_trace_absolute, 2, ERR + "{tmp}/run/metadata.json: files is '{tmp}/trace.json.gz'"),
    case(b_images_outside, 2, ERR + "{tmp}/run/metadata.json: files is '../../etc/passwd'"),
    case(b_nsys_report_outside, 2, ERR + "{tmp}/run/metadata.json: files is '/tmp/x.nsys-rep'"),
    # an output never replaces an input or another output, force or not
    case(b_out_is_input, 2, ERR + "{tmp}/trace.json.gz is an input ({tmp}/trace.json.gz)", cli=True),
    case(b_json_out_is_input, 2, ERR + "{tmp}/trace.json.gz is an input"),
    case(b_out_hard_link, 2, ERR + "{tmp}/report.html is an input ({tmp}/trace.json.gz)"),
    case(b_out_symlink, 2, ERR + "{tmp}/report.html is an input ({tmp}/trace.json.gz)"),
    case(b_out_dotted, 2, ERR + "{tmp}/sub/../trace.json.gz is an input"),
    case(b_out_is_metadata, 2, ERR + "{tmp}/run/metadata.json is an input"),
    case(b_two_outputs_one_file, 2, ERR + "{tmp}/r.html is another output of this run"),
    case(b_compare_out_is_b, 2, ERR + "{tmp}/b/trace.json.gz is an input", cli=True),
    case(b_compare_json_out_is_a, 2, ERR + "{tmp}/a/metadata.json is an input"),
    case(b_check_out_is_baseline, 2, ERR + "{tmp}/old/bench.json is an input", cli=True),
    case(b_check_out_is_result, 2, ERR + "{tmp}/new/bench.json is an input"),
    case(b_bench_out_holds_baseline, 2, ERR + "{tmp}/old/bench.json is an input"),
    case(b_bench_out_holds_prompts, 2, ERR + "{tmp}/out/trials.csv is an input"),
    case(b_capture_folder_holds_prompts, 2, ERR + "{tmp}/runs/tiny-sd_fp32_1steps_64x64_b1/prompts.txt is an input"),
    # unwritable targets: one line, nothing left behind
    case(b_out_under_a_file, 2, ERR + "cannot write {tmp}/file/sub/report.html: Not a directory", cli=True),
    case(b_out_in_proc, 2, ERR + "cannot write /proc/profkit-report.html: "),
    case(b_out_is_a_folder, 2, ERR + "{tmp}/folder.html: is a directory"),
    case(b_compare_unwritable, 2, ERR + "cannot write {tmp}/file/c.html: Not a directory"),
    case(b_check_unwritable, 2, ERR + "cannot write /proc/profkit-check.html: ", cli=True),
    # refusing to overwrite an input does not invite --force
    case(b_exists_no_invite, 2, ERR + "{tmp}/trace.json.gz is an input"),
]


def _main_in_process(args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    from profkit.cli import main

    monkeypatch.setattr(sys, "argv", ["profkit", *args])
    try:
        main()
        code = 0
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _check(tmp: Path, code: int, first_line: str | None, got: int, out: str, err: str) -> None:
    assert "Traceback" not in err, err
    assert got == code, err
    errors = [line for line in err.splitlines() if line.startswith("profkit: error:")]
    if first_line is None:
        assert not errors, err
    else:
        assert len(errors) == 1, err
        assert err.splitlines()[0].startswith(first_line.format(tmp=tmp)), err
        assert "--force" not in errors[0] or "already exists" in errors[0], err


def _nothing_outside(tmp: Path, before: set[Path]) -> None:
    """No new file beside the test folder (where an escaping name would land)."""
    assert set(tmp.parent.iterdir()) == before


@pytest.mark.parametrize(("build", "code", "first_line", "cli"), CASES)
def test_hostile_output_case_in_process(
    build: Build, code: int, first_line: str | None, cli: bool, tmp_path: Path, monkeypatch, capsys
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    args = build(tmp_path)
    before = set(tmp_path.parent.iterdir())
    started = time.monotonic()
    got, out, err = _main_in_process(args, monkeypatch, capsys)
    assert time.monotonic() - started < TIME_LIMIT_S
    _check(tmp_path, code, first_line, got, out, err)
    _nothing_outside(tmp_path, before)
    assert not list(tmp_path.rglob("*.tmp")), "a temporary file was left behind"
    if code == 0:  # the comparison was written in the working folder, under one safe name
        written = sorted(p.name for p in work.iterdir())
        assert written and all(name.startswith("compare_") and len(name) < 200 for name in written), written


@pytest.mark.slow
@pytest.mark.parametrize(("build", "code", "first_line", "cli"), [c for c in CASES if c.values[3]])
def test_hostile_output_case_as_a_subprocess(build: Build, code: int, first_line: str | None, cli: bool, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    args = build(tmp_path)
    before = set(tmp_path.parent.iterdir())
    done = run_cli(*args, cwd=work, timeout=TIME_LIMIT_S)
    _check(tmp_path, code, first_line, done.returncode, done.stdout, done.stderr)
    _nothing_outside(tmp_path, before)


def test_inputs_survive_the_refusals(tmp_path: Path, monkeypatch, capsys) -> None:
    for build in (b_out_is_input, b_out_hard_link, b_out_symlink, b_json_out_is_input):
        folder = tmp_path / build.__name__
        folder.mkdir()
        args = build(folder)
        _main_in_process(args, monkeypatch, capsys)
        assert (folder / "trace.json.gz").read_bytes() == (FP32 / "trace.json.gz").read_bytes()


def test_escaping_dtype_lands_in_the_working_folder(tmp_path: Path, monkeypatch) -> None:
    from profkit.app.compare import compare_paths

    work = tmp_path / "deep" / "work"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    a = capture_folder(tmp_path, "a", dtype="x/../../../escaped")
    outputs = compare_paths(a, FP16, write_json_summary=True)
    assert outputs.html.parent == work and outputs.json.parent == work
    assert outputs.html.name == "compare_tiny-sd_x-.-.-.-escaped_vs_fp16_4steps_64x64_b1.html"
    assert not list(tmp_path.rglob("escaped*"))


# ---------------------------------------------------------------- safe path components


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=400), st.integers(min_value=1, max_value=200))
def test_safe_component_is_always_one_harmless_component(text: str, max_len: int) -> None:
    name = safe_component(text, max_len)
    assert name and len(name) <= max_len
    assert "/" not in name and "\\" not in name and "\0" not in name
    assert name not in (".", "..") and not name.startswith((".", "-"))
    assert Path(name).name == name and Path("base", name).parent == Path("base")
    assert name.isascii() and name.isprintable() and "[" not in name


def test_safe_component_keeps_ordinary_names_and_keeps_long_ones_distinct() -> None:
    assert safe_component("tiny-sd_fp32_10steps_64x64_b1") == "tiny-sd_fp32_10steps_64x64_b1"
    assert safe_component("../..") == "run" and safe_component("runs[exp1]") == "runs-exp1"
    long_a, long_b = safe_component("a" * 300 + "1", 60), safe_component("a" * 300 + "2", 60)
    assert len(long_a) == 60 and long_a != long_b


def test_bench_and_capture_folder_names_are_safe(tmp_path: Path) -> None:
    from profkit.app.bench import default_out_dir
    from profkit.capture.run import run_folder
    from profkit.capture.settings import CaptureSettings
    from profkit.model.bench import BenchSettings

    model = "../../" + "m" * 300 + "/[bold]x[/]"
    out = default_out_dir(BenchSettings(model=model))
    assert out.parent == Path("bench") and len(out.name) <= 120 and ".." not in out.name
    settings = CaptureSettings(model=model, out=tmp_path)
    assert run_folder(settings, "fp32").parent == tmp_path


# ---------------------------------------------------------------- atomic writes


def test_a_failed_write_leaves_nothing_and_is_one_error(tmp_path: Path, monkeypatch) -> None:
    """A full disk (ENOSPC from the low-level write): no target, no temporary file; a rerun then works."""
    import profkit.jsonio as jsonio

    real_fdopen = os.fdopen

    class Full:
        def __init__(self, fd: int, mode: str) -> None:
            self.file = real_fdopen(fd, mode)

        def __enter__(self):
            return self

        def __exit__(self, *exc: object) -> None:
            self.file.close()

        def write(self, data: bytes) -> int:
            self.file.write(data[: len(data) // 2])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(jsonio.os, "fdopen", Full)
    target = tmp_path / "report.html"
    with pytest.raises(ProfkitError, match=r"cannot write .*report.html: No space left on device") as raised:
        write_bytes(target, b"x" * 10_000, force=False)
    assert raised.value.exit_code == EXIT_BAD_INPUT
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    write_bytes(target, b"x" * 10_000, force=False)
    assert target.read_bytes() == b"x" * 10_000 and list(tmp_path.iterdir()) == [target]


def test_a_full_tmpfs_leaves_nothing_behind(tmp_path: Path) -> None:
    """The real thing where mounting is allowed: a 64 KiB tmpfs filled by a 1 MiB report."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode(errors='replace').strip()}")
    try:
        with pytest.raises(ProfkitError, match="No space left on device"):
            write_bytes(mount / "report.html", b"x" * (1 << 20), force=False)
        assert list(mount.iterdir()) == []
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_analyze_refuses_a_report_that_appeared_while_it_worked(tmp_path: Path, monkeypatch) -> None:
    import profkit.app.analyze as analyze

    trace = _trace(tmp_path)
    report = tmp_path / "trace.report.html"
    real = analyze.analyze_input

    def slow_analysis(source, tables=None, detail_events=None):
        result = real(source, tables, detail_events)
        report.write_text("another run's report")  # a concurrent run wrote it meanwhile
        return result

    monkeypatch.setattr(analyze, "analyze_input", slow_analysis)
    with pytest.raises(OutputExists):
        analyze.analyze_path(trace)
    assert report.read_text() == "another run's report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["trace.json.gz", "trace.report.html"]


def test_two_writers_racing_for_one_target_one_wins(tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    for _ in range(20):
        if target.exists():
            target.unlink()
        barrier = threading.Barrier(4)
        outcomes: dict[int, str] = {}

        def write(index: int, barrier: threading.Barrier, outcomes: dict[int, str]) -> None:
            barrier.wait()
            try:
                write_bytes(target, str(index).encode() * 50_000, force=False)
                outcomes[index] = "wrote"
            except OutputExists:
                outcomes[index] = "refused"

        threads = [threading.Thread(target=write, args=(i, barrier, outcomes)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        winners = [i for i, outcome in outcomes.items() if outcome == "wrote"]
        assert len(winners) == 1 and len(outcomes) == 4
        assert target.read_bytes() == str(winners[0]).encode() * 50_000
        assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


def test_two_processes_racing_for_one_report(tmp_path: Path) -> None:
    """Two processes write the same target through the low-level writer: one wrote, one refused."""
    script = (
        "import sys, time; from pathlib import Path; from profkit.jsonio import write_bytes\n"
        "from profkit.errors import OutputExists\n"
        "time.sleep(max(0.0, float(sys.argv[2]) - time.time()))\n"
        "try:\n    write_bytes(Path(sys.argv[1]), sys.argv[3].encode() * 100000, force=False); print('wrote')\n"
        "except OutputExists:\n    print('refused')\n"
    )
    target = tmp_path / "report.html"
    start = str(time.time() + 1.0)
    procs = [
        subprocess.Popen([sys.executable, "-c", script, str(target), start, tag], stdout=subprocess.PIPE, text=True)
        for tag in "ab"
    ]
    said = sorted(proc.communicate(timeout=TIME_LIMIT_S)[0].strip() for proc in procs)
    assert said == ["refused", "wrote"]
    assert target.read_bytes() in (b"a" * 100000, b"b" * 100000)
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


def test_force_replaces_atomically_and_keeps_permissions_usual(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    target.write_text("old")
    write_bytes(target, b"new", force=True)
    assert target.read_bytes() == b"new" and list(tmp_path.iterdir()) == [target]
    assert target.stat().st_mode & 0o777 == 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# ---------------------------------------------------------------- a metadata.json that is missing or not ours

NOT_OURS = "metadata.json in {folder} is not a profkit capture file: ignored, settings not checked"


@pytest.mark.parametrize(
    ("content", "note"),
    [
        pytest.param(b"[1, 2]", NOT_OURS, id="array"),
        pytest.param(b'"text"', NOT_OURS, id="string"),
        pytest.param(b"42", NOT_OURS, id="number"),
        pytest.param(b'{"tool": "other"}', NOT_OURS, id="foreign-object"),
        pytest.param(None, "{folder} has no metadata.json: run settings not checked", id="missing"),
        pytest.param("dir", NOT_OURS, id="a-folder"),
    ],
)
def test_an_ignored_metadata_json_is_said_in_analysis_and_comparison(
    content: bytes | str | None, note: str, tmp_path: Path, monkeypatch, capsys
) -> None:
    folder = capture_folder(tmp_path, "run")
    (folder / "metadata.json").unlink()
    if content == "dir":
        (folder / "metadata.json").mkdir()
    elif content is not None:
        (folder / "metadata.json").write_bytes(content)
    expected = note.format(folder=folder)
    code, out, err = _main_in_process(
        ["analyze", str(folder), "--json-out", str(tmp_path / "s.json"), "--no-html"], monkeypatch, capsys
    )
    assert code == 0 and "Traceback" not in err, err
    assert expected in " ".join(out.split())  # the terminal wraps long lines
    assert expected in orjson.loads((tmp_path / "s.json").read_bytes())["notes"]
    code, out, err = _main_in_process(
        ["compare", str(folder), str(FP16), "--out", str(tmp_path / "c.html"), "--json-out", str(tmp_path / "c.json")],
        monkeypatch,
        capsys,
    )
    assert code == 0 and "Traceback" not in err, err
    assert expected in orjson.loads((tmp_path / "c.json").read_bytes())["notes"]
    assert expected.replace("'", "&#39;") in (tmp_path / "c.html").read_text()


def test_a_trace_beside_a_foreign_metadata_json_gets_the_note(tmp_path: Path) -> None:
    from profkit.app.inputs import analyze_input, resolve_input

    folder = capture_folder(tmp_path, "run")
    (folder / "metadata.json").write_bytes(b"[]")
    result = analyze_input(resolve_input(folder / "trace.json.gz"))
    assert NOT_OURS.format(folder=folder) in result.notes
    # a trace with no metadata.json beside it is an ordinary trace file: nothing to say
    plain = _trace(tmp_path)
    assert not [n for n in analyze_input(resolve_input(plain)).notes if "metadata.json" in n]
