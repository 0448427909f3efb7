"""The speed-versus-quality Pareto front: configurations no other is both faster and better than."""

from __future__ import annotations

import math
from collections.abc import Sequence

from profkit.model.quality import ParetoPoint


def _value(quality: float | None) -> float:
    return math.inf if quality is None else quality  # None PSNR: identical images


def pareto_points(points: Sequence[tuple[str, float, float | None]]) -> list[ParetoPoint]:
    """``(label, seconds, quality)`` -> points, ``on_front`` when no other point is at least as fast and as good
    and strictly better in one."""
    marked = []
    for label, seconds, quality in points:
        dominated = any(
            s <= seconds and _value(q) >= _value(quality) and (s < seconds or _value(q) > _value(quality))
            for other, s, q in points
            if other != label
        )
        marked.append(ParetoPoint(label=label, seconds=seconds, quality=quality, on_front=not dominated))
    return marked
