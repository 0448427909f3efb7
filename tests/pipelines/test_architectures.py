"""The published architectures rebuilt from the shipped configs: parameter counts on the meta device, tokenizers."""

from __future__ import annotations

import pytest

from profkit.pipelines import BUILTIN_MODELS
from profkit.pipelines.architectures import ARCHITECTURES, build_architecture, read_config
from profkit.pipelines.tokenizer import MODELS_DATA, clip_tokenizer, spiece_pieces, t5_tokenizer

CLIP_L = 123_060_480  # openai/clip-vit-large-patch14 text tower (SD1.5, SDXL, Flux)
CLIP_G = 694_659_840  # OpenCLIP bigG text tower with projection
T5_XXL = 4_762_310_656  # T5 v1.1 XXL encoder: 9.52 GB in bf16 per the published weight index

# published sizes (billions); each must hold to within 0.5%
EXPECTED = {
    "sd15": {"unet": 0.860, "text_encoder": CLIP_L / 1e9, "vae": 0.0837},
    "sdxl": {"unet": 2.567, "text_encoder": CLIP_L / 1e9, "text_encoder_2": CLIP_G / 1e9, "vae": 0.0837},
    "sd3-medium": {
        "transformer": 2.028,
        "text_encoder": 0.1237,
        "text_encoder_2": CLIP_G / 1e9,
        "text_encoder_3": T5_XXL / 1e9,
        "vae": 0.0838,
    },
    "flux-dev": {"transformer": 11.90, "text_encoder": CLIP_L / 1e9, "text_encoder_2": T5_XXL / 1e9, "vae": 0.0838},
}


def _parameters(module) -> int:
    return sum(parameter.numel() for parameter in module.parameters())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_parameter_counts_on_meta_device(name: str) -> None:
    built = build_architecture(name, "meta", components=tuple(EXPECTED[name]))
    for component, billions in EXPECTED[name].items():
        count = _parameters(built[component])
        assert count == pytest.approx(billions * 1e9, rel=0.005), (name, component, count)
        assert all(parameter.device.type == "meta" for parameter in built[component].parameters())


def test_t5_xxl_matches_the_published_weight_size() -> None:
    # T5-XXL's weight index (../shared/models) gives 9.52 GB in bf16: 2 bytes per parameter
    built = build_architecture("flux-dev", "meta", components=("text_encoder_2",))
    assert _parameters(built["text_encoder_2"]) * 2 == pytest.approx(9.52e9, rel=0.005)


def test_built_in_the_requested_dtype_directly() -> None:
    import torch

    built = build_architecture("sd3-medium", "meta", torch.bfloat16, components=("transformer", "text_encoder_3"))
    for module in built.values():
        dtypes = {parameter.dtype for parameter in module.parameters()}
        assert dtypes == {torch.bfloat16}
    assert torch.get_default_dtype() == torch.float32  # restored


def test_builtin_models_list_the_architectures_with_descriptions() -> None:
    for name in ("sd15", "sdxl", "sd3-medium", "flux-dev", "tiny-sd", "tiny-dit"):
        assert len(BUILTIN_MODELS[name]) > 20
    for name, (folder, _description) in ARCHITECTURES.items():
        assert (MODELS_DATA / folder / "model_index.json").is_file(), name


def test_shipped_package_data_is_small_and_has_no_weights() -> None:
    files = [path for path in MODELS_DATA.rglob("*") if path.is_file()]
    assert sum(path.stat().st_size for path in files) < 2_000_000
    assert not [path for path in files if path.suffix in (".safetensors", ".bin", ".pt", ".ckpt")]


def test_clip_tokenizer_from_shipped_vocabulary() -> None:
    tokenizer = clip_tokenizer(read_config("sdxl-base-1.0", "tokenizer_2", "tokenizer_config.json"))
    assert len(tokenizer) == 49408
    ids = tokenizer("a photo of a cat", padding="max_length", max_length=10).input_ids
    assert ids == [49406, 320, 1125, 539, 320, 2368, 49407, 0, 0, 0]  # tokenizer_2 pads with "!" (id 0)


def test_t5_tokenizer_from_shipped_sentencepiece_model() -> None:
    pieces = spiece_pieces((MODELS_DATA / "tokenizers" / "t5" / "spiece.model").read_bytes())
    assert len(pieces) == 32000
    assert pieces[:3] == [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    tokenizer = t5_tokenizer(read_config("flux1-dev", "tokenizer_2", "tokenizer_config.json"))
    assert len(tokenizer) == 32100
    assert tokenizer.model_max_length == 512
    assert tokenizer("a photo of a cat").input_ids == [3, 9, 1202, 13, 3, 9, 1712, 1]


def test_published_dtype_in_a_config_does_not_override_the_build_dtype() -> None:
    import torch

    # SDXL's text_encoder_2 config says "torch_dtype": "float16"; built in fp32 every parameter must be fp32
    built = build_architecture("sdxl", "meta", torch.float32, components=("text_encoder_2",))
    assert {parameter.dtype for parameter in built["text_encoder_2"].parameters()} == {torch.float32}
