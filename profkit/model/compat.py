"""Which metadata must match for two runs to be compared (the one checked-metadata list)."""

from __future__ import annotations

from typing import Any

#: Metadata paths that must match for two runs to be compared without --force.
COMPARABLE_KEYS: tuple[tuple[str, ...], ...] = (
    ("device", "type"),
    ("device", "name"),
    ("environment", "torch"),
    ("environment", "diffusers"),
)


def _lookup(data: dict[str, Any], path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def setup_differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """Hardware/software differences that make a comparison of two runs unfair."""
    differences = []
    for path in COMPARABLE_KEYS:
        left, right = _lookup(a, path), _lookup(b, path)
        if left is not None and right is not None and left != right:
            differences.append(f"{'.'.join(path)}: {left} vs {right}")
    return differences


def settings_differences(a: dict[str, Any], b: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """Capture settings that differ (the experiment itself: dtype, steps, size ...)."""
    left = {**(a.get("settings") or {}), "dtype": a.get("dtype")}
    right = {**(b.get("settings") or {}), "dtype": b.get("dtype")}
    ignored = {"dtypes", "out", "force"}
    keys = sorted((set(left) | set(right)) - ignored)
    return [(key, left.get(key), right.get(key)) for key in keys if left.get(key) != right.get(key)]
