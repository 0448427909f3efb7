"""Tiny text-to-image pipelines built from small configs with seeded random weights.

They run offline on a CPU in about a second and have the real structure of their big siblings:
``tiny-sd`` is a Stable Diffusion pipeline (CLIP text encoder, UNet2DConditionModel, AutoencoderKL,
DDIM scheduler); ``tiny-dit`` is a Stable Diffusion 3 pipeline (two CLIP text encoders, an MMDiT
``SD3Transformer2DModel``, AutoencoderKL, flow-matching Euler scheduler). The images are noise: only
the work they do matters.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from profkit.pipelines.architectures import ARCHITECTURES

BUILTIN_MODELS: dict[str, str] = {
    "tiny-sd": "Stable Diffusion structure: CLIP text encoder, UNet denoiser, VAE, DDIM (built in, offline)",
    "tiny-dit": "SD3 structure: two CLIP text encoders, MMDiT transformer denoiser, VAE (built in, offline)",
    **{name: description for name, (_folder, description) in ARCHITECTURES.items()},
}
RANDOM_WEIGHTS_NOTE = "random weights: timings are real, images are noise"
DEFAULT_MODEL = "tiny-sd"
WEIGHT_SEED = 0


def _clip_config(vocab_size: int, bos: int, eos: int):  # -> CLIPTextConfig
    from transformers import CLIPTextConfig

    # A fresh config per model: transformers mutates config.dtype when a model is cast.
    return CLIPTextConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=77,
        bos_token_id=bos,
        eos_token_id=eos,
        pad_token_id=eos,
        projection_dim=32,
    )


def _vae(**extra: Any):  # -> AutoencoderKL
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        block_out_channels=(32, 64),
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=32,
        sample_size=64,
        **extra,
    )


def build_tiny_sd():  # -> StableDiffusionPipeline
    import torch
    from diffusers import DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel

    from profkit.pipelines.tokenizer import make_clip_tokenizer

    with tempfile.TemporaryDirectory(prefix="profkit-tok-") as folder:
        tokenizer = make_clip_tokenizer(Path(folder))
    torch.manual_seed(WEIGHT_SEED)
    text_encoder = CLIPTextModel(_clip_config(len(tokenizer), tokenizer.bos_token_id, tokenizer.eos_token_id))
    unet = UNet2DConditionModel(
        sample_size=32,
        in_channels=4,
        out_channels=4,
        layers_per_block=1,
        block_out_channels=(32, 64),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=8,
        norm_num_groups=32,
    )
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    return StableDiffusionPipeline(
        vae=_vae(),
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def build_tiny_dit():  # -> StableDiffusion3Pipeline
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel, StableDiffusion3Pipeline
    from transformers import CLIPTextModelWithProjection

    from profkit.pipelines.tokenizer import make_clip_tokenizer

    with tempfile.TemporaryDirectory(prefix="profkit-tok-") as folder:
        tokenizer = make_clip_tokenizer(Path(folder))
        tokenizer_2 = make_clip_tokenizer(Path(folder))
    torch.manual_seed(WEIGHT_SEED)
    ids = (len(tokenizer), tokenizer.bos_token_id, tokenizer.eos_token_id)
    text_encoder = CLIPTextModelWithProjection(_clip_config(*ids))
    text_encoder_2 = CLIPTextModelWithProjection(_clip_config(*ids))
    transformer = SD3Transformer2DModel(
        sample_size=32,
        patch_size=2,
        in_channels=4,
        num_layers=2,
        attention_head_dim=8,
        num_attention_heads=4,
        caption_projection_dim=32,
        joint_attention_dim=32,
        pooled_projection_dim=64,
        out_channels=4,
    )
    vae = _vae(shift_factor=0.0609, scaling_factor=1.5035, use_quant_conv=False, use_post_quant_conv=False)
    return StableDiffusion3Pipeline(
        transformer=transformer,
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        text_encoder_2=text_encoder_2,
        tokenizer_2=tokenizer_2,
        text_encoder_3=None,
        tokenizer_3=None,
    )


BUILDERS = {"tiny-sd": build_tiny_sd, "tiny-dit": build_tiny_dit}
