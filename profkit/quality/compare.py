"""Configurations against the first (the reference): paired scores, summaries, drift, verdicts, Pareto front."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from profkit.errors import ProfkitError
from profkit.model.quality import ConfigQuality, LatentDrift, MetricSummary, PairScore, QualityDocument
from profkit.quality import metrics
from profkit.quality.drift import latent_drift
from profkit.quality.pairing import ImageSet, pair
from profkit.quality.pareto import pareto_points

#: Worst pairs shown side by side in the report, per configuration.
WORST_SHOWN = 3


@dataclass(frozen=True)
class WeightFiles:
    """Local weights of the optional metrics (``None``: that metric is not computed)."""

    clip_model: Path | None = None
    inception_weights: Path | None = None
    lpips_weights: Path | None = None


@dataclass
class Visual:
    """A worst pair for the report: both images and their difference heat map as data URIs."""

    key: str
    reference_uri: str
    image_uri: str
    difference_uri: str
    peak: float
    psnr_db: float | None
    ssim: float


@dataclass
class QualityOutcome:
    document: QualityDocument
    visuals: dict[str, list[Visual]] = field(default_factory=dict)  # config label -> worst pairs


def _summary(values: list[float], higher_is_better: bool = True) -> MetricSummary:
    median, worst = metrics.summarize(values, higher_is_better)
    return MetricSummary(median=_finite(median), worst=_finite(worst), pairs=len(values))


def _finite(value: float) -> float | None:
    return None if math.isinf(value) else value


def psnr_text(value: float | None) -> str:
    return "∞ (identical)" if value is None else f"{value:.1f} dB"


def verdict(reference: str, config: ConfigQuality) -> str:
    """``"fp16 is 1.9x faster; images differ from fp32 by PSNR 38.2 dB (median), SSIM 0.991"``."""
    speed = ""
    if config.speedup is not None:
        ratio = config.speedup if config.speedup >= 1 else 1 / config.speedup
        digits = 2 if ratio < 1.1 else 1  # "1.03x", not "1.0x faster"
        speed = f"{config.label} is {ratio:.{digits}f}x {'faster' if config.speedup >= 1 else 'slower'}; "
    if config.psnr_db.median is None:
        pairs = config.psnr_db.pairs
        return f"{speed}images are identical to {reference}'s ({pairs} pair{'s' if pairs != 1 else ''})"
    return (
        f"{speed}images differ from {reference} by PSNR {config.psnr_db.median:.1f} dB (median), "
        f"SSIM {config.ssim.median:.3f}"
    )


class _Images:
    """Each image file read once."""

    def __init__(self) -> None:
        self.cache: dict[Path, Any] = {}

    def __call__(self, path: Path) -> Any:
        if path not in self.cache:
            self.cache[path] = metrics.load_image(path)
        return self.cache[path]


def compare_sets(sets: Sequence[ImageSet], weights: WeightFiles = WeightFiles()) -> QualityOutcome:
    """Every set after the first against the first: pairs by prompt and seed, scores, drift, verdicts."""
    from profkit.quality import weighted

    reference, *others = sets
    read = _Images()
    clip = weighted.ClipScorer(weights.clip_model) if weights.clip_model is not None else None
    extractor = weighted.feature_extractor(weights.inception_weights) if weights.inception_weights else None
    lpips = weighted.lpips_metric(weights.lpips_weights) if weights.lpips_weights is not None else None
    first = read(next(iter(reference.images.values())).path)
    plan = metrics.ms_ssim_plan(first.shape[-2], first.shape[-1])
    notes: list[str] = []
    if plan is None:
        notes.append(f"MS-SSIM not computed: {first.shape[-1]}x{first.shape[-2]} images are too small")
    reference_clip = _clip_score(clip, reference, read)
    configs = []
    outcome = QualityOutcome(document=None)  # type: ignore[arg-type]
    for other in others:
        pairs, unmatched = pair(reference, other)
        scores = []
        visuals = []
        for found in pairs:
            ref_image, image = read(found.reference.path), read(found.other.path)
            score = metrics.score_pair(ref_image, image, plan)
            lpips_value = float(lpips(image, ref_image)) if lpips is not None else None
            scores.append(
                PairScore(
                    key=found.key,
                    prompt=found.reference.prompt,
                    seed=found.reference.seed,
                    reference_image=str(found.reference.path),
                    image=str(found.other.path),
                    psnr_db=_finite(score.psnr_db),
                    ssim=score.ssim,
                    ms_ssim=score.ms_ssim,
                    lpips=lpips_value,
                    identical=math.isinf(score.psnr_db),
                )
            )
        psnrs = [math.inf if s.psnr_db is None else s.psnr_db for s in scores]
        fid = kid = None
        if extractor is not None:
            fid, kid = weighted.fid_kid(
                [read(p.reference.path) for p in pairs], [read(p.other.path) for p in pairs], extractor
            )
        speedup = None
        if reference.seconds and other.seconds:
            speedup = reference.seconds / other.seconds
        config = ConfigQuality(
            label=other.label,
            source=str(other.source),
            pairs=scores,
            unmatched=unmatched,
            psnr_db=_summary(psnrs),
            ssim=_summary([s.ssim for s in scores]),
            ms_ssim=_summary([s.ms_ssim for s in scores if s.ms_ssim is not None]) if plan is not None else None,
            lpips=_summary([s.lpips for s in scores if s.lpips is not None], False) if lpips is not None else None,
            clip_score=_clip_score(clip, other, read),
            fid=fid,
            kid=kid,
            seconds=other.seconds,
            speedup=speedup,
            drift=_drift(reference, other, notes),
        )
        config = _with_verdict(reference.label, config)
        configs.append(config)
        worst = sorted(zip(psnrs, scores, pairs, strict=True), key=lambda item: (item[0], item[1].ssim))[:WORST_SHOWN]
        for psnr, score, found in worst:
            if math.isinf(psnr):
                continue
            ref_image, image = read(found.reference.path), read(found.other.path)
            from profkit.quality.heatmap import difference_uri, image_uri

            heat, peak = difference_uri(ref_image, image)
            visuals.append(
                Visual(score.key, image_uri(ref_image), image_uri(image), heat, peak, score.psnr_db, score.ssim)
            )
        outcome.visuals[other.label] = visuals
    metric, points = _speed_points(reference, reference_clip, configs)
    outcome.document = QualityDocument(
        reference=reference.label,
        reference_source=str(reference.source),
        reference_seconds=reference.seconds,
        reference_clip_score=reference_clip,
        ms_ssim_note=plan.note(first.shape[-2], first.shape[-1]) if plan is not None else None,
        configs=configs,
        pareto_metric=metric,
        pareto=pareto_points(points) if metric is not None else [],
        notes=notes,
    )
    return outcome


def _drift(reference: ImageSet, other: ImageSet, notes: list[str]) -> LatentDrift | None:
    """The latent drift when both recorded latents; a record that cannot be compared is a note, not a failure."""
    if reference.latents is None or other.latents is None:
        return None
    try:
        return latent_drift(reference.latents, other.latents)
    except ProfkitError as error:
        notes.append(f"no latent drift for {other.label}: {error}")
        return None


def _with_verdict(reference: str, config: ConfigQuality) -> ConfigQuality:
    import msgspec

    return msgspec.structs.replace(config, verdict=verdict(reference, config))


def _clip_score(clip: Any, images: ImageSet, read: _Images) -> float | None:
    if clip is None:
        return None
    refs = list(images.images.values())
    return clip.score([read(r.path) for r in refs], [r.prompt or "" for r in refs])


def _speed_points(
    reference: ImageSet, reference_clip: float | None, configs: list[ConfigQuality]
) -> tuple[str | None, list[tuple[str, float, float | None]]]:
    """Latency against quality for every configuration with a latency (the reference: PSNR infinite, i.e. itself);
    the quality is the CLIP score when every point has one, else PSNR. ``None`` metric: fewer than two points."""
    timed = [c for c in configs if c.seconds is not None]
    if reference.seconds is None or not timed:
        return None, []
    if reference_clip is not None and all(c.clip_score is not None for c in timed):
        return "clip_score", [
            (reference.label, reference.seconds, reference_clip),
            *((c.label, c.seconds, c.clip_score) for c in timed),
        ]
    return "psnr_db", [
        (reference.label, reference.seconds, None),
        *((c.label, c.seconds, c.psnr_db.median) for c in timed),
    ]
