"""The flags that capture, bench and serve share: the knob options, and turning flags into setting values."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from profkit.errors import ConflictingSettings, SettingError


def prompts_from(prompt: str | None, prompts_file: Path | None) -> tuple[str, ...]:
    """The prompts of ``--prompt`` or ``--prompts-file`` (one per line), or the default prompt."""
    from profkit.capture.settings import DEFAULT_PROMPT, read_prompts_file

    if prompt is not None and prompts_file is not None:
        raise ConflictingSettings("prompt", "prompts_file")
    if prompts_file is not None:
        return read_prompts_file(prompts_file)
    return (prompt if prompt is not None else DEFAULT_PROMPT,)


def comma_list(value: str) -> tuple[str, ...]:
    """``"fp32, FP16"`` -> ``("fp32", "fp16")``."""
    return tuple(part.strip().lower() for part in value.split(",") if part.strip())


def comma_ints(value: str, setting: str) -> tuple[int, ...]:
    """``"1,2,4"`` -> ``(1, 2, 4)``; anything else is an error about ``setting``."""
    try:
        return tuple(int(part) for part in comma_list(value))
    except ValueError as error:
        raise SettingError(setting, f"takes integers separated by commas (got {value!r})") from error


KNOB_HELP = {
    "compile": "torch.compile of the denoiser: off, default, reduce-overhead, max-autotune, or a comma list.",
    "attention": "SDPA backend around each call: auto, flash, efficient, cudnn, math, or a comma list.",
    "channels_last": "Channels-last memory format for the denoiser and VAE: off, on, or off,on.",
    "tf32": "TF32 matmuls and convolutions (CUDA): off, on, or off,on.",
    "scheduler": "A diffusers scheduler class (e.g. EulerDiscreteScheduler), default, or a comma list.",
    "quantize": "torchao quantization of the denoiser: off, int8-weight, int8-dynamic, fp8, or a comma list.",
    "vae_tiling": "VAE tiling: off, on, or off,on.",
    "cpu_offload": "diffusers model CPU offload (CUDA): off, on, or off,on.",
}


#: each knob flag's default (the flag is ``--`` + the name with dashes)
KNOB_DEFAULTS = {
    "compile": "off",
    "attention": "auto",
    "channels_last": "off",
    "tf32": "off",
    "scheduler": "default",
    "quantize": "off",
    "vae_tiling": "off",
    "cpu_offload": "off",
}


def knob_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Give a typer command the knob flags where its ``knobs`` parameter stands; it receives them as one dict."""
    signature = inspect.signature(command, eval_str=True)
    options = [
        inspect.Parameter(
            name,
            inspect.Parameter.KEYWORD_ONLY,
            default=default,
            annotation=Annotated[str, typer.Option("--" + name.replace("_", "-"), help=KNOB_HELP[name])],
        )
        for name, default in KNOB_DEFAULTS.items()
    ]
    parameters: list[inspect.Parameter] = []
    for parameter in signature.parameters.values():
        keyword = parameter.replace(kind=inspect.Parameter.KEYWORD_ONLY)
        parameters += options if parameter.name == "knobs" else [keyword]

    @functools.wraps(command)
    def with_knobs(**kwargs: Any) -> Any:
        knobs = {name: kwargs.pop(name) for name in KNOB_DEFAULTS}
        return command(knobs=knobs, **kwargs)

    with_knobs.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    return with_knobs


def knob_grid(
    compile: str = "off",
    attention: str = "auto",
    channels_last: str = "off",
    tf32: str = "off",
    scheduler: str = "default",
    quantize: str = "off",
    vae_tiling: str = "off",
    cpu_offload: str = "off",
):  # -> KnobGrid
    """The knob flags' comma lists as one :class:`~profkit.capture.knobs.KnobGrid` (values checked)."""
    from profkit.capture.knobs import KnobGrid, scheduler_values, switch_values

    return KnobGrid(
        compile=comma_list(compile),
        attention=comma_list(attention),
        channels_last=switch_values(channels_last, "channels_last"),
        tf32=switch_values(tf32, "tf32"),
        scheduler=scheduler_values(scheduler) if scheduler.strip().lower() != "default" else (None,),
        quantize=comma_list(quantize),
        vae_tiling=switch_values(vae_tiling, "vae_tiling"),
        cpu_offload=switch_values(cpu_offload, "cpu_offload"),
    ).validate()
