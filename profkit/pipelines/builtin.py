"""The built-in models: the published architectures (``sd15``, ``sdxl``, ``sd3-medium``, ``flux-dev``, see
:mod:`profkit.pipelines.architectures`) and two tiny pipelines with seeded random weights for CPU tests.

The tiny ones run offline on a CPU in well under a second and keep realistic proportions: attention heads 32-64
wide (as in the real models: 40-160) and, like SDXL, no attention at the UNet's full resolution, so on a GPU their
kernel mix is convolutions, GEMMs and attention rather than attention alone. ``tiny-sd`` is a Stable Diffusion
pipeline (CLIP text encoder, UNet2DConditionModel, AutoencoderKL, DDIM scheduler); ``tiny-dit`` is a Stable
Diffusion 3 pipeline (two CLIP text encoders, an MMDiT ``SD3Transformer2DModel`` with 32-wide heads,
AutoencoderKL, flow-matching Euler scheduler). The images are noise: only the work they do matters.
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
        hidden_size=64,
        intermediate_size=256,  # 4x hidden, as in CLIP
        num_hidden_layers=2,
        num_attention_heads=2,  # 32-wide heads
        max_position_embeddings=77,
        bos_token_id=bos,
        eos_token_id=eos,
        pad_token_id=eos,
        projection_dim=64,
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
        block_out_channels=(64, 128),
        # SDXL's layout: no attention at full resolution; attention at the lower one
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=64,
        attention_head_dim=2,  # diffusers' name for the number of heads: 2 heads x 64 channels
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
        attention_head_dim=32,
        num_attention_heads=2,
        caption_projection_dim=64,  # = heads x head dim, as in SD3
        joint_attention_dim=128,  # the two CLIP hidden states side by side
        pooled_projection_dim=128,  # the two CLIP projections side by side
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
