"""The FastAPI app: ``POST /v1/images/generations``, ``GET /healthz``, ``GET /metrics``.

:func:`create_app` builds it for :class:`~profkit.serve.settings.ServeSettings`; ``runner_factory`` makes the
:class:`~profkit.serve.worker.Runner` (the pipeline by default, a stand-in in tests). The runner is built and warmed
up in a thread after the app starts, so ``/healthz`` answers 503 until then and 200 after.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from profkit.serve.metrics import CONTENT_TYPE, ServeMetrics
from profkit.serve.requests import BadRequest, parse_generation
from profkit.serve.settings import ServeSettings
from profkit.serve.timing import server_timing
from profkit.serve.worker import DeadlineExceeded, Job, JobResult, QueueFull, Runner, Worker

GENERATIONS = "/v1/images/generations"
CLIENT_CLOSED = 499  # the client went away before its answer


@dataclass
class ServeState:
    settings: ServeSettings
    metrics: ServeMetrics
    worker: Worker | None = None
    runner: Any = None
    ready: bool = False
    stopping: bool = False
    failed: str | None = None  # why the runner could not start
    error: BaseException | None = None  # ... as the exception it raised


def _default_runner(settings: ServeSettings) -> Runner:
    from profkit.serve.engine import PipelineRunner

    return PipelineRunner(settings)


def _error(status: int, message: str, kind: str = "server_error", headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(BadRequest(message, status, kind).body(), status_code=status, headers=headers)


def create_app(
    settings: ServeSettings,
    runner_factory: Callable[[ServeSettings], Runner] | None = None,
    on_failure: Callable[[BaseException], None] | None = None,
) -> FastAPI:
    """The server's app; ``app.state.serve`` holds its :class:`ServeState`. ``on_failure`` is told when the runner
    cannot be built or warmed up (``/healthz`` then stays 503 and says why)."""
    factory = runner_factory or _default_runner
    state = ServeState(settings, ServeMetrics())

    def start_runner() -> None:
        runner = factory(settings)
        gpu_memory = getattr(runner, "gpu_memory", None)
        if callable(gpu_memory) and gpu_memory() is not None:
            state.metrics.watch_gpu(gpu_memory)
        runner.warm_up()
        state.runner = runner
        worker = Worker(
            runner,
            settings.queue_size,
            settings.max_batch,
            settings.max_wait_ms,
            on_depth=state.metrics.queue_depth.set,
            on_batch=state.metrics.batch_size.observe,
        )
        worker.start()
        state.worker = worker
        state.ready = True
        state.metrics.ready.set(1)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async def warm() -> None:
            try:
                await asyncio.to_thread(start_runner)
            except Exception as error:
                state.failed = f"{type(error).__name__}: {error}"
                state.error = error
                if on_failure is not None:
                    on_failure(error)

        task = asyncio.create_task(warm())
        try:
            yield
        finally:
            state.ready, state.stopping = False, True
            if not task.done():
                await asyncio.wait({task}, timeout=settings.graceful_s)
            if state.worker is not None:
                await asyncio.to_thread(state.worker.stop, settings.graceful_s)
            close = getattr(state.runner, "close", None)
            if callable(close):
                close()

    app = FastAPI(title="profkit serve", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.serve = state

    @app.get("/healthz")
    async def healthz() -> Response:
        if state.ready:
            return JSONResponse(
                {  # what is served: a load test records it next to its numbers
                    "status": "ready",
                    "model": settings.model,
                    "dtype": settings.dtype,
                    "device": getattr(state.runner, "device", settings.device),
                    "steps": settings.steps,
                    "size": f"{settings.width}x{settings.height}",
                    "max_batch": settings.max_batch,
                    "knobs": settings.knobs.changed(),
                }
            )
        status = "failed: " + state.failed if state.failed else "stopping" if state.stopping else "warming up"
        return JSONResponse({"status": status}, status_code=503, headers={"Retry-After": "1"})

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(state.metrics.render(), media_type=CONTENT_TYPE)

    @app.post(GENERATIONS)
    async def generations(request: Request) -> Response:
        received = time.perf_counter()
        state.metrics.in_flight.inc()
        try:
            response = await _generate(request, received, state)
        finally:
            state.metrics.in_flight.dec()
        state.metrics.count(response.status_code)
        return response

    return app


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BadRequest(f"body is larger than {limit} bytes", 413)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BadRequest(f"body is larger than {limit} bytes", 413)
        chunks.append(chunk)
    return b"".join(chunks)


async def _disconnected(request: Request) -> None:
    """Returns when the client disconnects (the body has been read: ``receive`` now only reports that)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def _generate(request: Request, received: float, state: ServeState) -> Response:
    settings = state.settings
    try:
        generation = parse_generation(await _read_body(request, settings.max_body_bytes), settings)
    except BadRequest as error:
        return JSONResponse(error.body(), status_code=error.status)
    if not state.ready or state.worker is None:
        why = "is shutting down" if state.stopping else "is warming up"
        return _error(503, f"the server {why}", "unavailable", {"Retry-After": "1"})
    loop = asyncio.get_running_loop()
    job = Job(generation, received, received + settings.deadline_s, loop)
    try:
        state.worker.submit(job)
    except QueueFull as full:
        return _error(503, "the queue is full; retry later", "overloaded", {"Retry-After": str(full.retry_after_s)})
    watch = asyncio.ensure_future(_disconnected(request))
    try:
        left = job.deadline - time.perf_counter()
        await asyncio.wait({job.future, watch}, timeout=max(left, 0.0), return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        job.cancelled = True
        raise
    finally:
        gone = watch.done() and not watch.cancelled()
        watch.cancel()
    if not job.future.done():
        job.cancelled = True  # not started yet: the worker skips it
        if gone:
            return Response(status_code=CLIENT_CLOSED)  # nobody reads it; counted as 499 like nginx does
        return _error(504, f"no answer within the deadline of {settings.deadline_s:g} s", "timeout")
    try:
        result: JobResult = job.future.result()
    except DeadlineExceeded as error:
        return _error(504, str(error), "timeout")
    except RuntimeError as error:
        return _error(500, f"the pipeline failed: {error}")
    state.metrics.observe_request(result.phases_ms, result.steps_s)
    state.metrics.images.inc(len(result.images))
    body = orjson.dumps({"created": int(time.time()), "data": [{"b64_json": image} for image in result.images]})
    timing = server_timing(result.phases_ms, result.step_mean_ms, len(result.steps_s))
    return Response(body, media_type="application/json", headers={"Server-Timing": timing})
