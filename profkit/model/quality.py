"""The quality document (kind ``profkit.quality``): how far the images of configurations differ from a reference.

One reference configuration (the first) against one or more others, images paired by prompt and seed: per-pair
PSNR / SSIM / MS-SSIM, their median and worst, optional weight-needing metrics (CLIP score, FID, KID, LPIPS) from
local files, per-step latent drift, and the speed-versus-quality points with the Pareto front. PSNR of identical
images is infinite; JSON has no infinity, so it is written as ``null`` with ``identical`` set on the pair.
"""

from __future__ import annotations

import msgspec

from profkit.model.base import Document


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
    seconds: float | None = None  # the configuration's latency (per call), when its run says
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
