"""Workflow traps (issue 15 point 5): outputs named after what makes them unique, every existing-output check
before any work, a capture folder's reports kept rather than refused, outputs never in a read-only input folder,
files with the user's umask."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from profkit import jsonio
from profkit.app.analyze import analyze_path
from profkit.app.capture import capture_and_report, comparison_paths
from profkit.app.compare import compare_name, compare_paths
from profkit.capture import CaptureSettings
from profkit.capture.run import run_folder
from profkit.errors import OutputExists
from tests.conftest import REPO, run_cli

FP32 = REPO / "traces" / "tiny-sd_fp32_4steps_64x64_b1"
FP16 = REPO / "traces" / "tiny-sd_fp16_4steps_64x64_b1"


# ---------------------------------------------------------------- names


@pytest.mark.slow
def test_capture_reports_and_comparisons_are_named_after_the_runs(captured) -> None:
    settings, outputs = captured
    for run, report in zip(outputs.runs, outputs.reports, strict=True):
        assert report.html == run.folder / f"{run.folder.name}.report.html" and report.html.is_file()
        assert report.json == run.folder / f"{run.folder.name}.summary.json" and report.json.is_file()
        assert not (run.folder / "trace.report.html").exists()
    (comparison,) = outputs.comparisons
    assert comparison.html == settings.out / "compare_tiny-sd_fp32_vs_fp16_3steps_64x64_b1.html"
    assert comparison.json == settings.out / "compare_tiny-sd_fp32_vs_fp16_3steps_64x64_b1.json"
    assert [comparison.html, comparison.json] == list(comparison_paths(settings)[0])


def test_comparison_names_keep_the_model_and_settings_and_say_what_differs() -> None:
    assert compare_name("tiny-sd_fp32_10steps_64x64_b1", "tiny-sd_bf16_10steps_64x64_b1") == (
        "compare_tiny-sd_fp32_vs_bf16_10steps_64x64_b1"
    )
    assert compare_name("sd15_fp16_30steps_512x512_b1", "sd15_fp16_30steps_512x512_b1_compile-default") == (
        "compare_sd15_fp16_30steps_512x512_b1_vs_compile-default"
    )
    assert (
        compare_name("m_fp32_10steps_64x64_b1", "m_bf16_20steps_64x64_b1")
        == "compare_m_fp32_10steps_vs_bf16_20steps_64x64_b1"
    )
    # two models' `--dtype fp32,bf16` captures into one folder never collide
    sd, dit = (
        CaptureSettings(model=m, dtypes=("fp32", "bf16"), steps=2, out=Path("runs")) for m in ("tiny-sd", "tiny-dit")
    )
    assert comparison_paths(sd) != comparison_paths(dit)
    assert comparison_paths(dit)[0][0].name == "compare_tiny-dit_fp32_vs_bf16_2steps_64x64_b1.html"


# ---------------------------------------------------------------- checks before any work


def test_an_existing_comparison_is_refused_before_anything_is_captured(tmp_path: Path) -> None:
    settings = CaptureSettings(dtypes=("fp32", "bf16"), steps=2, height=32, width=32, out=tmp_path, device="cpu")
    html, _ = comparison_paths(settings)[0]
    html.write_text("another capture's comparison")
    with pytest.raises(OutputExists, match=r"compare_tiny-sd_fp32_vs_bf16_2steps_32x32_b1\.html already exists"):
        capture_and_report(settings)
    assert sorted(p.name for p in tmp_path.iterdir()) == [html.name]  # no run folder was made
    assert not run_folder(settings.variants()[0][1], "fp32").exists()


# ---------------------------------------------------------------- where outputs go


def test_compare_writes_beside_two_runs_of_one_folder_else_in_the_current_folder(tmp_path: Path, monkeypatch) -> None:
    runs, work = tmp_path / "runs", tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    a, b = (shutil.copytree(run, runs / run.name) for run in (FP32, FP16))
    together = compare_paths(a, b)
    assert together.html == runs / "compare_tiny-sd_fp32_vs_fp16_4steps_64x64_b1.html" and not together.notes
    apart = compare_paths(a, FP16)  # different folders: the current one
    assert apart.html == work / together.html.name and not apart.notes


@pytest.fixture
def read_only_runs(tmp_path: Path) -> Iterator[Path]:
    """Two capture folders in a read-only bind mount (a shared corpus); skipped where mounting is not allowed."""
    source, mount = tmp_path / "source", tmp_path / "shared"
    for run in (FP32, FP16):
        shutil.copytree(run, source / run.name)
    mount.mkdir()
    done = subprocess.run(["mount", "--bind", "-o", "ro", str(source), str(mount)], capture_output=True, text=True)
    if done.returncode != 0 or jsonio.writable(mount):
        subprocess.run(["umount", str(mount)], capture_output=True, check=False)
        pytest.skip(f"cannot make a read-only mount here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_outputs_of_a_read_only_folder_go_to_the_current_folder_saying_so(
    read_only_runs: Path, tmp_path: Path, monkeypatch
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    run = read_only_runs / FP32.name
    outputs = analyze_path(run, write_json_summary=True)
    assert outputs.html == work / f"{FP32.name}.report.html" and outputs.html.is_file()
    assert outputs.json == work / f"{FP32.name}.summary.json" and outputs.json.is_file()
    assert outputs.notes == [f"{run} is not writable: writing the reports to the current folder ({work})"]
    again = analyze_path(run, write_json_summary=True, keep_existing=True)  # found where they went
    assert again.kept == (outputs.html, outputs.json) and again.result is not None
    comparison = compare_paths(run, read_only_runs / FP16.name)
    assert comparison.html == work / "compare_tiny-sd_fp32_vs_fp16_4steps_64x64_b1.html"
    note = f"{read_only_runs} is not writable: writing the comparison to the current folder ({work})"
    assert comparison.notes == [note]


@pytest.mark.slow
def test_analyze_cli_on_a_read_only_folder(read_only_runs: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    done = run_cli("analyze", str(read_only_runs / FP32.name), "-q", cwd=work, timeout=120)
    assert done.returncode == 0, done.stderr
    note = f"note: {read_only_runs / FP32.name} is not writable: writing the reports to the current folder ({work})"
    assert note in done.stdout
    assert (work / f"{FP32.name}.report.html").is_file()


# ---------------------------------------------------------------- umask, and analyze after capture


def test_files_made_by_other_programs_lose_what_the_umask_withholds(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(jsonio, "_UMASK", 0o027)
    made, folder = tmp_path / "report.nsys-rep", tmp_path / "folder"
    made.write_bytes(b"x")
    folder.mkdir()
    for path, mode in ((made, 0o666), (folder, 0o777)):
        path.chmod(mode)
        jsonio.restrict_to_umask(path)
    assert stat.S_IMODE(made.stat().st_mode) == 0o640 and stat.S_IMODE(folder.stat().st_mode) == 0o750
    written = jsonio.write_bytes(tmp_path / "out.json", b"{}")
    assert stat.S_IMODE(written.stat().st_mode) == 0o640


@pytest.fixture(scope="module")
def captured_with_umask(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One small capture run as a subprocess under umask 077; its run folder."""
    out = tmp_path_factory.mktemp("umask") / "runs"
    command = [sys.executable, "-m", "profkit", "capture", "--steps", "2", "--height", "32", "--width", "32"]
    done = subprocess.run(
        [*command, "--warmup", "0", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=lambda: os.umask(0o077),
        env={**os.environ, "COLUMNS": "200"},
    )
    assert done.returncode == 0, done.stderr
    (run,) = out.iterdir()
    return run


@pytest.mark.slow
def test_capture_files_have_the_users_umask(captured_with_umask: Path) -> None:
    paths = [captured_with_umask.parent, *captured_with_umask.parent.rglob("*")]
    assert len(paths) >= 6  # folder, trace, metadata, image(s), report, summary
    loose = {str(p): oct(stat.S_IMODE(p.stat().st_mode)) for p in paths if stat.S_IMODE(p.stat().st_mode) & 0o077}
    assert not loose


@pytest.mark.slow
def test_analyze_after_capture_names_the_reports_and_keeps_them(captured_with_umask: Path) -> None:
    run = captured_with_umask
    report, summary = run / f"{run.name}.report.html", run / f"{run.name}.summary.json"
    before = report.stat().st_mtime_ns
    for target in (run, run / "trace.json.gz"):
        done = run_cli("analyze", str(target), "--json", timeout=120)
        assert done.returncode == 0, done.stderr
        assert f"HTML report already there: {report} (--force to analyze again)" in done.stdout
        assert f"JSON summary already there: {summary}" in done.stdout
        assert "profkit analyze: tiny-sd fp32" in done.stdout  # the terminal summary, from the stored analysis
    assert report.stat().st_mtime_ns == before
    forced = run_cli("analyze", str(run), "--force", "-q", timeout=120)
    assert forced.returncode == 0 and f"wrote HTML report: {report}" in forced.stdout, forced.stderr
    assert report.stat().st_mtime_ns != before
    elsewhere = run_cli("analyze", str(run), "--out", str(report), timeout=120)  # a path named: refused as before
    assert elsewhere.returncode == 2 and "already exists" in elsewhere.stderr


@pytest.mark.slow
def test_a_run_that_could_not_load_its_pipeline_leaves_no_folder_to_refuse(tmp_path: Path) -> None:
    from profkit.app.capture import run_capture
    from profkit.errors import ProfkitError

    settings = CaptureSettings(model=str(tmp_path / "not-a-pipeline"), steps=2, out=tmp_path / "runs", device="cpu")
    (tmp_path / "not-a-pipeline").mkdir()
    for _ in range(2):  # the second try fails the same way, not with "holds a run that failed"
        with pytest.raises(ProfkitError, match="is not a diffusers pipeline folder"):
            run_capture(settings)
        assert list((tmp_path / "runs").iterdir()) == []
