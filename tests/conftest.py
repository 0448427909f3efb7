from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def corpus_dir() -> Path:
    return Path(os.environ.get("PROFKIT_CORPUS", REPO.parent / "shared" / "corpus")) / "kineto"


def corpus_traces() -> list[Path]:
    folder = corpus_dir()
    return sorted(folder.glob("*.json.gz")) if folder.is_dir() else []


@pytest.fixture(scope="session")
def corpus() -> Path:
    folder = corpus_dir()
    if not folder.is_dir() or not corpus_traces():
        message = f"real-trace corpus not found at {folder} (set PROFKIT_CORPUS)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return folder


def run_cli(*args: str, cwd: Path | None = None, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "profkit", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "200"},
    )


@pytest.fixture(scope="session")
def captured(tmp_path_factory: pytest.TempPathFactory):
    """One real capture of the built-in pipeline in fp32 and fp16 (3 steps), analyzed and compared."""
    from profkit.app.capture import capture_and_report
    from profkit.capture import CaptureSettings

    out = tmp_path_factory.mktemp("runs")
    settings = CaptureSettings(dtypes=("fp32", "fp16"), steps=3, warmup=1, out=out, seed=7, device="cpu")
    return settings, capture_and_report(settings)
