"""profkit load on Locust's distributed mode: one master child and worker processes (local children, or remote
workers started with ``profkit load --worker``) merge their exact samples; workers that never connect are one clear
error and leave no process behind. Every server is the stub of ``test_load``; every wait is bounded."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from profkit.errors import ProfkitError
from profkit.load.runner import LoadSettings, LoadWorkers, _spec, free_port, run_level
from profkit.model import load_document
from profkit.model.load import LoadTestResult
from tests.conftest import run_cli
from tests.load.test_load import Stub, stub_url  # noqa: F401  (the module-scoped stub server fixture)

pytestmark = pytest.mark.slow


def test_master_and_two_workers_merge_counts_closed_and_open(stub_url: str) -> None:  # noqa: F811
    settings = LoadSettings(url=stub_url, users=(2,), duration_s=1.5, max_requests=4, workers=2, connect_timeout_s=30)
    with LoadWorkers.of(settings) as pool:
        assert len(pool.workers) == 2 and pool.master is not None
        before = Stub.served
        raw = pool.level(_spec(settings, 2, None))
        assert raw["torch_imported"] is False  # neither the master nor a worker imported torch
        level = run_level(settings, users=2, pool=pool)
        assert sum(level.worker_requests.values()) == level.requests == 8 and len(level.worker_requests) == 2
        assert Stub.served - before == len(raw["samples"]) + level.requests == 16
        # open loop on the same master: each worker runs rate / 2 (8/s for 1 s on a constant schedule)
        before = Stub.served
        open_settings = LoadSettings(url=stub_url, mode="open", rates=(16.0,), arrivals="constant", duration_s=1.0,
                                     workers=2)  # fmt: skip
        opened = run_level(open_settings, rate=16.0, pool=pool)
        assert sorted(opened.worker_requests.values()) == [8, 8] and opened.requests == 16
        assert Stub.served - before == 16
    assert all(proc.poll() is not None for proc in (pool.master, *pool.workers))  # the master quit its workers


def test_workers_that_never_connect_are_killed_with_one_error(stub_url: str) -> None:  # noqa: F811
    never = [sys.executable, "-c", "import time; time.sleep(120)"]
    pool = LoadWorkers(local=2, bind=f"127.0.0.1:{free_port()}", expect=2, connect_timeout_s=1.5, worker_command=never)
    with pytest.raises(ProfkitError, match="only 0 of 2 load workers connected"), pool:
        pass
    assert pool.master is not None and len(pool.workers) == 2
    assert all(proc.poll() is not None for proc in (pool.master, *pool.workers))  # no orphans


def test_remote_workers_join_master_bind(tmp_path: Path, stub_url: str) -> None:  # noqa: F811
    bind = f"127.0.0.1:{free_port()}"
    cmd = [sys.executable, "-m", "profkit", "load", "--worker", "--master", bind, "--connect-timeout", "30"]
    workers = [subprocess.Popen(cmd, stderr=subprocess.PIPE) for _ in range(2)]
    try:
        result = run_cli("load", stub_url, "--master-bind", bind, "--expect-workers", "2", "--users", "2",
                         "--duration", "1", "--max-requests", "3", "--out", str(tmp_path / "r"))  # fmt: skip
        assert result.returncode == 0, result.stderr
        for proc in workers:  # the master's quit ends them
            assert proc.wait(timeout=20) == 0
    finally:
        for proc in workers:
            proc.kill()
    doc = load_document(tmp_path / "r" / "load.json")
    assert isinstance(doc, LoadTestResult) and doc.workers == 2
    assert sorted(doc.levels[0].worker_requests.values()) == [3, 3] and doc.levels[0].requests == 6


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--master-bind", "127.0.0.1:{port}", "--expect-workers", "1", "--connect-timeout", "1.5"],
         "only 0 of 1 load workers connected"),
        (["--worker", "--master", "127.0.0.1:{port}", "--connect-timeout", "1"], "no load master answered"),
        (["--master-bind", "nohostport", "--expect-workers", "1"], "--master-bind 'nohostport': expected HOST:PORT"),
        (["--expect-workers", "2"], "--expect-workers needs --master-bind"),
    ],
)  # fmt: skip
def test_distributed_errors_are_one_line(tmp_path: Path, stub_url: str, args: list[str], expected: str) -> None:  # noqa: F811
    port = str(free_port())
    result = run_cli("load", stub_url, *[a.replace("{port}", port) for a in args], "--out", str(tmp_path / "x"))
    assert result.returncode in (2, 3), result.stderr
    assert result.stderr.startswith("profkit: error:") and result.stderr.strip().count("\n") == 0, result.stderr
    assert expected in result.stderr
