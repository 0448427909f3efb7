"""LPIPS (AlexNet) without torchvision: torchmetrics' LPIPS computation over a backbone built here.

torchmetrics builds LPIPS's AlexNet through torchvision, whose PyPI wheels need a matching CUDA build of torch.
This module lays out the same twelve feature layers as torchvision's ``alexnet().features`` (so a torchvision
state dict loads unchanged) and borrows everything else from torchmetrics: the input scaling layer, the 1x1
linear heads with the weights torchmetrics ships (``lpips_models/alex.pth``), the backbone's slicing into five
ReLU outputs and the distance itself (``Alexnet.forward`` and ``_LPIPS.forward``, used as they are).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torchmetrics.functional.image import lpips as tm_lpips

#: feature channels after each of AlexNet's five ReLU slices (torchmetrics' ``chns`` for "alex")
CHANNELS = (64, 192, 384, 256, 256)
#: torchvision ``alexnet().features`` indices of each slice (torchmetrics' ``Alexnet``)
SLICES = (range(0, 2), range(2, 5), range(5, 8), range(8, 10), range(10, 12))
LINEAR_WEIGHTS = Path(tm_lpips.__file__).parent / "lpips_models" / "alex.pth"


def alexnet_features() -> nn.Sequential:
    """torchvision's AlexNet feature extractor, layer for layer (keys ``N.weight`` / ``N.bias`` match its own)."""
    return nn.Sequential(
        nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(64, 192, kernel_size=5, padding=2),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(192, 384, kernel_size=3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(384, 256, kernel_size=3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(256, 256, kernel_size=3, padding=1),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
    )


class AlexSlices(nn.Module):
    """The backbone cut into torchmetrics' five slices; its forward is torchmetrics' ``Alexnet.forward``."""

    forward = tm_lpips.Alexnet.forward

    def __init__(self, features: nn.Sequential) -> None:
        super().__init__()
        for number, layers in enumerate(SLICES, start=1):
            part = nn.Sequential()
            for index in layers:
                part.add_module(str(index), features[index])
            setattr(self, f"slice{number}", part)
        self.N_slices = len(SLICES)


class AlexLpips(nn.Module):
    """LPIPS with the "alex" network; its forward is torchmetrics' ``_LPIPS.forward``."""

    forward = tm_lpips._LPIPS.forward

    def __init__(self, features: nn.Sequential) -> None:
        super().__init__()
        self.pnet_type, self.spatial, self.resize = "alex", False, None
        self.scaling_layer = tm_lpips.ScalingLayer()
        self.chns = list(CHANNELS)
        self.L = len(CHANNELS)
        self.net = AlexSlices(features)
        for index, channels in enumerate(CHANNELS):
            setattr(self, f"lin{index}", tm_lpips.NetLinLayer(channels, use_dropout=True))
        self.lins = nn.ModuleList(getattr(self, f"lin{index}") for index in range(self.L))
        linear = torch.load(str(LINEAR_WEIGHTS), map_location="cpu", weights_only=True)
        missing = set(linear) - {key for key in self.state_dict() if key.startswith("lin")}
        if missing:
            raise RuntimeError(f"torchmetrics' LPIPS linear weights changed layout: {sorted(missing)}")
        self.load_state_dict(linear, strict=False)
        self.requires_grad_(False)
        self.eval()


def backbone_from_state(state: dict) -> nn.Sequential | str:
    """The feature extractor loaded from a torchvision ``alexnet`` state dict (``features.N.*`` or ``N.*`` keys),
    or what is wrong with the state dict."""
    features = alexnet_features()
    chosen = {}
    for key, expected in features.state_dict().items():
        found = state.get(f"features.{key}", state.get(key))
        if found is None:
            return f"holds no AlexNet backbone weights (no features.{key})"
        if not isinstance(found, torch.Tensor) or tuple(found.shape) != tuple(expected.shape):
            shape = tuple(found.shape) if isinstance(found, torch.Tensor) else type(found).__name__
            return f"features.{key} is {shape}, AlexNet's is {tuple(expected.shape)}"
        chosen[key] = found
    features.load_state_dict(chosen)
    return features
