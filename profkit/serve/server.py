"""uvicorn around the app: serve until SIGINT/SIGTERM, then finish the accepted requests and return."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable
from dataclasses import dataclass

from profkit.errors import EXIT_RUN_FAILED, ProfkitError, SettingError
from profkit.serve.settings import ServeSettings


@dataclass(frozen=True)
class ServeOutcome:
    url: str
    answered: dict[str, int]  # HTTP status -> generation requests answered


def serve(settings: ServeSettings, on_listening: Callable[[str], None] | None = None) -> ServeOutcome:
    """Run the server in this thread until it is stopped; a stop signal is a normal end (accepted requests finish).

    A pipeline that cannot be loaded or warmed up stops the server and is raised as a :class:`ProfkitError`.
    """
    import uvicorn

    from profkit.serve.app import create_app

    settings = settings.validate()
    _check_address(settings.host, settings.port)
    server: uvicorn.Server | None = None

    def stop(error: BaseException) -> None:
        if server is not None:
            server.should_exit = True

    app = create_app(settings, on_failure=stop)
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
    state = app.state.serve
    if state.error is not None:  # the pipeline never became ready
        if isinstance(state.error, ProfkitError):
            raise state.error
        raise ProfkitError(f"the pipeline could not start: {state.failed}", EXIT_RUN_FAILED) from state.error
    metrics = state.metrics
    answered = {
        sample.labels["status"]: int(sample.value)
        for metric in metrics.requests.collect()
        for sample in metric.samples
        if sample.name.endswith("_total")
    }
    return ServeOutcome(url, answered)


def _check_address(host: str, port: int) -> None:
    """One clear line, before the pipeline loads, when ``host:port`` cannot be listened on."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = infos[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as error:
        raise SettingError("port", f"cannot listen on {host}:{port}: {error.strerror or error}") from None
