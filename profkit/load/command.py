"""The function behind ``profkit load``: run the test (optionally against a served child), write JSON, CSV and
HTML, print the table, and gate against a baseline."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from profkit.errors import EXIT_REGRESSION, EXIT_RUN_FAILED, ProfkitError, SettingError
from profkit.load.runner import LoadSettings, ServedEndpoint, check_url, result_of, run_load
from profkit.model.load import LoadLevel, LoadTestResult

CSV_COLUMNS = (
    "users", "rate", "duration_s", "requests", "ok", "rps", "images_per_s", "error_rate",
    "p50_ms", "p90_ms", "p95_ms", "p99_ms", "server_ms", "outside_server_ms",
)  # fmt: skip


def to_csv(result: LoadTestResult) -> str:
    """One row per level; server phases as ``phase_<name>_ms`` columns."""
    phases = sorted({name for lvl in result.levels for name in lvl.server_phases_ms})
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([*CSV_COLUMNS, *(f"phase_{p}_ms" for p in phases)])
    for lvl in result.levels:
        lat = lvl.latency
        writer.writerow(
            [
                lvl.users, lvl.rate, lvl.duration_s, lvl.requests, lvl.ok, lvl.rps, lvl.images_per_s, lvl.error_rate,
                lat.p50 if lat else None, lat.p90 if lat else None, lat.p95 if lat else None,
                lat.p99 if lat else None, lvl.server_ms, lvl.outside_server_ms,
                *(lvl.server_phases_ms.get(p) for p in phases),
            ]
        )  # fmt: skip
    return out.getvalue()


def level_line(level: LoadLevel) -> str:
    load = f"{level.users} users" if level.users is not None else f"{level.rate:g}/s"
    lat = level.latency
    tail = f"P50 {lat.p50:.1f}  P95 {lat.p95:.1f}  P99 {lat.p99:.1f} ms" if lat else "no answers"
    return f"{load:>10}  {level.rps:8.2f} req/s  {level.images_per_s:8.2f} img/s  err {level.error_rate:6.1%}  {tail}"


def summary_lines(result: LoadTestResult, levels: bool = True) -> list[str]:
    lines = [level_line(level) for level in result.levels] if levels else []
    lines.append(f"stopped: {result.stop_reason}")
    if result.knee_index is not None:
        lines.append(f"knee: {level_line(result.levels[result.knee_index]).strip()}")
    if result.goodput_rps is not None:
        lines.append(f"goodput: {result.goodput_rps:.2f} req/s ({result.goodput_images_per_s:.2f} images/s)")
    else:
        lines.append("goodput: no level met the SLO")
    if result.cost_per_image is not None:
        lines.append(f"cost per image at goodput: ${result.cost_per_image:.6f} ({result.price_source})")
    return lines


def gate(result: LoadTestResult, baseline: LoadTestResult, tolerance: float) -> str | None:
    """A regression line when goodput fell more than ``tolerance`` below the baseline's, else None."""
    if baseline.goodput_rps is None:
        return None
    now = result.goodput_rps or 0.0
    if now < baseline.goodput_rps * (1.0 - tolerance):
        return f"goodput regressed: {now:.2f} req/s vs baseline {baseline.goodput_rps:.2f} (tolerance {tolerance:.0%})"
    return None


def _keep_sample(settings: LoadSettings, out: Path) -> str:
    """One untimed request more: its images, with prompt and seed, for ``profkit quality`` (a line on what was kept)."""
    from profkit.load.runner import load_template
    from profkit.quality.sample import keep_sample

    return keep_sample(settings.url, settings.template or load_template(None), out, settings.timeout_s)


def run_load_command(
    settings: LoadSettings,
    out: Path,
    price: tuple[str, float, str] | None = None,
    baseline: Path | None = None,
    tolerance: float = 0.10,
    serve_args: list[str] | None = None,
    serve_port: int = 8000,
    serve_ready_timeout_s: float = 600.0,
    echo: Any = print,
) -> LoadTestResult:
    """Run the test, write ``load.json``, ``load.csv``, ``load.html`` under ``out``; exit 4 on a baseline regression."""
    from profkit.jsonio import write_bytes, write_text
    from profkit.model import load_document
    from profkit.report.load_html import load_html

    base = load_document(baseline) if baseline is not None else None
    if base is not None and not isinstance(base, LoadTestResult):
        raise SettingError("baseline", f"{baseline}: not a load-test document")
    server: dict[str, Any] = {}
    if serve_args is not None:
        with ServedEndpoint(serve_args, "127.0.0.1", serve_port, serve_ready_timeout_s) as served:
            levels, reason = run_load(settings, lambda level: echo(level_line(level)))
            server = {"command": served.command, "metrics": served.metrics()}
            sample = _keep_sample(settings, out)
    else:
        check_url(settings.url)
        levels, reason = run_load(settings, lambda level: echo(level_line(level)))
        sample = _keep_sample(settings, out)
    result = result_of(settings, levels, reason, price)
    if server:
        import msgspec

        result = msgspec.structs.replace(result, server=server)
    out.mkdir(parents=True, exist_ok=True)
    write_bytes(out / "load.json", result.to_json())
    write_text(out / "load.csv", to_csv(result))
    write_text(out / "load.html", load_html(result))
    for line in summary_lines(result, levels=False):
        echo(line)
    echo(f"wrote {out / 'load.json'}, load.csv, load.html")
    echo(sample)
    if base is not None:
        regression = gate(result, base, tolerance)
        if regression:
            raise ProfkitError(regression, EXIT_REGRESSION)
    return result


def run_remote_worker(master: str, connect_timeout_s: float) -> None:
    """``profkit load --worker``: a Locust worker child for the master at ``master`` (on another machine); it runs
    the levels the master sends until the master quits. Exit 3 with its last line when it cannot connect."""
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "profkit.load.distributed", "worker", master, str(connect_timeout_s)]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE)
    try:
        _, err = proc.communicate()
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    if proc.returncode != 0:
        last = (err.decode(errors="replace").strip().splitlines() or ["no output"])[-1]
        raise ProfkitError(f"load worker failed (exit {proc.returncode}): {last}", EXIT_RUN_FAILED)
