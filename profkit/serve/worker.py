"""The bounded queue, the batcher and the one thread that runs the pipeline (GPU work is serialized).

Handlers on the event loop :meth:`Worker.submit` a :class:`Job` and await its future; the worker thread takes the
oldest job, gathers compatible ones (same size and steps) up to ``max_batch`` images for at most ``max_wait_ms``,
runs them in one call of the :class:`Runner` and hands each job its result on the loop. Nothing here blocks the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from profkit.serve.requests import Generation
from profkit.serve.timing import BatchClock


class QueueFull(Exception):
    """The queue holds ``queue_size`` waiting requests: answer 503 with ``retry_after_s``."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__("the server is busy")
        self.retry_after_s = retry_after_s


class DeadlineExceeded(Exception):
    """The request waited past its deadline before the pipeline could take it."""


class Runner(Protocol):
    """What the worker calls: the pipeline (:class:`profkit.serve.engine.PipelineRunner`) or a test stand-in."""

    sync: Callable[[], None] | None  # waits for the device before a clock mark (CUDA); None on a CPU

    def warm_up(self) -> None: ...

    def run(self, batch: list[Generation], clock: BatchClock) -> list[list[str]]:
        """Base64 PNGs per generation of ``batch``; marks ``clock`` through its ranges."""
        ...


@dataclass
class JobResult:
    images: list[str]
    phases_ms: dict[str, float]
    steps_s: list[float]
    step_mean_ms: float | None
    batch_images: int


@dataclass
class Job:
    generation: Generation
    received: float  # perf_counter when the request arrived
    deadline: float  # perf_counter after which it is not started
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future = field(default=None)  # type: ignore[assignment]
    cancelled: bool = False  # the client left or the deadline passed: don't start it

    def __post_init__(self) -> None:
        if self.future is None:
            self.future = self.loop.create_future()

    def deliver(self, result: JobResult | BaseException) -> None:
        if self.cancelled:  # its handler has answered already
            return

        def settle() -> None:
            if self.future.done():
                return
            if isinstance(result, BaseException):
                self.future.set_exception(result)
            else:
                self.future.set_result(result)

        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
            self.loop.call_soon_threadsafe(settle)


class Worker:
    """One thread, one queue. ``on_depth(n)`` is told the queue depth; ``on_batch(images)`` each batch size."""

    def __init__(
        self,
        runner: Runner,
        queue_size: int,
        max_batch: int = 1,
        max_wait_ms: float = 0.0,
        on_depth: Callable[[int], None] | None = None,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self.runner = runner
        self.queue_size = queue_size
        self.max_batch = max_batch
        self.max_wait_s = max_wait_ms / 1000.0
        self._on_depth = on_depth or (lambda depth: None)
        self._on_batch = on_batch or (lambda images: None)
        self._waiting: deque[Job] = deque()
        self._cond = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._batch_seconds = 1.0  # a running estimate of one call, for Retry-After

    # -- event-loop side ------------------------------------------------------------------------
    def submit(self, job: Job) -> None:
        with self._cond:
            if self._stopping:
                raise QueueFull(1)
            if len(self._waiting) >= self.queue_size:
                raise QueueFull(max(1, round(self._batch_seconds * (len(self._waiting) + 1))))
            self._waiting.append(job)
            self._on_depth(len(self._waiting))
            self._cond.notify()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._serve, name="profkit-serve-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float) -> None:
        """Finish the jobs already accepted (for at most ``timeout_s``), then end the thread."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout_s)

    @property
    def depth(self) -> int:
        return len(self._waiting)

    # -- worker thread --------------------------------------------------------------------------
    def _take(self) -> list[Job] | None:
        """The next batch: the oldest live job and compatible ones; None once stopping with nothing left."""
        with self._cond:
            while True:
                while not self._waiting and not self._stopping:
                    self._cond.wait()
                first = self._pop_live()
                if first is not None:
                    break
                if self._stopping and not self._waiting:
                    return None
            batch, images = [first], first.generation.n
            wait_until = time.perf_counter() + self.max_wait_s
            while images < self.max_batch:
                job = self._pop_compatible(first, self.max_batch - images)
                if job is not None:
                    batch.append(job)
                    images += job.generation.n
                    continue
                left = wait_until - time.perf_counter()
                if left <= 0 or self._stopping:
                    break
                self._cond.wait(left)
            self._on_depth(len(self._waiting))
            return batch

    def _pop_live(self) -> Job | None:
        now = time.perf_counter()
        while self._waiting:
            job = self._waiting.popleft()
            if job.cancelled:
                continue
            if now > job.deadline:
                job.deliver(DeadlineExceeded("the request's deadline passed while it waited in the queue"))
                continue
            return job
        return None

    def _pop_compatible(self, first: Job, room: int) -> Job | None:
        for job in self._waiting:
            if not job.cancelled and job.generation.shape == first.generation.shape and job.generation.n <= room:
                self._waiting.remove(job)
                return job
        return None

    def _serve(self) -> None:
        while (batch := self._take()) is not None:
            self._run(batch)

    def _run(self, batch: list[Job]) -> None:
        clock = BatchClock(sync=self.runner.sync)
        images = sum(job.generation.n for job in batch)
        self._on_batch(images)
        clock.start()
        try:
            outputs = self.runner.run([job.generation for job in batch], clock)
        except Exception as error:  # the pipeline failed: every job of the batch gets a 500
            for job in batch:
                job.deliver(RuntimeError(f"{type(error).__name__}: {error}"))
            return
        clock.finish()
        self._batch_seconds = 0.7 * self._batch_seconds + 0.3 * (clock.finished - clock.started)
        step_mean = clock.step_mean_ms()
        for job, pngs in zip(batch, outputs, strict=True):
            job.deliver(JobResult(pngs, clock.phases_ms(job.received), list(clock.steps_s), step_mean, images))
