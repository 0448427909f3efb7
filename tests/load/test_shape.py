"""profkit load --shape: the user's Locust LoadTestShape drives users over time; one level per stage; bad shape
files and raising ticks are one error line. Stub servers on 127.0.0.1; every run bounded in count and time."""

from __future__ import annotations

import http.server
import itertools
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from profkit.errors import SettingError
from profkit.load.runner import LoadSettings, run_load
from profkit.load.shape import shape_levels
from profkit.model import load_document
from profkit.model.load import LoadTestResult
from tests.conftest import run_cli
from tests.load.stubs import serve_stub

STEPS = """
from locust import LoadTestShape


class Steps(LoadTestShape):
    stages = [(1.5, 1), (3.0, 2), (4.5, 4)]

    def tick(self):
        run_time = self.get_run_time()
        for end, users in self.stages:
            if run_time < end:
                return users, 100
        return None
"""

FOREVER = """
from locust import LoadTestShape


class Forever(LoadTestShape):
    def tick(self):
        return 1, 10
"""

BAD = {
    "none": ("x = 1\n", "no LoadTestShape subclass"),
    "syntax": ("def tick(:\n", "syntax error at line 1"),
    "raises": (
        "from locust import LoadTestShape\nclass Boom(LoadTestShape):\n"
        "    def tick(self):\n        raise ValueError('no')\n",
        "Boom.tick() raised ValueError: no",
    ),
    "nonsense": (
        "from locust import LoadTestShape\nclass Odd(LoadTestShape):\n    def tick(self):\n        return 'many'\n",
        "expected (users, spawn_rate) or None",
    ),
}


class Counting(http.server.BaseHTTPRequestHandler):
    served = 0

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        threading.Event().wait(0.01)  # service time
        type(self).served += 1
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def counting_url() -> Iterator[str]:
    yield from serve_stub(Counting, threaded=True)


def test_shape_levels_split_samples_by_stage_window() -> None:
    samples = [[t, 10.0, 200, "", 1, {}, u] for t, u in [(0.1, 1), (0.9, 1), (1.2, 2), (1.9, 2), (2.5, 4), (3.2, 4)]]
    levels = shape_levels(samples, [[0.0, 1], [1.0, 2], [2.0, 4]], 3.0)
    assert [lvl.users for lvl in levels] == [1, 2, 4]
    assert [lvl.requests for lvl in levels] == [2, 2, 2]  # the last stage keeps the request sent at its edge
    assert [lvl.window_s for lvl in levels] == [(0.0, 1.0), (1.0, 2.0), (2.0, 3.0)]
    assert levels[0].rps == pytest.approx(2.0)


@pytest.mark.slow
def test_step_shape_gives_three_levels_that_sum_to_served(tmp_path: Path, counting_url: str) -> None:
    (tmp_path / "steps.py").write_text(STEPS)
    before = Counting.served
    settings = LoadSettings(url=counting_url, duration_s=30.0, max_requests=5000, shape=str(tmp_path / "steps.py"))
    info: dict = {}
    levels, reason = run_load(settings, info=info)
    assert [lvl.users for lvl in levels] == [1, 2, 4]
    assert sum(lvl.requests for lvl in levels) == Counting.served - before
    assert all(lvl.ok == lvl.requests > 0 for lvl in levels)
    assert levels[0].window_s[0] == pytest.approx(0.0, abs=0.2)
    assert all(a.window_s[1] == b.window_s[0] for a, b in itertools.pairwise(levels))
    assert "finished" in reason
    assert info["shape"] == {"class": "Steps", "file": str(tmp_path / "steps.py")}


@pytest.mark.slow
def test_shape_that_never_stops_is_stopped_at_the_limit_and_recorded(tmp_path: Path, counting_url: str) -> None:
    (tmp_path / "forever.py").write_text(FOREVER)
    out = tmp_path / "run"
    result = run_cli("load", counting_url, "--shape", str(tmp_path / "forever.py"), "--duration", "1.5", "--out",
                     str(out))  # fmt: skip
    assert result.returncode == 0, result.stderr
    doc = load_document(out / "load.json")
    assert isinstance(doc, LoadTestResult) and doc.mode == "shape"
    assert doc.shape["class"] == "Forever" and doc.shape["file"].endswith("forever.py")
    assert "time limit" in doc.stop_reason and [lvl.users for lvl in doc.levels] == [1]
    assert "time limit" in result.stdout and "Forever" in (out / "load.html").read_text()


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_shape_file_is_one_error_line(tmp_path: Path, counting_url: str, case: str) -> None:
    text, expected = BAD[case]
    (tmp_path / "shape.py").write_text(text)
    settings = LoadSettings(url=counting_url, duration_s=5.0, shape=str(tmp_path / "shape.py"))
    with pytest.raises(SettingError) as error:
        run_load(settings)
    assert expected in str(error.value) and "\n" not in str(error.value)


@pytest.mark.slow
def test_cli_bad_shape_and_refused_combination_exit_2(tmp_path: Path, counting_url: str) -> None:
    (tmp_path / "shape.py").write_text(BAD["syntax"][0])
    for extra, expected in (([], "syntax error at line 1"), (["--workers", "2"], "drop --workers")):
        result = run_cli("load", counting_url, "--shape", str(tmp_path / "shape.py"), *extra, "--out",
                         str(tmp_path / "x"))  # fmt: skip
        assert result.returncode == 2
        assert result.stderr.startswith("profkit: error: --shape") and result.stderr.strip().count("\n") == 0
        assert expected in result.stderr
