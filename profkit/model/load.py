"""The ``profkit.load-test`` document: one load test (closed-loop ramp or open-loop rate sweep) and its verdicts."""

from __future__ import annotations

from typing import Any, ClassVar

import msgspec

from profkit.model.base import Document
from profkit.model.bench import MetricStats


class LoadLevel(msgspec.Struct, frozen=True, kw_only=True):
    """One step of the test: ``users`` concurrent users (closed loop) or ``rate`` arrivals per second (open)."""

    users: int | None = None
    rate: float | None = None
    duration_s: float
    requests: int
    ok: int
    rps: float  # answered requests (ok) per second
    images_per_s: float
    error_rate: float
    errors: dict[str, int] = {}  # error kind -> count
    latency: MetricStats | None = None  # ms, successful requests, end to end (open loop: from intended send)
    server_phases_ms: dict[str, float] = {}  # mean per Server-Timing phase
    server_ms: float | None = None  # mean server total (Server-Timing "total")
    outside_server_ms: float | None = None  # mean end-to-end minus server total: network, client, client queue
    worker_requests: dict[str, int] = {}  # distributed run: requests each load worker ("host:pid") sent


class LoadTestResult(Document, frozen=True, kw_only=True):
    """A load test's levels, its knee, goodput and cost per image; ``environment`` of the load generator."""

    KIND: ClassVar[str] = "profkit.load-test"
    VERSION: ClassVar[int] = 1

    url: str
    mode: str  # "closed" | "open"
    slo_ms: float | None = None
    levels: tuple[LoadLevel, ...] = ()
    stop_reason: str = ""
    knee_index: int | None = None
    goodput_rps: float | None = None
    goodput_images_per_s: float | None = None
    price_per_hour: float | None = None
    price_source: str | None = None
    cost_per_image: float | None = None
    workers: int = 1
    server: dict[str, Any] = msgspec.field(default_factory=dict)  # --serve: the server command and what it reported
    environment: dict[str, Any] = msgspec.field(default_factory=dict)
