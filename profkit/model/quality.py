"""The quality document (kind ``profkit.quality``): how far the images of configurations differ from a reference.

One reference configuration (the first) against one or more others, images paired by prompt and seed: per-pair
PSNR / SSIM / MS-SSIM, their median and worst, optional weight-needing metrics (CLIP score, FID, KID, LPIPS) from
local files, per-step latent drift, and the speed-versus-quality points with the Pareto front. PSNR of identical
images is infinite; JSON has no infinity, so it is written as ``null`` with ``identical`` set on the pair.
"""

from __future__ import annotations

import msgspec

from profkit.model.base import Document
from profkit.naming import safe_component

#: A bench run keeps each configuration's images (and latents) in ``<out>/images/<config folder>/``.
BENCH_IMAGES_DIR = "images"


def config_folder(config: str) -> str:
    """The folder name of a bench configuration's images (``"fp16 b1"`` -> ``"fp16_b1"``)."""
    return safe_component(config.replace(" ", "_"))


class PairScore(msgspec.Struct, frozen=True, kw_only=True):
    """One image pair (same prompt, seed and batch index): ``psnr_db`` ``None`` when the images are identical."""

    key: str
    prompt: str | None = None
    seed: int | None = None
    reference_image: str
    image: str
    psnr_db: float | None
    ssim: float
    ms_ssim: float | None = None
    lpips: float | None = None
    identical: bool = False


class MetricSummary(msgspec.Struct, frozen=True, kw_only=True):
    """Median and worst of one metric over the pairs (``None`` PSNR: every pair identical, i.e. infinite)."""

    median: float | None
    worst: float | None
    pairs: int


class DriftStep(msgspec.Struct, frozen=True, kw_only=True):
    """One denoise step: the latents' RMS norm here and in the reference, and their RMS distance."""

    step: int
    norm: float
    reference_norm: float
    distance: float
    relative: float  # distance / reference RMS norm


class LatentDrift(msgspec.Struct, frozen=True, kw_only=True):
    """Per-step latent drift against the reference; ``diverges_at`` the first step whose relative distance exceeds
    ``threshold`` (``None``: never)."""

    steps: list[DriftStep]
    threshold: float
    diverges_at: int | None


class ConfigQuality(msgspec.Struct, frozen=True, kw_only=True):
    """One configuration against the reference."""

    label: str
    source: str
    pairs: list[PairScore]
    unmatched: int = 0
    psnr_db: MetricSummary
    ssim: MetricSummary
    ms_ssim: MetricSummary | None = None
    lpips: MetricSummary | None = None
    clip_score: float | None = None
    fid: float | None = None
    kid: float | None = None
    seconds: float | None = None  # the configuration's latency per image (call time / batch), when its run says
    speedup: float | None = None  # reference seconds / seconds
    drift: LatentDrift | None = None
    verdict: str = ""


class ParetoPoint(msgspec.Struct, frozen=True, kw_only=True):
    label: str
    seconds: float
    quality: float | None  # PSNR (dB; None = identical, i.e. infinite) or CLIP score
    on_front: bool


class QualityDocument(Document, frozen=True, kw_only=True):
    """The reference, each configuration's scores against it, and the speed-versus-quality view."""

    KIND = "profkit.quality"
    VERSION = 1

    reference: str
    reference_source: str
    reference_seconds: float | None = None
    reference_clip_score: float | None = None
    ms_ssim_note: str | None = None
    configs: list[ConfigQuality]
    pareto_metric: str | None = None  # "psnr_db" or "clip_score"
    pareto: list[ParetoPoint] = msgspec.field(default_factory=list)
    notes: list[str] = msgspec.field(default_factory=list)


class QualityBrief(msgspec.Struct, frozen=True, kw_only=True):
    """The quality line a speed comparison carries: B's images against A's (medians; ``None`` PSNR: identical)."""

    reference: str
    pairs: int
    psnr_db_median: float | None
    psnr_db_worst: float | None
    ssim_median: float
    ms_ssim_median: float | None = None
    report: str | None = None  # the quality document's path

    @classmethod
    def of(cls, config: ConfigQuality, reference: str, report: str | None = None) -> QualityBrief:
        return cls(
            reference=reference,
            pairs=config.psnr_db.pairs,
            psnr_db_median=config.psnr_db.median,
            psnr_db_worst=config.psnr_db.worst,
            ssim_median=config.ssim.median if config.ssim.median is not None else 1.0,
            ms_ssim_median=config.ms_ssim.median if config.ms_ssim else None,
            report=report,
        )

    @property
    def phrase(self) -> str:
        """``"images differ from fp32 by PSNR 38.2 dB (median), SSIM 0.991"``."""
        if self.psnr_db_median is None:
            return f"images are identical to {self.reference}'s"
        return (
            f"images differ from {self.reference} by PSNR {self.psnr_db_median:.1f} dB (median), "
            f"SSIM {self.ssim_median:.3f}"
        )
