"""In-process servers for the serve tests: the real app on uvicorn in a thread, with a stand-in pipeline."""

from __future__ import annotations

import base64
import io
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from profkit.serve.app import create_app
from profkit.serve.requests import Generation
from profkit.serve.settings import ServeSettings
from profkit.serve.timing import BatchClock


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _png() -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 20, 30)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


class StubRunner:
    """A pipeline stand-in that walks profkit's ranges with short sleeps; ``gate`` holds every call while clear."""

    sync = None

    def __init__(self, step_s: float = 0.002) -> None:
        self.step_s = step_s
        self.gate = threading.Event()
        self.gate.set()
        self.warm = threading.Event()
        self.warm.set()
        self.batches: list[list[Generation]] = []
        self.calls_started = threading.Event()
        self.png = _png()

    def warm_up(self) -> None:
        assert self.warm.wait(10), "warm-up never released"

    def run(self, batch: list[Generation], clock: BatchClock) -> list[list[str]]:
        self.batches.append(batch)
        self.calls_started.set()
        assert self.gate.wait(10), "gate never released"
        time.sleep(self.step_s)  # preprocessing
        for name, seconds in (("profkit/text_encoder/text_encoder", self.step_s),):
            clock.on_range("profkit/pipeline", True)
            clock.on_range(name, True)
            time.sleep(seconds)
            clock.on_range(name, False)
        for step in range(batch[0].steps):
            name = f"profkit/denoise/step_{step:03d}"
            clock.on_range(name, True)
            clock.on_range(name + "/unet", True)
            time.sleep(self.step_s)
            clock.on_range(name + "/unet", False)
            clock.on_range(name, False)
        clock.on_range("profkit/vae/decode", True)
        time.sleep(self.step_s)
        clock.on_range("profkit/vae/decode", False)
        clock.on_range("profkit/pipeline", False)
        return [[self.png] * generation.n for generation in batch]


class Running:
    def __init__(self, app, runner: StubRunner, url: str, server) -> None:
        self.app, self.runner, self.url, self.server = app, runner, url, server

    @property
    def state(self):
        return self.app.state.serve


@contextmanager
def running_app(runner: StubRunner | None = None, wait_ready: bool = True, **settings) -> Iterator[Running]:
    """The app on 127.0.0.1:<free port> in a thread; stopped (gracefully) on exit."""
    import uvicorn

    runner = runner or StubRunner()
    port = free_port()
    app = create_app(ServeSettings(port=port, **settings).validate(), lambda s: runner)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.started
    running = Running(app, runner, f"http://127.0.0.1:{port}", server)
    if wait_ready:
        while not running.state.ready and time.monotonic() < deadline:
            time.sleep(0.01)
        assert running.state.ready
    try:
        yield running
    finally:
        runner.gate.set()
        runner.warm.set()
        server.should_exit = True
        thread.join(15)


@pytest.fixture
def stub() -> StubRunner:
    return StubRunner()
