"""PSNR, SSIM and MS-SSIM of an image pair (torchmetrics), and their median / worst over many pairs.

Images are read as RGB floats in [0, 1] (data range 1). MS-SSIM's standard form (5 scales, 11-pixel Gaussian)
needs images larger than 160 pixels a side; smaller images (64x64 test runs) use fewer scales (and, when even that
is too much, a smaller kernel), picked by :func:`ms_ssim_plan` and reported in the document's ``ms_ssim_note``.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from profkit.errors import ProfkitError

#: The standard MS-SSIM scale weights (Wang et al. 2003), coarsest last.
MS_SSIM_BETAS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
STANDARD_KERNEL = 11


@dataclass(frozen=True)
class MsSsimPlan:
    scales: int
    kernel: int

    @property
    def betas(self) -> tuple[float, ...]:
        chosen = MS_SSIM_BETAS[: self.scales]
        total = sum(chosen)
        return tuple(b / total for b in chosen)

    @property
    def standard(self) -> bool:
        return self.scales == len(MS_SSIM_BETAS) and self.kernel == STANDARD_KERNEL

    def note(self, height: int, width: int) -> str | None:
        if self.standard:
            return None
        return (
            f"MS-SSIM on {height}x{width} images uses {self.scales} scale{'s' if self.scales > 1 else ''} and a "
            f"Gaussian kernel of {self.kernel} pixels (the standard 5 scales and 11-pixel kernel need more than "
            "160 pixels a side)"
        )


def ms_ssim_plan(height: int, width: int) -> MsSsimPlan | None:
    """The standard 11-pixel kernel with the most scales this size allows, else smaller kernels (``None``: too
    small even for one scale of a 3-pixel kernel)."""
    side = min(height, width)
    for kernel in (11, 9, 7, 5, 3):
        for scales in range(len(MS_SSIM_BETAS), 0, -1):
            # torchmetrics' own size check, and the coarsest scale must still hold one kernel
            if side > (kernel - 1) * max(1, scales - 1) ** 2 and side // 2 ** (scales - 1) >= kernel:
                return MsSsimPlan(scales, kernel)
    return None


def load_image(path: Path) -> Any:
    """An image file as a ``1x3xHxW`` float tensor in [0, 1]."""
    import numpy as np
    import torch
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            array = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    except (OSError, UnidentifiedImageError) as error:
        raise ProfkitError(f"{path}: not a readable image ({error})") from error
    return torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).contiguous()


@dataclass(frozen=True)
class Scores:
    psnr_db: float  # math.inf for identical images
    ssim: float
    ms_ssim: float | None


def score_pair(reference: Any, other: Any, plan: MsSsimPlan | None) -> Scores:
    """PSNR (dB, infinite when identical), SSIM and MS-SSIM (``None`` when the images are too small) of two
    ``1x3xHxW`` tensors in [0, 1]."""
    import torch
    from torchmetrics.functional.image import (
        multiscale_structural_similarity_index_measure,
        peak_signal_noise_ratio,
        structural_similarity_index_measure,
    )

    if reference.shape != other.shape:
        raise ProfkitError(f"images differ in size ({_size(reference)} vs {_size(other)}): they cannot be compared")
    if torch.equal(reference, other):
        return Scores(math.inf, 1.0, 1.0 if plan is not None else None)
    psnr = float(peak_signal_noise_ratio(other, reference, data_range=1.0))
    ssim = float(structural_similarity_index_measure(other, reference, data_range=1.0))
    ms_ssim = None
    if plan is not None:
        ms_ssim = float(
            multiscale_structural_similarity_index_measure(
                other,
                reference,
                data_range=1.0,
                kernel_size=plan.kernel,
                sigma=1.5 * plan.kernel / STANDARD_KERNEL,  # torchmetrics sizes its Gaussian from sigma
                betas=plan.betas,
                normalize="relu",
            )
        )
    return Scores(psnr, ssim, ms_ssim)


def _size(image: Any) -> str:
    return f"{image.shape[-1]}x{image.shape[-2]}"


def summarize(values: list[float], higher_is_better: bool = True) -> tuple[float, float]:
    """``(median, worst)``; infinities (identical pairs) count as the best values."""
    worst = min(values) if higher_is_better else max(values)
    return statistics.median(values), worst
