"""The price table (built-in ``profkit/data/prices.json`` or the user's own) and the price of one run."""

from __future__ import annotations

import importlib.resources
from pathlib import Path
from typing import Any

import orjson

from profkit.errors import ConflictingSettings, SettingError
from profkit.jsonio import read_bytes

#: (source, USD per hour, detail): what ``analysis.bench.summary.cost_of`` turns into a cost per image.
Price = tuple[str, float, str]


def load_prices(path: Path | None = None) -> dict[str, Any]:
    """The built-in price table, or the one at ``path`` (checked: ``{"instances": [...]}``)."""
    if path is None:
        data = importlib.resources.files("profkit.data").joinpath("prices.json").read_bytes()
        return orjson.loads(data)
    try:
        table = orjson.loads(read_bytes(Path(path), "price table"))  # a regular file, size-bounded
    except (OSError, orjson.JSONDecodeError) as error:
        raise SettingError("price_table", f"{path}: cannot read it as JSON ({error})") from error
    if not isinstance(table, dict) or not isinstance(table.get("instances"), list):
        raise SettingError("price_table", f"{path}: expected {{'instances': [{{name, usd_per_hour, ...}}]}}")
    return table


def price_for(price_per_hour: float | None, instance: str | None, table: dict[str, Any] | None = None) -> Price | None:
    """(source, USD/hour, detail) from a price per hour or an instance of the table, or None."""
    if price_per_hour is not None and instance is not None:
        raise ConflictingSettings("price_per_hour", "instance")
    if price_per_hour is not None:
        if price_per_hour <= 0:
            raise SettingError("price_per_hour", f"must be positive (got {price_per_hour})")
        return "--price-per-hour", float(price_per_hour), "price given on the command line"
    if instance is None:
        return None
    table = table or load_prices()
    for row in table["instances"]:
        if row.get("name") == instance:
            detail = f"{row.get('gpu', '?')}, {row.get('region', '?')}, list price of {row.get('price_date', '?')}"
            return instance, float(row["usd_per_hour"]), detail
    names = ", ".join(str(row.get("name")) for row in table["instances"])
    raise SettingError(
        "instance",
        f"{instance}: not in the price table (known: {names}); or use {{price_per_hour}}",
        ("price_per_hour",),
    )
