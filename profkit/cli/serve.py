"""`profkit serve`: the flags; the server is :mod:`profkit.serve`."""

from __future__ import annotations

from typing import Annotated

import typer

from profkit.cli.settings import knob_options
from profkit.pipelines.builtin import BUILTIN_MODELS, DEFAULT_MODEL

HELP = (
    "Serve a diffusers pipeline over HTTP (OpenAI images API: POST /v1/images/generations) with per-request "
    "Server-Timing, Prometheus /metrics, /healthz after warm-up, a bounded queue and optional dynamic batching."
)
EPILOG = (
    "Example: profkit serve --model tiny-sd --steps 4 --port 8000 --max-batch 4 --max-wait-ms 20; then "
    'curl -s localhost:8000/v1/images/generations -d \'{"prompt": "a cat", "size": "64x64"}\''
)


@knob_options
def serve_command(
    model: Annotated[
        str, typer.Option("--model", "-m", help=f"Built-in ({', '.join(BUILTIN_MODELS)}), a folder or a hub id.")
    ] = DEFAULT_MODEL,
    dtype: Annotated[str, typer.Option("--dtype", help="fp32, fp16 or bf16.")] = "fp32",
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda, cuda:N.")] = "auto",
    steps: Annotated[int, typer.Option("--steps", help="Denoising steps of a request that names none.")] = 10,
    height: Annotated[int, typer.Option("--height", help="Default image height (multiple of 8).")] = 64,
    width: Annotated[int, typer.Option("--width", help="Default image width (multiple of 8).")] = 64,
    knobs: dict[str, str] | None = None,  # the knob flags (settings.knob_options)
    guidance_scale: Annotated[float | None, typer.Option("--guidance-scale", help="CFG scale.")] = None,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port to listen on.")] = 8000,
    max_steps: Annotated[int, typer.Option("--max-steps", help="Most steps a request may ask for.")] = 50,
    max_side: Annotated[int, typer.Option("--max-side", help="Largest width/height a request may ask for.")] = 1024,
    max_n: Annotated[int, typer.Option("--max-n", help="Most images per request.")] = 4,
    max_body_bytes: Annotated[int, typer.Option("--max-body-bytes", help="Largest request body.")] = 65536,
    queue_size: Annotated[
        int, typer.Option("--queue-size", help="Requests that may wait; more get 503 with Retry-After.")
    ] = 16,
    max_batch: Annotated[int, typer.Option("--max-batch", help="Images per pipeline call (1: no batching).")] = 1,
    max_wait_ms: Annotated[
        float, typer.Option("--max-wait-ms", help="How long a batch waits for compatible requests.")
    ] = 0.0,
    deadline: Annotated[float, typer.Option("--deadline", help="Seconds before a request gets 504.")] = 120.0,
    warmup: Annotated[int, typer.Option("--warmup", help="Pipeline calls before /healthz says ready.")] = 1,
    graceful: Annotated[float, typer.Option("--graceful", help="Seconds shutdown waits for accepted requests.")] = 60.0,
) -> None:
    from profkit.cli.output import console
    from profkit.cli.settings import knob_grid
    from profkit.errors import ProfkitError
    from profkit.serve.server import serve
    from profkit.serve.settings import ServeSettings

    combinations = knob_grid(**(knobs or {})).combinations()
    if len(combinations) != 1:
        raise ProfkitError(
            "a server runs one configuration: give each of {compile}, {attention}, {scheduler} ... one value "
            "(compare configurations with bench or load)",
            settings=("compile", "attention", "scheduler"),
        )

    settings = ServeSettings(
        model=model,
        dtype=dtype,
        device=device,
        steps=steps,
        height=height,
        width=width,
        knobs=combinations[0],
        guidance_scale=guidance_scale,
        host=host,
        port=port,
        max_steps=max_steps,
        max_side=max_side,
        max_n=max_n,
        max_body_bytes=max_body_bytes,
        queue_size=queue_size,
        max_batch=max_batch,
        max_wait_ms=max_wait_ms,
        deadline_s=deadline,
        warmup=warmup,
        graceful_s=graceful,
    ).validate()
    outcome = serve(settings, lambda url: console.print(f"serving {model} on {url} (ready once {url}/healthz is 200)"))
    answered = ", ".join(f"{status}: {count}" for status, count in sorted(outcome.answered.items())) or "none"
    console.print(f"stopped; generation requests answered by status: {answered}", markup=False)
