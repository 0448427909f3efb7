"""Metrics that need model weights, loaded only from local files (never downloaded):

- CLIP score: a local transformers CLIP folder (``CLIPModel`` + ``CLIPProcessor`` saved with ``save_pretrained``);
  100 x the cosine similarity of image and prompt embeddings, floored at 0 (as torchmetrics' ``CLIPScore``).
- FID and KID (torchmetrics): the feature extractor from a weights file: a TorchScript module (``torch.jit.save``
  of an Inception-v3 or any extractor mapping uint8 ``Nx3xHxW`` images to ``NxD`` features), or, with
  torch-fidelity installed, the FID Inception weights file (``pt_inception-2015-12-05``).
- LPIPS (torchmetrics' computation and linear heads): an AlexNet backbone from a local torchvision state dict file
  (the backbone is built in ``lpips_net``; torchvision is not needed).

A missing file is one error naming what to pass; hub downloads are switched off while loading.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from profkit.errors import SettingError


@contextmanager
def offline() -> Iterator[None]:
    """Hugging Face hub access off while local weights load (a wrong path must not become a download)."""
    saved = {key: os.environ.get(key) for key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    os.environ.update({key: "1" for key in saved})
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def require_file(setting: str, path: Path | None, what: str, folder: bool = False) -> Path:
    """``path`` when it exists (a folder when ``folder``), else one error naming the setting and what it wants."""
    if path is None or not (Path(path).is_dir() if folder else Path(path).is_file()):
        found = "not given" if path is None else f"{path} not found"
        raise SettingError(setting, f"must name {what} ({found}); profkit never downloads weights")
    return Path(path)


class ClipScorer:
    """CLIP score of images against their prompts, from a local CLIP folder."""

    def __init__(self, folder: Path) -> None:
        folder = require_file("clip_model", folder, "a local CLIP folder (transformers save_pretrained)", folder=True)
        from transformers import CLIPModel, CLIPProcessor

        try:
            with offline():
                self.model = CLIPModel.from_pretrained(str(folder), local_files_only=True).eval()
                self.processor = CLIPProcessor.from_pretrained(str(folder), local_files_only=True)
        except (OSError, ValueError) as error:
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise SettingError("clip_model", f"is not a loadable CLIP folder: {folder} ({first})") from error

    def score(self, images: Sequence[Any], prompts: Sequence[str]) -> float:
        """Mean CLIP score of ``images`` (``1x3xHxW`` floats in [0, 1]) against ``prompts``."""
        import torch

        pixels = [(image[0].permute(1, 2, 0).numpy() * 255).round().astype("uint8") for image in images]
        inputs = self.processor(text=list(prompts), images=pixels, return_tensors="pt", padding=True, truncation=True)
        with torch.no_grad():
            image_features = self.model.get_image_features(pixel_values=inputs["pixel_values"])
            text_features = self.model.get_text_features(
                input_ids=inputs["input_ids"], attention_mask=inputs.get("attention_mask")
            )
        image_features = _tensor(image_features)
        text_features = _tensor(text_features)
        image_features = image_features / image_features.norm(dim=-1, keepdim=True)
        text_features = text_features / text_features.norm(dim=-1, keepdim=True)
        scores = (100 * (image_features * text_features).sum(dim=-1)).clamp(min=0)
        return float(scores.mean())


def _tensor(output: Any) -> Any:
    """Feature tensors from ``get_*_features`` (a tensor, or an output object in newer transformers)."""
    if hasattr(output, "pooler_output") and not hasattr(output, "norm"):
        return output.pooler_output
    return output


def feature_extractor(path: Path) -> Any:
    """The FID/KID feature extractor a weights file holds (see the module docstring)."""
    path = require_file("inception_weights", path, "a local feature-extractor weights file")
    import torch

    try:
        module = torch.jit.load(str(path), map_location="cpu").eval()
    except RuntimeError:
        module = None
    if module is not None:
        return module
    try:
        from torchmetrics.image.fid import NoTrainInceptionV3

        return NoTrainInceptionV3(
            name="inception-v3-compat", features_list=["2048"], feature_extractor_weights_path=str(path)
        )
    except (ImportError, ModuleNotFoundError) as error:
        raise SettingError(
            "inception_weights",
            f"{path} is not a TorchScript feature extractor, and reading Inception weights needs torch-fidelity",
        ) from error


def fid_kid(reference: Sequence[Any], others: Sequence[Any], extractor: Any) -> tuple[float | None, float | None]:
    """FID and KID (mean) between two image sets (``1x3xHxW`` floats in [0, 1]); ``None`` where too few images."""
    import torch
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.kid import KernelInceptionDistance

    real = (torch.cat(list(reference)) * 255).round().to(torch.uint8)
    fake = (torch.cat(list(others)) * 255).round().to(torch.uint8)
    input_size = tuple(real.shape[1:])
    fid = kid = None
    if len(real) >= 2 and len(fake) >= 2:
        metric = FrechetInceptionDistance(feature=extractor, input_img_size=input_size)
        metric.update(real, real=True)
        metric.update(fake, real=False)
        fid = float(metric.compute())
        subset = min(len(real), len(fake))
        kid_metric = KernelInceptionDistance(feature=extractor, subset_size=subset, subsets=10)
        kid_metric.update(real, real=True)
        kid_metric.update(fake, real=False)
        kid = float(kid_metric.compute()[0])
    return fid, kid


def lpips_metric(path: Path) -> Any:
    """LPIPS (AlexNet) with torchmetrics' computation and linear heads over a backbone read from a local file: a
    torchvision ``alexnet`` state dict (``features.N.weight`` keys, or ``N.weight`` for the features alone).
    torchvision is not needed (``lpips_net``); nothing is downloaded. Returns ``lpips(image, reference)`` for
    ``1x3xHxW`` floats in [0, 1]."""
    path = require_file("lpips_weights", path, "a local AlexNet backbone weights file (torchvision state dict)")
    import torch

    from profkit.quality.lpips_net import AlexLpips, backbone_from_state

    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as error:  # torch.load raises many kinds for a file that is not a state dict
        raise SettingError(
            "lpips_weights", f"{path} is not a loadable weights file ({type(error).__name__})"
        ) from error
    state = state.get("state_dict", state) if isinstance(state, dict) else {}
    backbone = backbone_from_state(state)
    if isinstance(backbone, str):
        raise SettingError("lpips_weights", f"{path} {backbone}")
    network = AlexLpips(backbone)

    def lpips(image: Any, reference: Any) -> float:
        with torch.no_grad():
            return float(network(image, reference, normalize=True).mean())

    return lpips
