"""Energy per image from each measured call's counter reading (``Trial.energy_mj``): pure arithmetic.

Over a configuration's successful trials whose energy was captured: joules per image = total joules / images
(batch x trials), kWh per 1,000 images = joules per image x 1,000 / 3.6e6, mean watts = total joules / total
end-to-end seconds. No captured trial: ``None`` ("not captured").
"""

from __future__ import annotations

from profkit.model.bench import BenchResult, ConfigRun, Energy

JOULES_PER_KWH = 3.6e6


def energy_of(config: ConfigRun) -> Energy | None:
    """The energy of ``config``'s measured calls, or ``None`` when none was captured."""
    measured = [t for t in config.trials if t.ok and t.energy_mj is not None and t.e2e_ms is not None]
    if not measured:
        return None
    joules = sum(t.energy_mj for t in measured) / 1000.0  # type: ignore[misc]
    seconds = sum(t.e2e_ms for t in measured) / 1000.0  # type: ignore[misc]
    per_image = joules / (config.batch * len(measured))
    return Energy(
        trials=len(measured),
        joules=joules,
        seconds=seconds,
        joules_per_image=per_image,
        kwh_per_1000_images=per_image * 1000.0 / JOULES_PER_KWH,
        mean_watts=joules / seconds if seconds > 0 else 0.0,
    )


def energy_source(result: BenchResult) -> str:
    """Where a result's energy numbers come from, or why there are none."""
    if not any(t.energy_mj is not None for t in result.trials()):
        source = result.energy_source
        return source if source.startswith("not captured") else f"not captured ({source})"
    return result.energy_source
