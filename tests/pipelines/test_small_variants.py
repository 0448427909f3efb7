"""The tiny built-ins keep realistic proportions (32-64 wide heads, SD/SD3 block structure) and run on a CPU."""

from __future__ import annotations

import pytest

from profkit.pipelines import load_pipeline

TINY = ("tiny-sd", "tiny-dit")


@pytest.fixture(scope="module")
def loaded():
    return {name: load_pipeline(name, "fp32", "cpu") for name in TINY}


def _head_dims(module) -> set[int]:
    from diffusers.models.attention_processor import Attention

    return {block.inner_dim // block.heads for block in module.modules() if isinstance(block, Attention)}


def _text_head_dims(encoder) -> set[int]:
    config = encoder.config
    return {config.hidden_size // config.num_attention_heads}


@pytest.mark.parametrize("name", TINY)
def test_attention_heads_are_32_to_64_wide(loaded, name: str) -> None:
    pipeline = loaded[name].pipeline
    denoiser = pipeline.unet if name == "tiny-sd" else pipeline.transformer
    dims = _head_dims(denoiser)
    assert dims and all(32 <= dim <= 64 for dim in dims), dims
    encoders = [pipeline.text_encoder] + ([pipeline.text_encoder_2] if name == "tiny-dit" else [])
    for encoder in encoders:
        assert all(32 <= dim <= 64 for dim in _text_head_dims(encoder))


def test_tiny_sd_has_no_attention_at_full_resolution(loaded) -> None:
    # as in SDXL: attention at full latent resolution is what made the old tiny UNet attention-bound on a GPU
    unet = loaded["tiny-sd"].pipeline.unet
    assert not _head_dims(unet.down_blocks[0]) and not _head_dims(unet.up_blocks[-1])
    assert _head_dims(unet.down_blocks[1]) and _head_dims(unet.mid_block)


@pytest.mark.parametrize("name", TINY)
def test_small_variant_runs_a_call_on_cpu(loaded, name: str) -> None:
    import torch

    pipeline = loaded[name].pipeline
    output = pipeline(
        prompt="a photo of a cat",
        num_inference_steps=2,
        height=64,
        width=64,
        generator=torch.Generator().manual_seed(0),
        output_type="np",
    )
    assert output.images.shape == (1, 64, 64, 3)
    assert loaded[name].weights == "random"


def test_built_directly_in_half_precision_without_fp32_parameters() -> None:
    import torch

    from profkit.pipelines.architectures import build_component

    # sd15's VAE (84M parameters) for real on the CPU, in bf16: no fp32 parameter or buffer is left behind
    vae = build_component("sd15", "vae", "diffusers", "AutoencoderKL", "cpu", torch.bfloat16)
    tensors = [*vae.parameters(), *vae.buffers()]
    assert {tensor.dtype for tensor in tensors if tensor.is_floating_point()} == {torch.bfloat16}
    assert torch.get_default_dtype() == torch.float32
