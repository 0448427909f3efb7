"""Optimization knobs: the grid a run is asked for, the checks before any work, and applying them to a pipeline.

A :class:`~profkit.model.capture.KnobGrid` holds a list of values per knob (``--compile off,default``); its
cartesian product is the list of :class:`~profkit.model.capture.Knobs` of one A/B/C run (crossed with the dtypes
and steps lists by the caller).
:func:`check_knobs` refuses, before anything is loaded, what this device or install cannot do. Applying is in
two parts: :func:`prepare` changes a loaded pipeline once (scheduler, channels-last, torchao quantization, VAE
tiling, CPU offload, torch.compile of the denoiser, in that order); :func:`call_context` is entered around each
call (the SDPA backend and the TF32 switches are process-wide, so interleaved configurations set them per call).
``serve`` can take the same :class:`Knobs`.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

from profkit.errors import SettingError
from profkit.model.capture import KnobGrid, Knobs

DENOISER_ATTRS = ("unet", "transformer", "transformer_2", "prior", "decoder")
_ON = {"on": True, "true": True, "yes": True, "1": True, "off": False, "false": False, "no": False, "0": False}
#: The GPU generation fp8 matmuls need (Ada / Hopper).
FP8_CAPABILITY = (8, 9)


def switch_values(value: str, setting: str) -> tuple[bool, ...]:
    """``"off,on"`` -> ``(False, True)`` for an on/off knob."""
    parts = [part.strip().lower() for part in value.split(",") if part.strip()]
    try:
        return tuple(_ON[part] for part in parts)
    except KeyError as error:
        raise SettingError(setting, f"takes on, off or a comma list of them (got {value!r})") from error


def scheduler_values(value: str) -> tuple[str | None, ...]:
    """``"default,euler_discrete"``-like lists -> class names (``None``: the pipeline's own), each checked."""
    names = []
    for part in (p.strip() for p in value.split(",")):
        if part:
            names.append(None if part.lower() in ("default", "pipeline") else scheduler_class(part).__name__)
    return tuple(names)


def _scheduler_names() -> list[str]:
    import diffusers

    return sorted(name for name in dir(diffusers) if name.endswith("Scheduler") and not name.startswith("_"))


def scheduler_class(name: str) -> type:
    """The diffusers scheduler class called ``name`` (case, "_" and "-" ignored; the "Scheduler" suffix optional)."""
    import diffusers

    known = {n.lower(): n for n in _scheduler_names()}
    wanted = name.lower().replace("_", "").replace("-", "")
    wanted = wanted if wanted.endswith("scheduler") else wanted + "scheduler"
    if wanted not in known:
        examples = ", ".join(n for n in ("EulerDiscreteScheduler", "DPMSolverMultistepScheduler", "DDIMScheduler"))
        raise SettingError("scheduler", f"{name!r} is not a diffusers scheduler class (e.g. {examples}, or default)")
    try:
        cls = getattr(diffusers, known[wanted])
    except Exception as error:  # a class whose optional dependency (scipy, torchsde ...) is missing
        raise SettingError("scheduler", f"{known[wanted]} cannot be loaded here: {error}") from error
    if not hasattr(cls, "from_config"):
        raise SettingError("scheduler", f"{known[wanted]} is not a scheduler class")
    return cls


def _cuda_capability(device: str) -> tuple[int, int] | None:
    import torch

    if not device.startswith("cuda") or not torch.cuda.is_available():
        return None
    return tuple(torch.cuda.get_device_capability(torch.device(device)))  # type: ignore[return-value]


def check_knobs(knobs: Sequence[Knobs], device: str, warmup: int, dtypes: Sequence[str] = ()) -> None:
    """Refuse, before any work, a knob this device or install cannot do (one :class:`SettingError`); ``dtypes`` are
    crossed with every knob combination."""
    cuda = device.startswith("cuda")
    for knob in knobs:
        if cuda and knob.attention in ("flash", "cudnn") and "fp32" in dtypes:
            raise SettingError(
                "attention",
                f"{knob.attention} on CUDA needs {{dtypes}} fp16 or bf16 (torch has no fp32 kernel for it)",
                ("dtypes",),
            )
        if knob.attention in ("efficient", "cudnn") and not cuda:
            raise SettingError(
                "attention", f"{knob.attention} needs a CUDA device (torch has no CPU kernel for it; use math or flash)"
            )
        if knob.quantize != "off" and importlib.util.find_spec("torchao") is None:
            raise SettingError(
                "quantize", f"{knob.quantize} needs torchao, which is not installed (pip install torchao)"
            )
        if knob.quantize == "fp8":
            capability = _cuda_capability(device)
            if capability is None or capability < FP8_CAPABILITY:
                found = f"compute capability {capability[0]}.{capability[1]}" if capability else device
                raise SettingError("quantize", f"fp8 needs an NVIDIA GPU of compute capability 8.9 or later ({found})")
        if knob.cpu_offload:
            if not cuda:
                raise SettingError("cpu_offload", "needs a CUDA device (it moves each model to the GPU when it runs)")
            if importlib.util.find_spec("accelerate") is None:
                raise SettingError("cpu_offload", "needs the accelerate package, which is not installed")
        if knob.compile != "off" and warmup < 1:
            raise SettingError("warmup", "must be at least 1 with {compile}: the first call compiles", ("compile",))
        if knob.scheduler is not None:
            scheduler_class(knob.scheduler)


def denoisers(pipeline: Any) -> list[Any]:
    return [getattr(pipeline, attr) for attr in DENOISER_ATTRS if getattr(pipeline, attr, None) is not None]


def _quantize_config(mode: str) -> Any:
    from torchao import quantization

    return {
        "int8-weight": quantization.Int8WeightOnlyConfig,
        "int8-dynamic": quantization.Int8DynamicActivationInt8WeightConfig,
        "fp8": quantization.Float8DynamicActivationFloat8WeightConfig,
    }[mode]()


def prepare(pipeline: Any, knobs: Knobs, device: str) -> None:
    """Apply the load-time knobs to a loaded pipeline, in place."""
    import torch

    if knobs.scheduler is not None:
        pipeline.scheduler = scheduler_class(knobs.scheduler).from_config(pipeline.scheduler.config)
    models = denoisers(pipeline)
    vae = getattr(pipeline, "vae", None)
    if knobs.channels_last:
        for module in [*models, vae]:
            if module is not None:
                module.to(memory_format=torch.channels_last)
    if knobs.quantize != "off":
        from torchao.quantization import quantize_

        for module in models:
            quantize_(module, _quantize_config(knobs.quantize))
    if knobs.vae_tiling and vae is not None:
        vae.enable_tiling()
    if knobs.cpu_offload:
        pipeline.enable_model_cpu_offload(device=device)
    if knobs.compile != "off":
        mode = None if knobs.compile == "default" else knobs.compile
        for module in models:  # the instance's forward: profkit's ranges stay outside the compiled code
            module.forward = torch.compile(module.forward, mode=mode)


@contextmanager
def call_context(knobs: Knobs) -> Iterator[None]:
    """Around one pipeline call: the SDPA backend forced and the TF32 switches set, both restored after."""
    import torch

    with ExitStack() as stack:
        if knobs.attention != "auto":
            from torch.nn.attention import SDPBackend, sdpa_kernel

            backend = {
                "flash": SDPBackend.FLASH_ATTENTION,
                "efficient": SDPBackend.EFFICIENT_ATTENTION,
                "cudnn": SDPBackend.CUDNN_ATTENTION,
                "math": SDPBackend.MATH,
            }[knobs.attention]
            stack.enter_context(sdpa_kernel(backend))
        if knobs.tf32:
            saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)

            def restore() -> None:
                torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved

            stack.callback(restore)
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        yield


__all__ = ["KnobGrid", "Knobs", "call_context", "check_knobs", "prepare", "scheduler_class"]
