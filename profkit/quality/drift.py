"""Per-step latent drift: the RMS distance between two runs' latents at the same step and seed."""

from __future__ import annotations

from pathlib import Path

from profkit.errors import ProfkitError
from profkit.model.quality import DriftStep, LatentDrift

#: A step "diverges" when the latents differ from the reference's by more than this share of their RMS norm.
DIVERGENCE = 0.01


def _read(path: Path) -> tuple[object, int]:
    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as data:
            return data["latents"].astype(np.float64), int(data["seed"])
    except (OSError, KeyError, ValueError) as error:
        raise ProfkitError(f"{path}: not a profkit latent record ({error})") from error


def latent_drift(reference: Path, other: Path, threshold: float = DIVERGENCE) -> LatentDrift:
    """Norm and distance at every step, over the batch images both hold (the first ones: same
    prompts and seed); refused when seeds, step counts or latent shapes differ."""
    import numpy as np

    ref, ref_seed = _read(reference)
    mine, seed = _read(other)
    if ref_seed != seed:
        raise ProfkitError(f"latents of {other} (seed {seed}) and {reference} (seed {ref_seed}) have different seeds")
    if ref.ndim != mine.ndim or ref.shape[2:] != mine.shape[2:]:
        raise ProfkitError(f"latents of {other} and {reference} differ in shape ({mine.shape[1:]} vs {ref.shape[1:]})")
    if len(ref) != len(mine):  # step i of a 20-step schedule is another timestep than step i of a 30-step one
        raise ProfkitError(
            f"latents of {other} ({len(mine)} steps) and {reference} ({len(ref)} steps) follow different schedules: "
            "per-step drift compares runs with the same number of steps"
        )
    batch = min(ref.shape[1], mine.shape[1]) if ref.ndim > 1 else None
    if batch is not None:
        ref, mine = ref[:, :batch], mine[:, :batch]
    steps = []
    for index in range(len(ref)):
        ref_norm = float(np.sqrt((ref[index] ** 2).mean()))
        norm = float(np.sqrt((mine[index] ** 2).mean()))
        distance = float(np.sqrt(((mine[index] - ref[index]) ** 2).mean()))
        relative = distance / ref_norm if ref_norm > 0 else (0.0 if distance == 0 else float("inf"))
        steps.append(DriftStep(step=index, norm=norm, reference_norm=ref_norm, distance=distance, relative=relative))
    diverges = next((s.step for s in steps if s.relative > threshold), None)
    return LatentDrift(steps=steps, threshold=threshold, diverges_at=diverges)
