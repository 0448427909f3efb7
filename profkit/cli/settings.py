"""Turning the flags that capture and bench share into setting values (prompts, comma lists)."""

from __future__ import annotations

from pathlib import Path

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
