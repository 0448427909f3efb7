"""``profkit serve`` as a real process with the built-in tiny-sd pipeline (32x32, 2 steps) on 127.0.0.1."""

from __future__ import annotations

import base64
import io
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import run_cli
from tests.serve.conftest import free_port
from tests.serve.timing_header import assert_phases_sum_to_total

GENERATIONS = "/v1/images/generations"


class ServeProcess:
    def __init__(self, process: subprocess.Popen, url: str) -> None:
        self.process, self.url = process, url
        self.sent: dict[int, int] = {}

    def post(self, body: dict | bytes, timeout: float = 60) -> httpx.Response:
        content = body if isinstance(body, bytes) else None
        answer = httpx.post(self.url + GENERATIONS, json=None if content else body, content=content, timeout=timeout)
        self.sent[answer.status_code] = self.sent.get(answer.status_code, 0) + 1
        return answer


@pytest.fixture(scope="module")
def served() -> Iterator[ServeProcess]:
    port = free_port()
    command = [sys.executable, "-m", "profkit", "serve", "--device", "cpu", "--steps", "2", "--height", "32"]
    command += ["--width", "32", "--max-side", "64", "--max-steps", "4", "--port", str(port), "--graceful", "30"]
    command += ["--scheduler", "EulerDiscreteScheduler", "--attention", "math"]  # capture's knobs serve too
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    try:
        while True:
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the server was not ready within 180 s"
            try:
                if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        yield ServeProcess(process, url)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


@pytest.mark.slow
def test_a_generation_returns_pngs_with_server_timing(served: ServeProcess) -> None:
    from PIL import Image

    answers = [served.post({"prompt": "a cat", "n": 2, "seed": 5}), served.post({"prompt": "a cat", "seed": 5})]
    assert [a.status_code for a in answers] == [200, 200]
    images = [base64.b64decode(item["b64_json"]) for a in answers for item in a.json()["data"]]
    assert len(images) == 3
    assert Image.open(io.BytesIO(images[0])).size == (32, 32)
    assert images[0] == images[2]  # same seed, same image
    for answer in answers:
        entries = assert_phases_sum_to_total(answer.headers["server-timing"])
        assert entries["text_encode"] > 0 and entries["denoise"] > 0 and entries["vae_decode"] > 0
    health = httpx.get(served.url + "/healthz", timeout=5).json()
    assert health["knobs"] == {"attention": "math", "scheduler": "EulerDiscreteScheduler"}
    assert (health["dtype"], health["device"], health["size"]) == ("fp32", "cpu", "32x32")
    wide = served.post({"prompt": "a dog", "size": "64x32", "steps": 3})
    assert Image.open(io.BytesIO(base64.b64decode(wide.json()["data"][0]["b64_json"]))).size == (64, 32)


@pytest.mark.slow
def test_bad_requests_get_4xx_and_metrics_count_every_request(served: ServeProcess) -> None:
    for body, status in [
        (b"{", 400),
        ({"n": 1}, 422),
        ({"prompt": "x", "size": "512x512"}, 422),
        ({"prompt": "x", "steps": 9}, 422),
    ]:
        assert served.post(body).status_code == status
    families = {f.name: f for f in text_string_to_metric_families(httpx.get(served.url + "/metrics", timeout=5).text)}
    counted = {
        int(s.labels["status"]): s.value
        for s in families["profkit_serve_requests"].samples
        if s.name.endswith("_total")
    }
    assert counted == served.sent
    phases = {
        s.labels["phase"]: s.value for s in families["profkit_serve_phase_seconds"].samples if s.name.endswith("_count")
    }
    assert phases["total"] == served.sent[200]


@pytest.mark.slow
def test_sigterm_finishes_the_accepted_request_and_exits_cleanly(served: ServeProcess) -> None:
    answers: list[httpx.Response] = []
    body = {"prompt": "last", "steps": 4, "size": "64x64", "n": 2}
    sender = threading.Thread(target=lambda: answers.append(served.post(body)))
    sender.start()
    deadline = time.monotonic() + 30
    while "profkit_serve_in_flight 1.0" not in httpx.get(served.url + "/metrics", timeout=5).text:
        assert time.monotonic() < deadline
        time.sleep(0.005)
    served.process.send_signal(signal.SIGTERM)
    sender.join(60)
    out, err = served.process.communicate(timeout=60)
    assert answers and answers[0].status_code == 200, err
    assert served.process.returncode == 0, err
    assert "stopped; generation requests answered by status:" in out


def test_bad_settings_are_one_error_line() -> None:
    done = run_cli("serve", "--steps", "0", timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip() == "profkit: error: --steps must be at least 1 (got 0)"


def test_one_configuration_per_server() -> None:
    done = run_cli("serve", "--attention", "math,flash", timeout=60)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "a server runs one configuration: give each of --compile, --attention, --scheduler" in done.stderr


@pytest.mark.slow
def test_a_knob_this_device_cannot_do_is_one_error_line() -> None:
    done = run_cli("serve", "--device", "cpu", "--attention", "efficient", "--port", str(free_port()), timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().startswith("profkit: error: --attention efficient needs a CUDA device")


def test_a_port_in_use_is_one_error_line() -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_cli("serve", "--port", str(port), "--device", "cpu", timeout=60)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().startswith(f"profkit: error: --port cannot listen on 127.0.0.1:{port}:")


@pytest.mark.slow
def test_a_pipeline_that_cannot_start_is_one_error_line() -> None:
    done = run_cli("serve", "--device", "cuda", "--port", str(free_port()), timeout=120)  # no GPU on this machine
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == (
        "profkit: error: --device cuda was asked for, but torch sees no CUDA GPU on this machine"
    )
