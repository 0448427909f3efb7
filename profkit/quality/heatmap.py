"""Inline PNG data URIs for the report: an image, and the heat map of where two images differ (offline, no files)."""

from __future__ import annotations

import base64
import io
from typing import Any

#: Small images are enlarged (nearest neighbour) to at least this many pixels a side so a difference shows.
MIN_SIDE = 160


def _png_uri(array: Any) -> str:
    from PIL import Image

    image = Image.fromarray(array)
    side = min(image.size)
    if side < MIN_SIDE:
        factor = -(-MIN_SIDE // side)
        image = image.resize((image.size[0] * factor, image.size[1] * factor), Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def image_uri(image: Any) -> str:
    """A ``1x3xHxW`` float tensor in [0, 1] as a PNG data URI."""
    import numpy as np

    return _png_uri((image[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))


def difference_uri(reference: Any, other: Any) -> tuple[str, float]:
    """The heat map of ``|other - reference|`` (channel mean; black none, red, then yellow-white at the largest
    difference) and that largest difference (0-1) it is scaled to."""
    import numpy as np

    diff = (other - reference).abs().mean(dim=1)[0].numpy()
    peak = float(diff.max())
    scaled = diff / peak if peak > 0 else diff
    heat = np.stack([np.clip(scaled * 2, 0, 1), np.clip(scaled * 2 - 1, 0, 1), np.clip(scaled * 3 - 2, 0, 1)], -1)
    return _png_uri((heat * 255).round().astype(np.uint8)), peak
