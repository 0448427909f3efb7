"""Loading by name: built-ins, local folders, hub ids (one clear line when a hub id cannot be downloaded)."""

from __future__ import annotations

import pytest

from profkit.errors import ProfkitError
from profkit.pipelines.loading import hub_failure, load_pipeline


def test_hub_id_that_cannot_be_downloaded_says_how_to_pass_a_local_folder(monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ProfkitError) as caught:
        load_pipeline("profkit-no-such-org/no-such-model")
    message = str(caught.value)
    assert "\n" not in message
    assert "could not download 'profkit-no-such-org/no-such-model' from the Hugging Face Hub" in message
    assert "local diffusers folder" in message and "model_index.json" in message
    assert "sd15" in message and "tiny-sd" in message


def test_hub_failure_reasons_are_one_short_line() -> None:
    offline = hub_failure("org/model", "outgoing traffic has been disabled. To enable ...")
    assert "(offline, and it is not in the local cache)" in offline
    long = hub_failure("org/model", "x" * 1000)
    assert len(long) < 500


def test_folder_without_model_index_is_refused(tmp_path) -> None:
    with pytest.raises(ProfkitError, match="not a diffusers pipeline folder"):
        load_pipeline(str(tmp_path))


def test_architecture_that_does_not_fit_fails_in_one_line_before_allocating() -> None:
    with pytest.raises(ProfkitError) as caught:
        load_pipeline("flux-dev", "bf16", "cpu", available=lambda _device: 8 * 10**9)
    message = str(caught.value)
    # 11.90B transformer + 4.76B T5-XXL + CLIP-L + VAE, 2 bytes each: about 33.7 GB
    assert message.startswith("flux-dev needs 33.") and "bfloat16" in message and "8.0 GB free" in message


def test_weight_bytes_follow_the_dtype() -> None:
    import torch

    from profkit.pipelines.architectures import weight_bytes

    half = weight_bytes("sd15", torch.float16)
    assert weight_bytes("sd15", torch.float32) == pytest.approx(2 * half, rel=1e-4)  # integer buffers stay
    assert half == pytest.approx(2 * (859_520_964 + 123_060_480 + 83_653_863), rel=0.001)
