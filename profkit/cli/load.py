"""`profkit load`: the flags; the work is in :mod:`profkit.load.command` (Locust runs only in worker children)."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated

import typer

HELP = (
    "Load-test an HTTP endpoint: a closed-loop ramp of users (1, 2, 4, ...) or an open-loop rate sweep, with exact "
    "P50/P90/P95/P99, errors, Server-Timing phases, the knee, goodput under --slo and cost per image."
)
EPILOG = (
    "Example: profkit load http://127.0.0.1:8000/v1/images/generations --slo 2000 --out load/  |  "
    "profkit load --serve --serve-args '--dtype fp16 --steps 20' --slo 2000 --out load/   (starts `profkit serve` as a "
    "child)  |  more client machines: profkit load URL --master-bind 0.0.0.0:5557 --expect-workers 2 ... on this "
    "one, profkit load --worker --master THIS_HOST:5557 on each of the others"
)
CONTEXT: dict[str, object] = {}


def _numbers(text: str, cast: type, setting: str) -> tuple:
    from profkit.errors import SettingError

    try:
        values = tuple(cast(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise SettingError(setting, f"{text!r}: expected a comma list of numbers") from None
    if not values or any(v <= 0 for v in values):
        raise SettingError(setting, f"{text!r}: expected positive numbers")
    return values


def load_command(
    url: Annotated[str | None, typer.Argument(help="Endpoint URL (omit with --serve).")] = None,
    slo: Annotated[float | None, typer.Option("--slo", help="P95 latency target in ms.")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("load"),
    mode: Annotated[str, typer.Option("--mode", help="closed (user ramp) or open (rate sweep).")] = "closed",
    users: Annotated[str, typer.Option("--users", help="Closed loop: user levels.")] = "1,2,4,8,16,32,64",
    rates: Annotated[str, typer.Option("--rates", help="Open loop: arrival rates per second.")] = "1,2,4,8",
    arrivals: Annotated[str, typer.Option("--arrivals", help="Open loop: poisson or constant.")] = "poisson",
    duration: Annotated[float, typer.Option("--duration", help="Seconds per level.")] = 10.0,
    max_requests: Annotated[int, typer.Option("--max-requests", help="Most requests per level and worker.")] = 100_000,
    max_error_rate: Annotated[float, typer.Option("--max-error-rate", help="Stop above this error share.")] = 0.05,
    timeout: Annotated[float, typer.Option("--timeout", help="Request timeout in seconds.")] = 30.0,
    workers: Annotated[
        int, typer.Option("--workers", help="Local load processes; >1 runs Locust's master and N workers.")
    ] = 1,
    master_bind: Annotated[
        str | None, typer.Option("--master-bind", help="HOST:PORT where the Locust master waits for remote workers.")
    ] = None,
    expect_workers: Annotated[
        int, typer.Option("--expect-workers", help="--master-bind: remote workers to wait for.")
    ] = 0,
    connect_timeout: Annotated[
        float, typer.Option("--connect-timeout", help="Seconds to wait for workers (or, --worker, the master).")
    ] = 30.0,
    worker: Annotated[
        bool, typer.Option("--worker", help="Run a load worker for the master at --master (another machine).")
    ] = False,
    master: Annotated[str | None, typer.Option("--master", help="--worker: the master's HOST:PORT.")] = None,
    template: Annotated[Path | None, typer.Option("--template", help="Request template JSON.")] = None,
    price_per_hour: Annotated[float | None, typer.Option("--price-per-hour", help="USD per hour.")] = None,
    instance: Annotated[str | None, typer.Option("--instance", help="Instance from the price table.")] = None,
    baseline: Annotated[Path | None, typer.Option("--baseline", help="load.json to gate against.")] = None,
    tolerance: Annotated[float, typer.Option("--tolerance", help="Allowed goodput drop (share).")] = 0.10,
    serve: Annotated[bool, typer.Option("--serve", help="Start `profkit serve` as a child, load it, stop it.")] = False,
    serve_args: Annotated[
        str, typer.Option("--serve-args", help="--serve: the serve options, quoted as one string.")
    ] = "",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="--serve: port on 127.0.0.1.")] = 8000,
    ready_timeout: Annotated[float, typer.Option("--ready-timeout", help="--serve: seconds to wait.")] = 600.0,
) -> None:
    from profkit.app.prices import price_for
    from profkit.errors import SettingError
    from profkit.load.command import run_load_command, run_remote_worker
    from profkit.load.runner import LoadSettings, host_port, load_template

    if connect_timeout <= 0:
        raise SettingError("connect_timeout", "must be positive")
    if worker:
        if master is None:
            raise SettingError("worker", "needs {master} HOST:PORT", ("master",))
        run_remote_worker(host_port(master, "master"), connect_timeout)
        return
    if master is not None:
        raise SettingError("master", "needs {worker}", ("worker",))
    if master_bind is not None:
        host_port(master_bind, "master_bind")
        if expect_workers < 1:
            raise SettingError("expect_workers", "must be at least 1 with {master_bind}", ("master_bind",))
    elif expect_workers:
        raise SettingError("expect_workers", "needs {master_bind}", ("master_bind",))
    if mode not in ("closed", "open"):
        raise SettingError("mode", f"{mode!r}: expected closed or open")
    if arrivals not in ("poisson", "constant"):
        raise SettingError("arrivals", f"{arrivals!r}: expected poisson or constant")
    if duration <= 0 or workers < 1 or max_requests < 1:
        raise SettingError("duration", "duration, workers and max requests must be positive")
    if serve:
        url = url or f"http://127.0.0.1:{port}/v1/images/generations"
    elif url is None:
        raise SettingError("url", "give the endpoint URL, or --serve to start `profkit serve`")
    if serve_args and not serve:
        raise SettingError("serve_args", "needs {serve}", ("serve",))
    try:
        serve_options = shlex.split(serve_args)
    except ValueError as error:
        raise SettingError("serve_args", f"cannot be split into options ({error})") from None
    settings = LoadSettings(
        url=url,
        mode=mode,
        slo_ms=slo,
        users=_numbers(users, int, "users"),
        rates=_numbers(rates, float, "rates") if mode == "open" else (),
        arrivals=arrivals,
        duration_s=duration,
        max_requests=max_requests,
        max_error_rate=max_error_rate,
        timeout_s=timeout,
        workers=workers,
        master_bind=master_bind,
        expect_workers=expect_workers,
        connect_timeout_s=connect_timeout,
        template=load_template(template),
    )
    run_load_command(
        settings,
        out,
        price=price_for(price_per_hour, instance),
        baseline=baseline,
        tolerance=tolerance,
        serve_args=serve_options if serve else None,
        serve_port=port,
        serve_ready_timeout_s=ready_timeout,
        echo=lambda line: print(line, flush=True),
    )
