"""Which metadata must match for two results to be compared: the one checked-metadata list.

Modelled on pyperf's ``_CHECKED_METADATA``: :data:`CHECKED_METADATA` names the hardware and software that
must be the same on both sides of any comparison (``compare`` of two runs, ``bench``/``check`` against a
baseline); a value that differs, or is known on one side only, makes the results not comparable unless forced.
A regression gate also needs the same workload (:data:`GATED_SETTINGS`); ``compare`` and ``bench`` instead report
every setting that differs, since the settings are their experiment (:func:`settings_differences`,
:func:`flat_settings`: the run settings with each optimization knob as ``knob.<name>``), and warn when more than
the one under test differs (:func:`isolation_warning`): the first rule of method is to change one thing at a time.

Both sides are given as a *setup*: a mapping (or Struct) with ``environment``, ``device`` and ``settings`` parts,
as in a capture metadata document.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from profkit.model.capture import CaptureMetadata

#: ``part.key`` paths that must match for two results to be compared without forcing.
CHECKED_METADATA: tuple[str, ...] = (
    "device.type",
    "device.name",
    "environment.torch",
    "environment.diffusers",
    "environment.transformers",
    "environment.python",
    "environment.platform",
)

#: Settings that must also match for a regression gate (the same work measured twice).
GATED_SETTINGS: tuple[str, ...] = ("model", "steps", "height", "width", "prompts", "seed", "guidance_scale")

#: Settings that say where or how a capture was written, not what was measured.
_NOT_THE_EXPERIMENT = frozenset({"dtypes", "out", "force"})


def _builtins(setup: Any) -> Mapping[str, Any]:
    data = msgspec.to_builtins(setup)  # Structs, nested or not, become plain dicts and lists
    return data if isinstance(data, Mapping) else {}


def _lookup(data: Mapping[str, Any], path: str) -> Any:
    value: Any = data
    for key in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _differences(a: Any, b: Any, checks: list[tuple[str, str]], labels: tuple[str, str]) -> list[str]:
    """``"name: left vs right"`` for each ``(name, path)`` whose values differ."""
    left_setup, right_setup = _builtins(a), _builtins(b)
    differences = []
    for name, path in checks:
        left, right = _lookup(left_setup, path), _lookup(right_setup, path)
        if left != right:
            differences.append(f"{name}: {left}{labels[0]} vs {right}{labels[1]}")
    return differences


def setup_differences(a: Any, b: Any, labels: tuple[str, str] = ("", "")) -> list[str]:
    """The :data:`CHECKED_METADATA` that differ between two setups, one line each (``labels`` follow the values)."""
    return _differences(a, b, [(path, path) for path in CHECKED_METADATA], labels)


def baseline_differences(baseline: Any, now: Any) -> list[str]:
    """What makes a result not comparable with its baseline: the checked metadata, then the gated settings."""
    labels = (" (baseline)", " (now)")
    gated = [(f"setting {key}", f"settings.{key}") for key in GATED_SETTINGS]
    return setup_differences(baseline, now, labels) + _differences(baseline, now, gated, labels)


def flat_settings(settings: Any, dtype: str | None) -> dict[str, Any]:
    """The settings of one run as flat ``key -> value``: every knob as ``knob.<name>`` with its default filled in."""
    from profkit.model.capture import Knobs

    data = dict(_builtins(settings)) if settings is not None else {}
    knobs = data.pop("knobs", None) or {}
    flat = {**data, "dtype": dtype}
    defaults = msgspec.structs.asdict(Knobs())
    flat.update({f"knob.{key}": knobs.get(key, default) for key, default in defaults.items()})
    return flat


def differing(left: Mapping[str, Any], right: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """``(key, left, right)`` of every experiment setting whose values differ, keys sorted."""
    keys = sorted((set(left) | set(right)) - _NOT_THE_EXPERIMENT)
    return [(key, left.get(key), right.get(key)) for key in keys if left.get(key) != right.get(key)]


def settings_differences(a: CaptureMetadata, b: CaptureMetadata) -> list[tuple[str, Any, Any]]:
    """Capture settings that differ (the experiment itself: dtype, steps, size, knobs ...), as (key, a, b)."""
    return differing(flat_settings(a.settings, a.dtype), flat_settings(b.settings, b.dtype))


def isolation_warning(differences: list[tuple[str, Any, Any]], what: str = "A and B") -> str | None:
    """A warning when more than one setting differs (the effect of each cannot be told apart), else ``None``."""
    if len(differences) <= 1:
        return None
    names = ", ".join(key for key, _, _ in differences)
    return (
        f"{len(differences)} settings differ between {what} ({names}): a difference in speed cannot be put on any "
        "one of them; vary one setting at a time"
    )
