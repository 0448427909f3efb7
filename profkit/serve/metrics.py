"""The server's Prometheus metrics, in a registry of its own (one per app, so apps in one process don't mix)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from profkit.serve.timing import PHASES, TOTAL

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 60, 120, 300)
_STEP_SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)


class ServeMetrics:
    """Requests by status, phase/step histograms, in-flight, queue depth, batch size, readiness, GPU memory."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "profkit_serve_requests", "Image generation requests answered, by HTTP status", ["status"], registry=r
        )
        self.images = Counter("profkit_serve_images", "Images generated and returned", registry=r)
        self.phase = Histogram(
            "profkit_serve_phase_seconds",
            "Server time of answered requests by phase (total is arrival to response body ready)",
            ["phase"],
            buckets=_SECONDS,
            registry=r,
        )
        self.step = Histogram("profkit_serve_step_seconds", "Denoise step durations", buckets=_STEP_SECONDS, registry=r)
        self.batch_size = Histogram(
            "profkit_serve_batch_size", "Images per pipeline call", buckets=(1, 2, 4, 8, 16, 32, 64), registry=r
        )
        self.in_flight = Gauge("profkit_serve_in_flight", "Generation requests being handled", registry=r)
        self.queue_depth = Gauge("profkit_serve_queue_depth", "Requests waiting for the pipeline", registry=r)
        self.ready = Gauge("profkit_serve_ready", "1 once warm-up is done", registry=r)
        for phase in (*PHASES, TOTAL):
            self.phase.labels(phase)  # every phase present from the start
        self.gpu_memory_bytes: Gauge | None = None
        self._gpu_memory: Callable[[], tuple[int, int] | None] = lambda: None

    def watch_gpu(self, gpu_memory: Callable[[], tuple[int, int] | None]) -> None:
        """Export ``gpu_memory()`` (allocated, reserved bytes) as a gauge, read at each scrape (CUDA only)."""
        self._gpu_memory = gpu_memory
        self.gpu_memory_bytes = Gauge(
            "profkit_serve_gpu_memory_bytes", "CUDA memory of this process", ["kind"], registry=self.registry
        )

    def observe_request(self, phases_ms: dict[str, float], steps_s: list[float]) -> None:
        for name, value in phases_ms.items():
            self.phase.labels(name).observe(value / 1000.0)
        for seconds in steps_s:
            self.step.observe(seconds)

    def count(self, status: int) -> None:
        self.requests.labels(str(status)).inc()

    def render(self) -> bytes:
        memory = self._gpu_memory()
        if self.gpu_memory_bytes is not None and memory is not None:
            allocated, reserved = memory
            self.gpu_memory_bytes.labels("allocated").set(allocated)
            self.gpu_memory_bytes.labels("reserved").set(reserved)
        return generate_latest(self.registry)
