"""Locust's distributed mode: one master child and worker processes (local children or other client machines).

``python -m profkit.load.distributed master HOST:PORT WORKERS CONNECT_S`` binds a Locust ``MasterRunner``, waits
(bounded) for WORKERS workers and then runs levels: it reads one level spec per line on stdin and writes one JSON
line per level on stdout (``{"samples", "elapsed_s", "workers": {name: requests}}`` or ``{"error"}``).
Closed loop: the master sends the spec to every worker (custom message ``profkit_level``), starts the users, which
Locust spreads over the workers, stops them after the level, and asks each worker for its exact samples
(``profkit_collect`` -> ``profkit_samples``). Open loop: each worker runs the arrival schedule at rate / WORKERS.

``python -m profkit.load.distributed worker HOST:PORT CONNECT_S`` runs a ``WorkerRunner`` until its master quits
(or is silent for a while). Neither role imports torch.
"""

from __future__ import annotations

# ruff: noqa: I001  (Locust patches the standard library with gevent on import: it must come first)
import locust.runners
from locust.env import Environment

import math
import os
import socket
import sys
import time
from typing import Any

import gevent
import orjson
from gevent.fileobject import FileObjectPosix

from profkit.load.worker import LEVEL, LoadUser, begin_level, open_loop

#: Seconds a worker waits without heartbeats from its master before it quits.
MASTER_SILENT_S = 15
#: Seconds, beyond the level's own bound, that the master waits for every worker's samples.
COLLECT_S = 15.0


def _emit(data: dict[str, Any]) -> None:
    sys.stdout.buffer.write(orjson.dumps(data) + b"\n")
    sys.stdout.flush()


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host or "127.0.0.1", int(port)


def _worker_ids(runner: Any) -> list[str]:
    return sorted(node.id for node in runner.clients.all if node.state != locust.runners.STATE_MISSING)


def _wait(condition: Any, limit_s: float) -> bool:
    end = time.monotonic() + limit_s
    while not condition() and time.monotonic() < end:
        gevent.sleep(0.02)
    return bool(condition())


def master_level(runner: Any, spec: dict[str, Any], received: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Run one level over the connected workers and merge their samples."""
    received.clear()
    ids = _worker_ids(runner)
    started, elapsed = time.perf_counter(), 0.0
    if spec.get("mode") == "open":
        share = float(spec["rate"]) / len(ids)
        for index, node in enumerate(ids):
            runner.send_message("profkit_level", {**spec, "rate": share, "seed": index}, client_id=node)
        limit = float(spec["duration_s"]) + float(spec["timeout_s"]) + COLLECT_S
    else:
        runner.send_message("profkit_level", spec)
        runner.start(int(spec["users"]), spawn_rate=max(int(spec["users"]), 1))
        gevent.sleep(float(spec["duration_s"]))
        elapsed = time.perf_counter() - started  # the window; stopping the users takes Locust up to a second more
        runner.stop()
        runner.send_message("profkit_collect", None)
        limit = COLLECT_S
    if not _wait(lambda: set(ids) <= set(received), limit):
        missing = len(set(ids) - set(received))
        return {"error": f"{missing} of {len(ids)} load workers sent no samples within {limit:g} s"}
    if spec.get("mode") == "open":
        elapsed = float(spec["duration_s"])
    parts = [received[node] for node in ids]
    return {
        "samples": [sample for part in parts for sample in part["samples"]],
        "elapsed_s": elapsed,
        "workers": {part["name"]: len(part["samples"]) for part in parts},
        "torch_imported": "torch" in sys.modules or any(part["torch_imported"] for part in parts),
    }


def run_master(bind: str, expect: int, connect_s: float) -> int:
    host, port = _address(bind)
    env = Environment(user_classes=[LoadUser])
    try:
        runner = env.create_master_runner(master_bind_host=host, master_bind_port=port)
    except Exception as error:  # zmq's bind failure (address in use, bad host)
        _emit({"error": f"cannot listen on {bind} for load workers ({error})"})
        return 1
    received: dict[str, dict[str, Any]] = {}
    runner.register_message("profkit_samples", lambda environment, msg, **kw: received.update({msg.node_id: msg.data}))
    if not _wait(lambda: runner.worker_count >= expect, connect_s):
        got = runner.worker_count
        _emit({"error": f"only {got} of {expect} load workers connected to {bind} within {connect_s:g} s"})
        runner.quit()
        return 1
    _emit({"ready": True, "workers": runner.worker_count})
    stdin = FileObjectPosix(sys.stdin.fileno(), "rb", close=False)  # cooperative: heartbeats go on while we wait
    for line in iter(stdin.readline, b""):
        spec = orjson.loads(line)
        if spec.get("quit"):
            break
        _emit(master_level(runner, spec, received))
    runner.quit()
    return 0


def run_worker(master: str, connect_s: float) -> int:
    host, port = _address(master)
    locust.runners.CONNECT_TIMEOUT = min(5.0, connect_s)  # each try waits this long for the master's ack
    locust.runners.CONNECT_RETRY_COUNT = max(0, math.ceil(connect_s / locust.runners.CONNECT_TIMEOUT) - 1)
    locust.runners.MASTER_HEARTBEAT_TIMEOUT = MASTER_SILENT_S
    env = Environment(user_classes=[LoadUser])
    name = f"{socket.gethostname()}:{os.getpid()}"
    try:
        runner = env.create_worker_runner(master_host=host, master_port=port)
    except ConnectionError:
        print(f"no load master answered on {master} within {connect_s:g} s", file=sys.stderr)
        return 1

    def reply() -> None:
        samples = LEVEL["samples"]
        LEVEL["samples"] = []  # a request still in flight lands in no level
        data = {"name": name, "samples": samples, "torch_imported": "torch" in sys.modules}
        runner.send_message("profkit_samples", data)

    def on_level(environment: Any, msg: Any, **kwargs: Any) -> None:
        samples = begin_level(msg.data)
        if msg.data.get("mode") == "open":
            open_loop(msg.data, LEVEL["t0"], samples)
            LEVEL["samples"] = samples
            reply()

    runner.register_message("profkit_level", on_level, concurrent=True)
    runner.register_message("profkit_collect", lambda environment, msg, **kwargs: reply())
    runner.greenlet.join()
    return 0


def main(argv: list[str]) -> int:
    if len(argv) == 5 and argv[1] == "master":
        return run_master(argv[2], int(argv[3]), float(argv[4]))
    if len(argv) == 4 and argv[1] == "worker":
        return run_worker(argv[2], float(argv[3]))
    print("usage: python -m profkit.load.distributed master HOST:PORT WORKERS CONNECT_S | worker HOST:PORT CONNECT_S",
          file=sys.stderr)  # fmt: skip
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
