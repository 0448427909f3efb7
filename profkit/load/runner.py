"""Running a load test: worker children per level (Locust lives only there), the ramp or rate sweep, ``--serve``."""

from __future__ import annotations

import contextlib
import os
import queue
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import orjson

from profkit.errors import EXIT_RUN_FAILED, ProfkitError, SettingError
from profkit.load import summary
from profkit.model.load import LoadLevel, LoadTestResult

#: The OpenAI-shaped request ``profkit serve`` answers; used when no template file is given.
DEFAULT_BODY = {"prompt": "a photo of a cat", "n": 1, "size": "64x64", "steps": 2, "seed": 0}


@dataclass(frozen=True)
class LoadSettings:
    url: str
    mode: str = "closed"  # "closed" ramp of users | "open" sweep of arrival rates
    slo_ms: float | None = None
    users: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64)
    rates: tuple[float, ...] = ()
    arrivals: str = "poisson"  # or "constant"
    duration_s: float = 10.0
    max_requests: int = 100_000  # per level and worker: every loop is bounded in count as well as time
    max_error_rate: float = 0.05
    timeout_s: float = 30.0
    workers: int = 1  # local load processes; more than one runs Locust's master and that many worker children
    master_bind: str | None = None  # HOST:PORT the master listens on for workers of other machines
    expect_workers: int = 0  # remote workers to wait for (with master_bind)
    connect_timeout_s: float = 30.0  # how long the master waits for its workers
    template: dict[str, Any] = field(default_factory=dict)


def load_template(path: Path | None) -> dict[str, Any]:
    """The request a user sends: ``{"method", "headers", "body", "images"}`` from a JSON file, or the default."""
    if path is None:
        return {"method": "POST", "headers": {"Content-Type": "application/json"}, "body": DEFAULT_BODY}
    from profkit.jsonio import read_bytes

    try:
        data = orjson.loads(read_bytes(Path(path), "request template"))
    except (OSError, orjson.JSONDecodeError) as error:
        raise SettingError("template", f"{path}: cannot read it as JSON ({error})") from error
    if not isinstance(data, dict) or not set(data) <= {"method", "headers", "body", "images"}:
        raise SettingError("template", f"{path}: expected an object with method, headers, body, images")
    return data


def check_url(url: str, timeout_s: float = 3.0) -> None:
    """A URL that is http(s) with a host and answers a TCP connect; anything else is one clear error (exit 2)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingError("url", f"{url!r} is not an http(s) address with a host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as error:
        raise SettingError("url", f"{url!r}: {error}") from error
    try:
        socket.create_connection((parts.hostname, port), timeout=timeout_s).close()
    except OSError as error:
        raise SettingError("url", f"{url}: endpoint unreachable ({error.strerror or error})") from error


def _spec(settings: LoadSettings, users: int | None, rate: float | None) -> dict[str, Any]:
    template = settings.template or load_template(None)
    body = template.get("body")
    images = template.get("images", body.get("n", 1) if isinstance(body, dict) else 1)
    return {
        "url": settings.url,
        "method": template.get("method", "POST"),
        "headers": template.get("headers", {}),
        "body": orjson.dumps(body).decode() if isinstance(body, (dict, list)) else body,
        "images": images,
        "mode": settings.mode,
        "users": users,
        "rate": rate,
        "arrivals": settings.arrivals,
        "duration_s": settings.duration_s,
        "max_requests": settings.max_requests,
        "timeout_s": settings.timeout_s,
    }


def host_port(text: str, setting: str) -> str:
    """``HOST:PORT`` checked (port 1-65535, a host); one clear error otherwise."""
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise SettingError(setting, f"{text!r}: expected HOST:PORT")
    return text


def distributed(settings: LoadSettings) -> bool:
    return settings.workers > 1 or settings.master_bind is not None


def run_level(
    settings: LoadSettings, users: int | None = None, rate: float | None = None, pool: LoadWorkers | None = None
) -> LoadLevel:
    """One level: on Locust's master and workers (``pool``, or one started for this level) when distributed, else
    on one local child."""
    if distributed(settings):
        if pool is None:
            with LoadWorkers.of(settings) as own:
                return run_level(settings, users, rate, own)
        result = pool.level(_spec(settings, users, rate))
        level = summary.level_from_samples(result["samples"], result["elapsed_s"], users, rate)
        return msgspec.structs.replace(level, worker_requests=result["workers"])
    with tempfile.TemporaryDirectory(prefix="profkit-load-") as tmp:
        path = Path(tmp) / "spec.json"
        path.write_bytes(orjson.dumps(_spec(settings, users, rate)))
        cmd = [sys.executable, "-m", "profkit.load.worker", str(path)]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=os.environ.copy())
        try:
            out, err = proc.communicate(timeout=settings.duration_s + settings.timeout_s + 60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise ProfkitError("load worker did not finish in time", EXIT_RUN_FAILED) from None
    if proc.returncode != 0:
        last = (err.decode(errors="replace").strip().splitlines() or ["no output"])[-1]
        raise ProfkitError(f"load worker failed (exit {proc.returncode}): {last}", EXIT_RUN_FAILED)
    result = orjson.loads(out)
    elapsed = max(settings.duration_s, result["elapsed_s"]) if settings.mode == "closed" else settings.duration_s
    return summary.level_from_samples(result["samples"], elapsed, users, rate)


def run_load(
    settings: LoadSettings, on_level: Callable[[LoadLevel], None] | None = None
) -> tuple[list[LoadLevel], str]:
    """The closed-loop ramp (stops on SLO, errors or plateau) or the open-loop rate sweep (stops on SLO/errors)."""
    levels: list[LoadLevel] = []
    steps: list[tuple[int | None, float | None]] = (
        [(u, None) for u in settings.users] if settings.mode == "closed" else [(None, r) for r in settings.rates]
    )
    reason = "all levels run"
    with LoadWorkers.of(settings) if distributed(settings) else contextlib.nullcontext() as pool:
        for users, rate in steps:
            levels.append(run_level(settings, users, rate, pool))
            if on_level:
                on_level(levels[-1])
            why = summary.stop_reason(levels, settings.slo_ms, settings.max_error_rate)
            if why and (settings.mode == "closed" or not why.startswith("throughput")):
                reason = why
                break
    return levels, reason


def result_of(
    settings: LoadSettings, levels: list[LoadLevel], reason: str, price: tuple[str, float, str] | None
) -> LoadTestResult:
    from profkit.capture.environment import _version, cpu_name, environment

    best = summary.goodput(levels, settings.slo_ms, settings.max_error_rate)
    env = {**environment(), "locust": _version("locust"), "cpu": cpu_name(), "cpu_count": os.cpu_count()}
    return LoadTestResult(
        url=settings.url,
        mode=settings.mode,
        slo_ms=settings.slo_ms,
        levels=tuple(levels),
        stop_reason=reason,
        knee_index=summary.knee(levels),
        goodput_rps=best.rps if best else None,
        goodput_images_per_s=best.images_per_s if best else None,
        price_per_hour=price[1] if price else None,
        price_source=price[0] if price else None,
        cost_per_image=summary.cost_per_image(best.images_per_s if best else None, price[1] if price else None),
        workers=total_workers(settings),
        environment=env,
    )


class ServedEndpoint:
    """``python -m profkit serve ARGS`` as a child: started, waited for on ``/healthz`` (bounded), then stopped."""

    def __init__(self, args: list[str], host: str, port: int, ready_timeout_s: float, command: list[str] | None = None):
        self.base = f"http://{host}:{port}"
        self.command = command or [sys.executable, "-m", "profkit", "serve", "--host", host, "--port", str(port), *args]
        self.ready_timeout_s = ready_timeout_s
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in __exit__

    def __enter__(self) -> ServedEndpoint:
        self.proc = subprocess.Popen(self.command, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.ready_timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.log.seek(0)
                tail = (self.log.read().decode(errors="replace").strip().splitlines() or ["no output"])[-1]
                raise ProfkitError(
                    f"the server exited (code {self.proc.returncode}) before ready: {tail}", EXIT_RUN_FAILED
                )
            try:
                with urllib.request.urlopen(f"{self.base}/healthz", timeout=2) as response:
                    if response.status == 200:
                        return self
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.2)
        self.__exit__(None, None, None)
        raise ProfkitError(
            f"the server was not ready on {self.base}/healthz within {self.ready_timeout_s:g} s", EXIT_RUN_FAILED
        )

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # graceful: finishes accepted requests
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    def metrics(self) -> str:
        try:
            with urllib.request.urlopen(f"{self.base}/metrics", timeout=5) as response:
                return response.read().decode(errors="replace")
        except (OSError, urllib.error.URLError):
            return ""


def total_workers(settings: LoadSettings) -> int:
    local = settings.workers if settings.workers > 1 or settings.master_bind is None else 0
    return local + (settings.expect_workers if settings.master_bind is not None else 0)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


class LoadWorkers:
    """Locust's distributed mode for a whole run: the master child (``profkit.load.distributed master``) and the
    local worker children; remote workers (``profkit load --worker``) may join the master too. Every wait is
    bounded; on any failure every child is killed and one :class:`ProfkitError` says why."""

    def __init__(
        self, local: int, bind: str, expect: int, connect_timeout_s: float, worker_command: list[str] | None = None
    ):
        self.bind, self.expect, self.connect_timeout_s = bind, expect, connect_timeout_s
        self.local = local
        self.worker_command = worker_command or [
            sys.executable, "-m", "profkit.load.distributed", "worker", bind, str(connect_timeout_s),
        ]  # fmt: skip
        self.master: subprocess.Popen[bytes] | None = None
        self.workers: list[subprocess.Popen[bytes]] = []
        self.lines: queue.Queue[bytes] = queue.Queue()
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in __exit__

    @classmethod
    def of(cls, settings: LoadSettings) -> LoadWorkers:
        local = total_workers(settings) - (settings.expect_workers if settings.master_bind is not None else 0)
        bind = settings.master_bind or f"127.0.0.1:{free_port()}"
        return cls(local, bind, total_workers(settings), settings.connect_timeout_s)

    def _read(self) -> None:
        assert self.master is not None and self.master.stdout is not None
        for line in self.master.stdout:
            self.lines.put(line)
        self.lines.put(b"")

    def _next(self, limit_s: float) -> dict[str, Any]:
        try:
            line = self.lines.get(timeout=limit_s)
        except queue.Empty:
            raise ProfkitError(f"the load master did not answer within {limit_s:g} s", EXIT_RUN_FAILED) from None
        if not line:
            self.log.seek(0)
            tail = (self.log.read().decode(errors="replace").strip().splitlines() or ["no output"])[-1]
            raise ProfkitError(f"the load master exited: {tail}", EXIT_RUN_FAILED)
        answer = orjson.loads(line)
        if "error" in answer:
            raise ProfkitError(answer["error"], EXIT_RUN_FAILED)
        return answer

    def __enter__(self) -> LoadWorkers:
        cmd = [sys.executable, "-m", "profkit.load.distributed", "master", self.bind, str(self.expect),
               str(self.connect_timeout_s)]  # fmt: skip
        self.master = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log)
        threading.Thread(target=self._read, daemon=True).start()
        try:
            self.workers = [
                subprocess.Popen(self.worker_command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                for _ in range(self.local)
            ]
            self._next(self.connect_timeout_s + 30.0)
        except BaseException:
            self.__exit__(ProfkitError, None, None)
            raise
        return self

    def level(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Run one level on the master; its merged samples, window and per-worker request counts."""
        assert self.master is not None and self.master.stdin is not None
        try:
            self.master.stdin.write(orjson.dumps(spec) + b"\n")
            self.master.stdin.flush()
        except OSError:
            pass  # the master is gone: _next says why
        return self._next(float(spec["duration_s"]) + float(spec["timeout_s"]) + 90.0)

    def __exit__(self, failed: object, *exc: object) -> None:
        """Quit the master (which quits its workers), then wait for every child, bounded; on a failure kill them."""
        if self.master is not None and self.master.stdin is not None:
            with contextlib.suppress(OSError):
                self.master.stdin.write(b'{"quit": true}\n')
                self.master.stdin.close()
        for proc in [p for p in (self.master, *self.workers) if p is not None]:
            try:
                proc.wait(timeout=0.5 if failed else 10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.log.close()
