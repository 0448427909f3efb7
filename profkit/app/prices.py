"""The price table (built-in ``profkit/data/prices.json`` or the user's own) and the price of one run.

The built-in table is generated from a cloud catalog snapshot (``scripts/generate_prices.py``). An instance is
named ``provider:instance_type`` (``aws:g5.xlarge``), by its instance type alone when that is unique
(``g5.xlarge``), or ``provider-instance_type`` (``aws-g5.xlarge``, the names of older tables). ``spot`` prices the
run at the spot price. :func:`price_warnings` says when the instance's GPUs are not the device that was measured.
"""

from __future__ import annotations

import difflib
import importlib.resources
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from profkit.errors import ConflictingSettings, SettingError
from profkit.jsonio import read_bytes

if TYPE_CHECKING:
    from profkit.model.bench import BenchResult, BenchSummary

#: (source, USD per hour, detail): what ``analysis.bench.summary.cost_of`` turns into a cost per image.
Price = tuple[str, float, str]
#: A device whose memory differs from the instance's GPU memory by more than this is another variant.
MEMORY_TOLERANCE = 0.2


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


def _names(row: dict[str, Any]) -> set[str]:
    """Every name ``row`` answers to, lower case."""
    names = {str(row.get("name", "")).lower()}
    provider, kind = row.get("provider"), row.get("instance_type")
    if provider and kind:
        names |= {f"{provider}:{kind}".lower(), f"{provider}-{kind}".lower()}
    return names - {""}


def find_instance(instance: str, table: dict[str, Any]) -> dict[str, Any]:
    """The row of ``instance`` (by name, provider:type, provider-type, or a type only one provider has)."""
    rows = [row for row in table["instances"] if isinstance(row, dict)]
    wanted = instance.strip().lower()
    exact = [row for row in rows if wanted in _names(row)]
    if len(exact) == 1:
        return exact[0]
    by_type = [row for row in rows if str(row.get("instance_type", "")).lower() == wanted]
    if len(by_type) == 1:
        return by_type[0]
    if len(exact) + len(by_type) > 1:
        choices = ", ".join(str(row.get("name")) for row in exact or by_type)
        raise SettingError("instance", f"{instance}: several instances have this name ({choices}): name one")
    names = [str(row.get("name")) for row in rows]
    close = difflib.get_close_matches(instance, names, n=4, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}?" if close else f"known: {', '.join(names[:6])} ..."
    raise SettingError(
        "instance",
        f"{instance}: not in the price table ({hint}; names are provider:instance_type, see profkit/data/prices.json); "
        "or use {price_per_hour}",
        ("price_per_hour",),
    )


def _hourly(row: dict[str, Any], spot: bool, instance: str) -> float:
    key = "spot_usd_per_hour" if spot else "usd_per_hour"
    value = row.get(key)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
        kind = "spot" if spot else "on-demand"
        raise SettingError("spot" if spot else "instance", f"{instance}: the price table has no {kind} price for it")
    return float(value)


def gpu_of(row: dict[str, Any]) -> tuple[str | None, int | None]:
    """(GPU model, GPU count) of a row: its own fields, else parsed from ``gpu`` ("8x NVIDIA A100 40GB")."""
    model, count = row.get("gpu_model"), row.get("gpu_count")
    match = re.match(r"\s*(\d+)\s*x\s*(.*)", str(row.get("gpu") or ""))
    if match and count is None:
        count = int(match.group(1))
    if match and model is None:
        words = [w for w in re.split(r"[\s-]+", match.group(2)) if re.fullmatch(r"[A-Za-z]+\d+[A-Za-z]*", w)]
        model = words[0] if words else None
    return (str(model) if model else None), (int(count) if isinstance(count, int) else None)


def _detail(row: dict[str, Any], per_hour: float, spot: bool) -> str:
    _, count = gpu_of(row)
    parts = [str(row.get("gpu", "?")), str(row.get("region", "?"))]
    parts.append(f"{'spot' if spot else 'on-demand'} price of {row.get('price_date', '?')}")
    if count and count > 1:
        parts.append(f"{per_hour / count:.4g} USD per GPU-hour")
    if row.get("note"):
        parts.append(str(row["note"]))
    return ", ".join(parts)


def price_for(
    price_per_hour: float | None, instance: str | None, table: dict[str, Any] | None = None, spot: bool = False
) -> Price | None:
    """(source, USD/hour, detail) from a price per hour or an instance of the table (its spot price when
    ``spot``), or None."""
    if price_per_hour is not None and instance is not None:
        raise ConflictingSettings("price_per_hour", "instance")
    if spot and instance is None:
        raise SettingError("spot", "prices an instance of the price table: add {instance}", ("instance",))
    if price_per_hour is not None:
        if price_per_hour <= 0:
            raise SettingError("price_per_hour", f"must be positive (got {price_per_hour})")
        return "--price-per-hour", float(price_per_hour), "price given on the command line"
    if instance is None:
        return None
    row = find_instance(instance, table or load_prices())
    per_hour = _hourly(row, spot, instance)
    return instance, per_hour, _detail(row, per_hour, spot)


def _model_in(model: str, device_name: str) -> bool:
    return re.search(rf"(?<![A-Za-z0-9]){re.escape(model)}(?![A-Za-z0-9])", device_name, re.IGNORECASE) is not None


def instance_warnings(row: dict[str, Any], device_info: dict[str, Any], name: str) -> list[str]:
    """Why pricing a run measured on ``device_info`` as the instance ``row`` misleads: another GPU model or memory,
    a CPU run priced as a GPU instance, several GPUs of which the run used one."""
    model, count = gpu_of(row)
    if model is None:
        return []
    if device_info.get("type") != "cuda":
        return [
            f"the run was measured on a CPU ({device_info.get('name', 'unknown')}) and priced as {name} "
            f"({row.get('gpu', model)}): its cost says nothing about that instance"
        ]
    device_name = str(device_info.get("name", ""))
    warnings = []
    if not _model_in(model, device_name):
        warnings.append(
            f"the run was measured on {device_name or 'an unknown GPU'} and priced as {name} "
            f"({row.get('gpu', model)}): another GPU model, so that instance's cost per image is not what was measured"
        )
    memory_gb, total = row.get("gpu_memory_gb"), device_info.get("total_memory_bytes")
    if not warnings and isinstance(memory_gb, (int, float)) and isinstance(total, int) and memory_gb > 0:
        measured_gb = total / 2**30
        if abs(measured_gb - memory_gb) > MEMORY_TOLERANCE * memory_gb:
            warnings.append(
                f"the measured {device_name} has {measured_gb:.0f} GB, the GPUs of {name} {memory_gb:g} GB: "
                "another variant of the model"
            )
    if count and count > 1:
        warnings.append(
            f"{name} has {count} GPUs and the run used one: the cost per image assumes one copy of the pipeline on "
            f"the whole instance; with one copy per GPU it is {count} times lower"
        )
    return warnings


def price_warnings(
    result: BenchResult, instance: str | None, price_table: Path | None = None, table: dict[str, Any] | None = None
) -> list[str]:
    """:func:`instance_warnings` of the instance a run is priced as (none without an instance)."""
    if instance is None:
        return []
    row = find_instance(instance, table or load_prices(price_table))
    return instance_warnings(row, result.device_info or {"type": result.device}, instance)


def with_price_warnings(
    summary: BenchSummary, result: BenchResult, instance: str | None, price_table: Path | None = None
) -> BenchSummary:
    """``summary`` with the :func:`price_warnings` of its instance added (once)."""
    import msgspec

    extra = [w for w in price_warnings(result, instance, price_table) if w not in summary.warnings]
    return msgspec.structs.replace(summary, warnings=(*summary.warnings, *extra)) if extra else summary
