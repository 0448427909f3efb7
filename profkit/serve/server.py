"""uvicorn around the app: serve until SIGINT/SIGTERM, then finish the accepted requests and return."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

from profkit.serve.settings import ServeSettings


@dataclass(frozen=True)
class ServeOutcome:
    url: str
    answered: dict[str, int]  # HTTP status -> generation requests answered


def serve(settings: ServeSettings, on_listening: Callable[[str], None] | None = None) -> ServeOutcome:
    """Run the server in this thread until it is stopped; a stop signal is a normal end (accepted requests finish)."""
    import uvicorn

    from profkit.serve.app import create_app

    settings = settings.validate()
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=int(max(1, settings.graceful_s)),
        lifespan="on",
    )
    server = uvicorn.Server(config)
    url = f"http://{settings.host}:{settings.port}"
    if on_listening is not None:
        on_listening(url)
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn shut down gracefully, then re-raised the signal
        server.run()
    metrics = app.state.serve.metrics
    answered = {
        sample.labels["status"]: int(sample.value)
        for metric in metrics.requests.collect()
        for sample in metric.samples
        if sample.name.endswith("_total")
    }
    return ServeOutcome(url, answered)
