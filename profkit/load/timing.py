"""The ``Server-Timing`` response header (``name;dur=ms, ...``) as ``{phase: ms}``."""

from __future__ import annotations

import contextlib


def parse_server_timing(header: str | None) -> dict[str, float]:
    """``{"denoise": 12.5, ...}`` from a ``Server-Timing`` header; parts without a numeric ``dur`` are skipped."""
    phases: dict[str, float] = {}
    for part in (header or "").split(","):
        name, _, params = part.strip().partition(";")
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip() == "dur" and name.strip():
                with contextlib.suppress(ValueError):
                    phases[name.strip()] = float(value.strip().strip('"'))
    return phases
