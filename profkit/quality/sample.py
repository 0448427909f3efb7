"""A load test's image sample: after the measured levels, the request template is sent once more (untimed) and the
images of its answer are kept with the prompt and seed the request named, so ``profkit quality`` can compare two
load-test runs (``LOAD/images/image_000.png ...`` and ``LOAD/images/sample.json``).

Bounded: one request's images, at most :data:`MOST_IMAGES`. A request without a seed gives images that cannot be
paired with another run's; the sample is then kept with ``seed: null`` and a note says so.
"""

from __future__ import annotations

import base64
import binascii
import io
from pathlib import Path
from typing import Any

import msgspec

#: The folder of a load run that holds the sample, and its description.
SAMPLE_DIR = "images"
SAMPLE_FILE = "sample.json"
#: The most images kept from the sample request.
MOST_IMAGES = 8


class LoadSample(msgspec.Struct, frozen=True, kw_only=True):
    """What the sample request asked for: its images were generated from this prompt and seed."""

    prompt: str | None = None
    seed: int | None = None
    images: list[str] = msgspec.field(default_factory=list)  # file names, in answer order


def _request_fields(body: Any) -> tuple[str | None, int | None]:
    """(prompt, seed) of a request body (a JSON object or its text); ``None`` where it names none."""
    if isinstance(body, (str, bytes)):
        try:
            body = msgspec.json.decode(body)
        except msgspec.DecodeError:
            return None, None
    if not isinstance(body, dict):
        return None, None
    prompt, seed = body.get("prompt"), body.get("seed")
    return (prompt if isinstance(prompt, str) else None), (seed if isinstance(seed, int) else None)


def _decoded_images(answer: bytes) -> list[bytes]:
    """The images of an OpenAI-style images answer (``{"data": [{"b64_json": ...}]}``)."""
    try:
        data = msgspec.json.decode(answer)
    except msgspec.DecodeError:
        return []
    items = data.get("data") if isinstance(data, dict) else None
    found = []
    for item in items if isinstance(items, list) else []:
        encoded = item.get("b64_json") if isinstance(item, dict) else None
        if isinstance(encoded, str):
            try:
                found.append(base64.b64decode(encoded, validate=True))
            except (binascii.Error, ValueError):
                continue
    return found[:MOST_IMAGES]


def keep_sample(url: str, template: dict[str, Any], folder: Path, timeout_s: float = 60.0) -> str:
    """Send ``template``'s request to ``url`` once and keep its images in ``folder/images``; returns one line saying
    what was kept or why nothing was (a failed sample never fails the load test)."""
    import urllib.error
    import urllib.request

    from PIL import Image, UnidentifiedImageError

    from profkit.jsonio import write_bytes

    body = template.get("body")
    data = msgspec.json.encode(body) if isinstance(body, (dict, list)) else (body.encode() if body else None)
    headers = {"Content-Type": "application/json", **template.get("headers", {})}
    request = urllib.request.Request(url, data=data, headers=headers, method=template.get("method", "POST"))
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            answer = response.read()
    except (OSError, urllib.error.URLError) as error:
        return f"no image sample kept: the sample request failed ({error})"
    target = folder / SAMPLE_DIR
    names = []
    for index, raw in enumerate(_decoded_images(answer)):
        try:
            with Image.open(io.BytesIO(raw)) as image:
                buffer = io.BytesIO()
                image.save(buffer, format="PNG")
        except (OSError, UnidentifiedImageError):
            continue
        names.append(f"image_{index:03d}.png")
        write_bytes(target / names[-1], buffer.getvalue(), force=True)
    if not names:
        return "no image sample kept: the answer held no b64_json images"
    prompt, seed = _request_fields(body)
    write_bytes(target / SAMPLE_FILE, msgspec.json.encode(LoadSample(prompt=prompt, seed=seed, images=names)), True)
    unseeded = "" if seed is not None else " (the request names no seed: other runs' images cannot be paired)"
    return f"kept {len(names)} sample image(s) for profkit quality in {target}{unseeded}"


def read_sample(folder: Path) -> LoadSample | None:
    """The sample description of a load run (``None`` when the run kept none)."""
    path = folder / SAMPLE_DIR / SAMPLE_FILE
    if not path.is_file():
        return None
    from profkit.errors import ProfkitError
    from profkit.jsonio import read_bytes

    try:
        return msgspec.json.decode(read_bytes(path, "load sample"), type=LoadSample)
    except (msgspec.DecodeError, msgspec.ValidationError) as error:
        raise ProfkitError(f"{path}: not a profkit load sample ({error})") from error
