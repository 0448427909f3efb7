"""Published diffusion models rebuilt from their verbatim diffusers configs (shipped in ``profkit/data/models``)
with random weights: no download, and latency is that of the real model (it does not depend on weight values).

Every component is constructed directly on the target device in the target dtype (``torch.device`` context and
the default dtype set), so a 12B-parameter transformer never exists as an fp32 copy on the CPU first; on the
``meta`` device nothing is allocated at all (used to check parameter counts).
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterator
from typing import Any

import orjson

from profkit.pipelines.tokenizer import MODELS_DATA

# built-in name -> (shipped folder, description)
ARCHITECTURES: dict[str, tuple[str, str]] = {
    "sd15": ("sd15", "Stable Diffusion 1.5: CLIP-L, UNet 0.86B, VAE, PNDM (published configs, random weights)"),
    "sdxl": (
        "sdxl-base-1.0",
        "SDXL base 1.0: CLIP-L + OpenCLIP-bigG, UNet 2.57B, VAE, Euler (published configs, random weights)",
    ),
    "sd3-medium": (
        "sd3-medium",
        "SD3 medium: CLIP-L + CLIP-G + T5-XXL, MMDiT 2.03B, VAE, flow matching (published configs, random weights)",
    ),
    "flux-dev": (
        "flux1-dev",
        "FLUX.1-dev: CLIP-L + T5-XXL, transformer 11.9B, VAE, flow matching (published configs, random weights)",
    ),
}
SKIPPED_COMPONENTS = ("safety_checker", "feature_extractor", "image_encoder")


def read_config(folder: str, component: str = "", name: str = "config.json") -> dict[str, Any]:
    path = MODELS_DATA / folder / component / name if component else MODELS_DATA / folder / name
    return orjson.loads(path.read_bytes())


@contextlib.contextmanager
def building_on(device: Any, dtype: Any) -> Iterator[None]:
    """Modules created inside are allocated on ``device`` in ``dtype`` (floating parameters and buffers)."""
    import torch

    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            yield
    finally:
        torch.set_default_dtype(previous)


def _tokenizer(folder: str, component: str, class_name: str) -> Any:
    from profkit.pipelines.tokenizer import clip_tokenizer, t5_tokenizer

    config = read_config(folder, component, "tokenizer_config.json")
    return t5_tokenizer(config) if class_name.startswith("T5") else clip_tokenizer(config)


def _model(library: str, class_name: str, config: dict[str, Any]) -> Any:
    if library == "diffusers":
        import diffusers

        return getattr(diffusers, class_name).from_config(config)
    import transformers

    cls = getattr(transformers, class_name)
    # the published dtype (e.g. "float16" in SDXL's text_encoder_2) must not override the one being built in
    config = {key: value for key, value in config.items() if key not in ("torch_dtype", "dtype")}
    return cls(cls.config_class.from_dict(config))


def build_component(folder: str, component: str, library: str, class_name: str, device: Any, dtype: Any) -> Any:
    """One pipeline component from its shipped config: tokenizer, scheduler or a randomly initialised model."""
    if "Tokenizer" in class_name:
        return _tokenizer(folder, component, class_name)
    if component == "scheduler":
        import diffusers

        return getattr(diffusers, class_name).from_config(read_config(folder, component, "scheduler_config.json"))
    with building_on(device, dtype):
        return _model(library, class_name, read_config(folder, component))


def build_architecture(name: str, device: Any = "cpu", dtype: Any = None, components: tuple[str, ...] = ()) -> Any:
    """The pipeline ``name`` (a key of :data:`ARCHITECTURES`) with random weights built on ``device`` in ``dtype``;
    with ``components``, only those components, as a dict (e.g. ``("unet",)`` on ``meta`` to count parameters)."""
    import torch

    folder = ARCHITECTURES[name][0]
    dtype = dtype or torch.float32
    index = read_config(folder, name="model_index.json")
    parts = {key: value for key, value in index.items() if isinstance(value, list) and len(value) == 2}
    if components:
        return {key: build_component(folder, key, *parts[key], device, dtype) for key in components}
    torch.manual_seed(0)
    built = {
        key: None if key in SKIPPED_COMPONENTS else build_component(folder, key, library, cls, device, dtype)
        for key, (library, cls) in parts.items()
    }
    import diffusers

    pipeline_class = getattr(diffusers, index["_class_name"])
    accepted = inspect.signature(pipeline_class.__init__).parameters
    extras = {key: value for key, value in index.items() if key in accepted and key not in parts}
    if "requires_safety_checker" in accepted:
        extras["requires_safety_checker"] = False
    if "add_watermarker" in accepted:
        extras["add_watermarker"] = False
    return pipeline_class(**built, **extras)


def weight_bytes(name: str, dtype: Any) -> int:
    """Bytes of all parameters and buffers of the pipeline ``name`` in ``dtype`` (counted on ``meta``: no memory)."""
    folder = ARCHITECTURES[name][0]
    index = read_config(folder, name="model_index.json")
    models = tuple(
        key
        for key, value in index.items()
        if isinstance(value, list) and key not in (*SKIPPED_COMPONENTS, "scheduler") and "Tokenizer" not in value[1]
    )
    built = build_architecture(name, "meta", dtype, components=models)
    return sum(
        tensor.numel() * tensor.element_size()
        for module in built.values()
        for tensor in (*module.parameters(), *module.buffers())
    )


def free_memory(device: str) -> int | None:
    """Free bytes on ``device``: CUDA's free memory, or the CPU's ``MemAvailable``; ``None`` when unknown."""
    if device.startswith("cuda"):
        import torch

        return torch.cuda.mem_get_info(torch.device(device))[0]
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def check_fits(name: str, dtype: Any, device: str, available: int | None) -> None:
    """One clear line, before anything is allocated, when the weights alone exceed the free memory."""
    from profkit.errors import ProfkitError

    if available is None:
        return
    needed = weight_bytes(name, dtype)
    if needed > available:
        dtype_name = str(dtype).removeprefix("torch.")
        raise ProfkitError(
            f"{name} needs {needed / 1e9:.1f} GB for its weights in {dtype_name} alone, but {device} has "
            f"{available / 1e9:.1f} GB free: use a GPU with more memory, a smaller dtype, or a smaller model "
            f"(e.g. sd15 or tiny-sd)"
        )
