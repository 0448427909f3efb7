"""Load a pipeline by name (built-in), folder (``from_pretrained``) or hub id, in a dtype on a device."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from profkit.errors import ProfkitError, SettingError
from profkit.pipelines.architectures import ARCHITECTURES, build_architecture, check_fits, free_memory
from profkit.pipelines.builtin import BUILDERS

DTYPES: dict[str, str] = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


@dataclass
class LoadedPipeline:
    pipeline: Any
    model: str  # what the user asked for
    source: str  # "builtin", "folder" or "hub"
    load_seconds: float

    @property
    def weights(self) -> str:
        """``random`` for the built-ins (timings are real, images are noise), else ``pretrained``."""
        return "random" if self.source == "builtin" else "pretrained"


def resolve_device(requested: str) -> str:
    """``auto`` means CUDA when available, else CPU. An explicit ``cuda`` without a GPU is an error."""
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise SettingError("device", f"{requested} was asked for, but torch sees no CUDA GPU on this machine")
    if requested not in ("cpu",) and not requested.startswith("cuda"):
        raise ProfkitError(f"unknown device {requested!r}: use auto, cpu, cuda or cuda:N")
    return requested


def torch_dtype(name: str):  # -> torch.dtype
    import torch

    if name not in DTYPES:
        raise ProfkitError(f"unknown dtype {name!r}: use one of {', '.join(DTYPES)}")
    return getattr(torch, DTYPES[name])


#: loggers whose import-time chatter is not the user's business: torchao's optional native kernels built for other
#: CUDA/Python versions ("Failed to load ..._C_cutlass_90a.abi3.so"), torch's pytree deprecation notes on its enums
CHATTY_LOGGERS = ("torchao", "torch.utils._pytree", "diffusers", "transformers", "huggingface_hub")


def _quiet_libraries() -> None:
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.set_verbosity_error()
    transformers_logging.set_verbosity_error()
    diffusers_logging.disable_progress_bar()  # "Loading pipeline components..." bars
    transformers_logging.disable_progress_bar()  # "Loading weights" bars


def dtype_keyword() -> str:
    """``dtype`` where this diffusers takes it (``torch_dtype`` is deprecated there), else ``torch_dtype``."""
    try:
        from diffusers.utils.deprecation_utils import _resolve_dtype  # noqa: F401
    except ImportError:
        return "torch_dtype"
    return "dtype"


def hub_failure(model: str, reason: str) -> str:
    """One line for a hub id that could not be fetched (offline, unknown or gated)."""
    from profkit.pipelines.builtin import BUILTIN_MODELS

    if any(mark in reason for mark in ("outgoing traffic has been disabled", "not fully cached", "offline")):
        reason = "offline, and it is not in the local cache"
    elif len(reason) > 160:
        reason = reason[:157] + "..."
    return (
        f"could not download {model!r} from the Hugging Face Hub ({reason}); pass a local diffusers folder instead "
        f"(one with model_index.json, e.g. made by `huggingface-cli download {model} --local-dir DIR` where there is "
        f"network), or a built-in: {', '.join(BUILTIN_MODELS)}"
    )


def load_pipeline(
    model: str, dtype: str = "fp32", device: str = "cpu", available: Callable[[str], int | None] = free_memory
) -> LoadedPipeline:
    """Build or load ``model`` and move it to ``device`` in ``dtype``. A published architecture is first checked
    against ``available(device)`` free bytes (an injectable reader), so it fails in one line rather than mid-way."""
    _quiet_libraries()
    target_dtype = torch_dtype(dtype)
    started = time.perf_counter()
    if model in ARCHITECTURES:
        check_fits(model, target_dtype, device, available(device))
        pipeline = build_architecture(model, device, target_dtype)
        source = "builtin"
    elif model in BUILDERS:
        pipeline = BUILDERS[model]()
        source = "builtin"
        pipeline = pipeline.to(device=device, dtype=target_dtype)
    else:
        from diffusers import DiffusionPipeline

        path = Path(model)
        source = "folder" if path.exists() else "hub"
        if source == "folder" and not (path / "model_index.json").is_file():
            raise ProfkitError(f"{model} is not a diffusers pipeline folder (no model_index.json in it)")
        try:
            pipeline = DiffusionPipeline.from_pretrained(model, **{dtype_keyword(): target_dtype})
        except OSError as error:
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            if source == "hub":
                raise ProfkitError(hub_failure(model, first_line)) from error
            raise ProfkitError(f"could not load pipeline {model!r}: {first_line}") from error
        pipeline = pipeline.to(device)
    if hasattr(pipeline, "set_progress_bar_config"):
        pipeline.set_progress_bar_config(disable=True)
    return LoadedPipeline(pipeline, model, source, time.perf_counter() - started)
