"""``profkit load --shape FILE``: the user's Locust ``LoadTestShape`` drives the user count over time.

The shape file is the user's own code, executed in the load child (:func:`load_shape_class`, which imports Locust
and so runs only there). Its ``tick()`` is wrapped (:func:`bounded_shape`): every tick is bounded by the run's time
limit and request budget, a tick that raises or returns nonsense stops the run with one line, and each change of the
user count starts a stage. In the parent, :func:`shape_levels` turns the samples into one level per stage.
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path
from typing import Any

from profkit.load import summary
from profkit.model.load import LoadLevel


class ShapeError(Exception):
    """The shape file or its ``tick()`` is unusable (one line; the load child exits 2 with it)."""


def load_shape_class(path: str | Path) -> type:
    """The one non-abstract ``LoadTestShape`` subclass that ``path`` defines (the file is executed)."""
    from locust import LoadTestShape

    path = Path(path)
    spec = importlib.util.spec_from_file_location(f"profkit_user_shape_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ShapeError(f"{path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as error:
        raise ShapeError(f"{path}: syntax error at line {error.lineno}: {error.msg}") from None
    except Exception as error:  # the user's module code failed on import
        raise ShapeError(f"{path}: running it raised {type(error).__name__}: {error}") from None
    found = [
        value
        for value in vars(module).values()
        if isinstance(value, type)
        and issubclass(value, LoadTestShape)
        and value is not LoadTestShape
        and not getattr(value, "abstract", False)
        and value.__module__ == module.__name__
    ]
    if len(found) != 1:
        what = "no LoadTestShape subclass" if not found else f"{len(found)} LoadTestShape subclasses (keep one)"
        raise ShapeError(f"{path}: defines {what}")
    return found[0]


def bounded_shape(cls: type, limit_s: float, max_requests: int, t0: float, samples: list, record: dict) -> Any:
    """An instance of ``cls`` whose ``tick()`` stops at ``limit_s`` seconds or ``max_requests`` samples, and whose
    errors stop the run; ``record`` gets ``stages`` ([start_s, users] per change), ``stopped`` and ``error``."""
    record.update(stages=[], stopped="", error="")

    class Bounded(cls):  # type: ignore[misc, valid-type]
        def tick(self) -> Any:
            now = time.perf_counter() - t0
            if now >= limit_s:
                record["stopped"] = f"the shape was still running at the time limit ({limit_s:g} s): stopped there"
                return None
            if len(samples) >= max_requests:
                record["stopped"] = f"the shape was stopped at the request limit ({max_requests})"
                return None
            try:
                tick = super().tick()
            except Exception as error:  # the user's code
                record["error"] = f"{cls.__name__}.tick() raised {type(error).__name__}: {error}"
                return None
            if tick is None:
                return None
            if (
                not isinstance(tick, (tuple, list))
                or len(tick) not in (2, 3)
                or not isinstance(tick[0], int)
                or tick[0] < 0
                or not isinstance(tick[1], (int, float))
                or tick[1] <= 0
            ):
                record["error"] = f"{cls.__name__}.tick() returned {tick!r}: expected (users, spawn_rate) or None"
                return None
            if not record["stages"] or record["stages"][-1][1] != tick[0]:
                record["stages"].append([now, tick[0]])
            return tick

    Bounded.__name__ = Bounded.__qualname__ = cls.__name__
    return Bounded()


def shape_levels(samples: list[list[Any]], stages: list[list[Any]], end_s: float) -> list[LoadLevel]:
    """One level per stage (a run of ticks with the same user count), in time order, over its time window; a
    request belongs to the stage in which it was sent."""
    levels: list[LoadLevel] = []
    for index, (start, users) in enumerate(stages):
        last = index == len(stages) - 1
        stop = end_s if last else stages[index + 1][0]
        part = [
            s for s in samples if (index == 0 or s[0] >= start) and (last or s[0] < stop)
        ]  # the first and last stage take any stragglers at the edges
        level = summary.level_from_samples(part, max(stop - start, 1e-9), int(users), None)
        levels.append(_with_window(level, start, stop))
    return levels


def _with_window(level: LoadLevel, start: float, stop: float) -> LoadLevel:
    import msgspec

    return msgspec.structs.replace(level, window_s=(round(start, 3), round(stop, 3)))
