"""profkit load: stop rule, knee, goodput, open-loop latency from intended send time, merged workers, --serve,
bad endpoints, baseline gate. Every server is a small stub on 127.0.0.1; every run is bounded in count and time."""

from __future__ import annotations

import http.server
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import msgspec
import orjson
import pytest

from profkit.load import summary
from profkit.load.runner import LoadSettings, ServedEndpoint, run_level, run_load
from profkit.load.timing import parse_server_timing
from profkit.model import load_document
from profkit.model.bench import MetricStats
from profkit.model.load import LoadLevel, LoadTestResult
from tests.conftest import run_cli
from tests.load.stubs import serve_stub

SERVICE_S = 0.02

STUB = """
import http.server, sys, time
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.send_header("Content-Length", "2"); self.end_headers(); self.wfile.write(b"ok")
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


class Stub(http.server.BaseHTTPRequestHandler):
    """One request at a time (HTTPServer is single-threaded): service time grows with concurrency."""

    served = 0

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        threading.Event().wait(SERVICE_S)  # the stub's service time (not a wait on a condition)
        type(self).served += 1
        body = b"{}"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Server-Timing", f"denoise;dur={SERVICE_S * 1000:.1f}, total;dur={SERVICE_S * 1000 + 0.5:.1f}")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def stub_url() -> Iterator[str]:
    yield from serve_stub(Stub)  # one request at a time: service time grows with concurrency


def _level(rps: float, p50: float, p95: float, errors: float = 0.0) -> LoadLevel:
    stats = MetricStats(count=100, mean=p50, std=1, cv=0.1, min=1, p50=p50, p90=p95, p95=p95, p99=p95, max=p95,
                        median_ci=None)  # fmt: skip
    return LoadLevel(users=1, duration_s=1, requests=100, ok=100, rps=rps, images_per_s=rps, error_rate=errors,
                     latency=stats)  # fmt: skip


def test_server_timing_header_parses() -> None:
    assert parse_server_timing('queue;dur=1.5, denoise;desc="x";dur=20, bad;dur=x, total;dur=22') == {
        "queue": 1.5,
        "denoise": 20.0,
        "total": 22.0,
    }
    assert parse_server_timing(None) == {}


def test_stop_rule_knee_goodput_cost() -> None:
    levels = [_level(10, 100, 120), _level(19, 105, 130), _level(19.5, 200, 260)]
    assert summary.stop_reason(levels, None, 0.05).startswith("throughput plateau")
    assert "SLO" in summary.stop_reason(levels, 250, 0.05)
    assert "error rate" in summary.stop_reason([_level(10, 1, 1, errors=0.5)], None, 0.05)
    assert summary.knee(levels) == 1
    best = summary.goodput(levels, 200, 0.05)
    assert best is levels[1]
    assert summary.cost_per_image(best.images_per_s, 3.6) == pytest.approx(3.6 / 3600 / 19)


@pytest.mark.slow
def test_ramp_finds_knee_on_single_worker_stub(stub_url: str) -> None:
    settings = LoadSettings(url=stub_url, users=(1, 2, 4, 8), duration_s=1.0, max_requests=200)
    levels, reason = run_load(settings)
    assert reason.startswith("throughput plateau") or "SLO" in reason
    assert len(levels) < 4 or reason
    capacity = 1 / SERVICE_S
    assert all(level.rps <= capacity * 1.05 for level in levels)
    assert levels[-1].latency.p50 > levels[0].latency.p50  # queueing in front of the one worker
    assert summary.knee(levels) is not None
    assert levels[0].server_phases_ms["denoise"] == pytest.approx(SERVICE_S * 1000)
    assert levels[0].outside_server_ms is not None and levels[0].outside_server_ms >= 0


@pytest.mark.slow
def test_open_loop_latency_from_intended_send_time_exceeds_service(stub_url: str) -> None:
    # 3x the stub's capacity: requests queue; latency from the intended send time shows it
    settings = LoadSettings(url=stub_url, mode="open", rates=(150.0,), arrivals="constant", duration_s=1.0)
    level = run_level(settings, rate=150.0)
    assert level.requests >= 100
    assert level.latency.p50 > 5 * SERVICE_S * 1000
    assert level.latency.max > 0.3 * 1000  # the last arrivals waited for most of the backlog


@pytest.mark.slow
def test_two_workers_merge_their_counts(stub_url: str) -> None:
    before = Stub.served
    settings = LoadSettings(url=stub_url, users=(2,), duration_s=1.5, max_requests=5, workers=2)
    level = run_level(settings, users=2)
    assert level.requests == 10 and level.ok == 10  # 5 from each worker process
    assert Stub.served - before == 10
    # Locust's master spread the two users over its two worker processes; each reported its own count
    assert sorted(level.worker_requests.values()) == [5, 5]


@pytest.mark.slow
def test_worker_imports_no_torch(tmp_path: Path, stub_url: str) -> None:
    import subprocess

    spec = {"url": stub_url, "body": "{}", "users": 1, "duration_s": 0.3, "max_requests": 3}
    (tmp_path / "spec.json").write_bytes(orjson.dumps(spec))
    run = subprocess.run([sys.executable, "-m", "profkit.load.worker", str(tmp_path / "spec.json")],
                         capture_output=True, timeout=60, check=True)  # fmt: skip
    out = orjson.loads(run.stdout)
    assert out["torch_imported"] is False and len(out["samples"]) == 3


@pytest.mark.slow
def test_cli_writes_documents_and_gates(tmp_path: Path, stub_url: str) -> None:
    out = tmp_path / "run"
    args = ["load", stub_url, "--users", "1,2", "--duration", "0.5", "--slo", "1000", "--price-per-hour", "3.6"]
    result = run_cli(*args, "--out", str(out))
    assert result.returncode == 0, result.stderr
    doc = load_document(out / "load.json")
    assert isinstance(doc, LoadTestResult) and doc.goodput_rps and doc.cost_per_image
    assert doc.environment["locust"]
    assert (out / "load.csv").read_text().startswith("users,rate")
    html = (out / "load.html").read_text()
    assert "<svg" in html and "Goodput" in html and stub_url in html
    # a baseline with twice the goodput: exit 4
    better = msgspec.structs.replace(doc, goodput_rps=doc.goodput_rps * 2)
    (tmp_path / "base.json").write_bytes(better.to_json())
    gated = run_cli(*args, "--out", str(tmp_path / "b"), "--baseline", str(tmp_path / "base.json"))
    assert gated.returncode == 4 and "goodput regressed" in gated.stderr


@pytest.mark.slow
@pytest.mark.parametrize("url", ["notaurl", "http://127.0.0.1:1/v1"])
def test_bad_or_unreachable_url_is_one_line_exit_2(tmp_path: Path, url: str) -> None:
    result = run_cli("load", url, "--out", str(tmp_path / "x"))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and result.stderr.startswith("profkit: error:")


def test_html_escapes_url() -> None:
    from profkit.report.load_html import load_html

    doc = LoadTestResult(url="http://h/<script>", mode="closed", levels=(_level(10, 5, 6),), stop_reason="x")
    html = load_html(doc)
    assert "h/<script>" not in html and "h/&lt;script&gt;" in html  # (the page's own scripts aside)


def test_html_leads_with_goodput_and_draws_the_slo() -> None:
    from profkit.report.load_html import load_html

    levels = (_level(10, 5, 6), _level(20, 8, 9))
    doc = LoadTestResult(
        url="http://h/",
        mode="closed",
        slo_ms=500.0,
        levels=levels,
        stop_reason="x",
        goodput_rps=levels[1].rps,
        goodput_images_per_s=levels[1].images_per_s,
        knee_index=0,
    )
    html = load_html(doc)
    sentence = html.split('id="verdict-sentence">', 1)[1].split("</div>", 1)[0]
    assert sentence.startswith(f"Goodput {levels[1].rps:.2f} req/s") and "P95 &lt;= 500 ms" in sentence
    assert html.index('id="verdict-sentence"') < html.index("<table") and html.count(">SLO</text>") == 2
    assert "x: answered requests/s" in html and "y: P95 latency (ms)" in html


@pytest.mark.slow
def test_served_endpoint_waits_for_healthz_and_stops(tmp_path: Path) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    (tmp_path / "stub.py").write_text(STUB)
    served = ServedEndpoint([], "127.0.0.1", port, 20, command=[sys.executable, str(tmp_path / "stub.py"), str(port)])
    with served:
        assert served.proc is not None and served.proc.poll() is None
    assert served.proc.poll() is not None


@pytest.mark.slow
def test_load_serve_against_real_server(tmp_path: Path) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    serve_args = "--device cpu --steps 2 --height 32 --width 32"
    result = run_cli("load", "--serve", "--users", "1,2", "--duration", "2", "--port", str(port), "--ready-timeout",
                     "300", "--out", str(tmp_path / "s"), "--serve-args", serve_args)  # fmt: skip
    assert result.returncode == 0, result.stderr
    doc = load_document(tmp_path / "s" / "load.json")
    assert doc.server["command"] and doc.levels[0].server_phases_ms
