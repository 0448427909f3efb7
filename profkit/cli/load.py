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
    "child)"
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
    workers: Annotated[int, typer.Option("--workers", help="Load-generator processes.")] = 1,
    template: Annotated[Path | None, typer.Option("--template", help="Request template JSON.")] = None,
    price_per_hour: Annotated[float | None, typer.Option("--price-per-hour", help="USD per hour.")] = None,
    instance: Annotated[str | None, typer.Option("--instance", help="Instance from the price table.")] = None,
    baseline: Annotated[Path | None, typer.Option("--baseline", help="load.json to gate against.")] = None,
    tolerance: Annotated[float, typer.Option("--tolerance", help="Allowed goodput drop (share).")] = 0.10,
    serve: Annotated[bool, typer.Option("--serve", help="Start `profkit serve` as a child, load it, stop it.")] = False,
    serve_args: Annotated[
        str, typer.Option("--serve-args", help="--serve: the serve options, quoted as one string.")
    ] = "",
    port: Annotated[int, typer.Option("--port", help="--serve: port on 127.0.0.1.")] = 8000,
    ready_timeout: Annotated[float, typer.Option("--ready-timeout", help="--serve: seconds to wait.")] = 600.0,
) -> None:
    from profkit.app.prices import price_for
    from profkit.errors import SettingError
    from profkit.load.command import run_load_command
    from profkit.load.runner import LoadSettings, load_template

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
