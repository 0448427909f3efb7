"""The load-generating child process: Locust's runner drives the users; every request's latency is kept exactly.

Run as ``python -m profkit.load.worker SPEC.json``; writes one JSON object (``{"samples": [...]}``) on stdout.
A sample is ``[sent_s, latency_ms, status, error_kind, images, server_timing]``: ``sent_s`` is the (intended,
for open loop) send time from the start, and the latency of an open-loop request counts from its intended send
time, so a saturated server cannot hide its queue (no coordinated omission). This module imports no torch.
"""

from __future__ import annotations

# ruff: noqa: I001  (Locust patches the standard library with gevent on import: it must come first)
from locust import User, constant, task
from locust.env import Environment

import http.client
import random
import sys
import time
import urllib.parse

import gevent
import gevent.pool
import orjson

from profkit.load.timing import parse_server_timing

Sample = list


class Client:
    """One request as the spec describes it (method, URL, headers, body), on a keep-alive connection per user."""

    def __init__(self, spec: dict) -> None:
        url = urllib.parse.urlsplit(spec["url"])
        self.https = url.scheme == "https"
        self.host, self.port = url.hostname or "127.0.0.1", url.port or (443 if self.https else 80)
        self.path = (url.path or "/") + (f"?{url.query}" if url.query else "")
        self.method = spec.get("method", "POST")
        self.body = spec.get("body", "").encode() if spec.get("body") is not None else None
        self.headers = dict(spec.get("headers", {}))
        self.images = int(spec.get("images", 1))
        self.timeout = float(spec.get("timeout_s", 30.0))
        self.conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self.conn is None:
            cls = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
            self.conn = cls(self.host, self.port, timeout=self.timeout)
        return self.conn

    def send(self, started: float) -> tuple[float, int, str, int, dict[str, float]]:
        """(latency ms from ``started``, status, error kind or "", images, server phases)."""
        try:
            conn = self._connection()
            conn.request(self.method, self.path, body=self.body, headers=self.headers)
            response = conn.getresponse()
            response.read()
            status, timing = response.status, parse_server_timing(response.getheader("Server-Timing"))
            error = "" if status < 400 else f"http {status}"
        except TimeoutError:
            status, timing, error = 0, {}, "timeout"
        except (OSError, http.client.HTTPException) as failure:
            status, timing, error = 0, {}, f"connection: {type(failure).__name__}"
        if error and self.conn is not None:
            self.conn.close()
            self.conn = None
        latency = (time.perf_counter() - started) * 1000.0
        return latency, status, error, (self.images if not error else 0), timing


class LoadUser(User):
    """One Locust user of the current level (``LEVEL``): sends its next request as soon as the last is answered."""

    wait_time = constant(0)

    def on_start(self) -> None:
        self.client_ = Client(LEVEL["spec"])

    @task
    def request(self) -> None:
        spec, samples = LEVEL["spec"], LEVEL["samples"]
        if len(samples) >= spec["max_requests"]:
            gevent.sleep(0.05)
            return
        started = time.perf_counter()
        latency, status, error, images, timing = self.client_.send(started)
        samples.append([started - LEVEL["t0"], latency, status, error, images, timing])


#: The level this process runs now: its spec, start time and samples (a worker's is replaced per level).
LEVEL: dict = {"spec": {}, "t0": 0.0, "samples": []}


def begin_level(spec: dict) -> list[Sample]:
    LEVEL.update(spec=spec, t0=time.perf_counter(), samples=[])
    return LEVEL["samples"]


def closed_loop(spec: dict, t0: float, samples: list[Sample]) -> None:
    """``users`` Locust users on a local runner."""
    LEVEL.update(spec=spec, t0=t0, samples=samples)
    env = Environment(user_classes=[LoadUser])
    runner = env.create_local_runner()
    runner.start(spec["users"], spawn_rate=max(spec["users"], 1))
    gevent.sleep(spec["duration_s"])
    runner.quit()


def open_loop(spec: dict, t0: float, samples: list[Sample]) -> None:
    """Arrivals at ``rate`` per second (Poisson or constant); latency counts from each intended send time."""
    rate, poisson = float(spec["rate"]), spec.get("arrivals", "poisson") == "poisson"
    pool = gevent.pool.Pool(int(spec.get("max_in_flight", 1000)))
    clients: list[Client] = []
    rng = random.Random(spec.get("seed", 0))

    def one(intended: float) -> None:
        client = clients.pop() if clients else Client(spec)
        latency, status, error, images, timing = client.send(intended)
        samples.append([intended - t0, latency, status, error, images, timing])
        clients.append(client)

    due, sent = t0, 0
    while due - t0 < spec["duration_s"] and sent < spec["max_requests"]:
        gevent.sleep(max(0.0, due - time.perf_counter()))
        pool.spawn(one, due)  # blocks while max_in_flight are out; the latency still counts from ``due``
        sent += 1
        due += rng.expovariate(rate) if poisson else 1.0 / rate
    pool.join(timeout=float(spec.get("timeout_s", 30.0)) + 1.0)


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        with open(argv[1], "rb") as file:
            spec = orjson.loads(file.read())
    else:
        spec = orjson.loads(sys.stdin.buffer.read())
    samples: list[Sample] = []
    t0 = time.perf_counter()
    (open_loop if spec.get("mode") == "open" else closed_loop)(spec, t0, samples)
    elapsed = time.perf_counter() - t0
    out = {"samples": samples, "elapsed_s": elapsed, "torch_imported": "torch" in sys.modules}
    sys.stdout.buffer.write(orjson.dumps(out) + b"\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
