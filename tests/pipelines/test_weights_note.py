"""A capture of a built-in says its weights are random: timings real, images noise (shares the session capture)."""

from __future__ import annotations

import orjson
import pytest

from profkit.model.capture import CaptureMetadata
from profkit.pipelines.builtin import RANDOM_WEIGHTS_NOTE

pytestmark = pytest.mark.slow


def test_builtin_capture_records_random_weights_and_the_note(captured):
    _settings, outputs = captured
    for run in outputs.runs:
        meta = orjson.loads(run.metadata.read_bytes())
        assert meta["weights"] == "random"
        assert RANDOM_WEIGHTS_NOTE in meta["notes"]
        assert CaptureMetadata.load(run.metadata).weights == "random"


def test_metadata_without_weights_keeps_its_shape() -> None:
    from profkit.model.capture import DeviceInfo

    document = CaptureMetadata(device=DeviceInfo(type="cpu", name="cpu"), dtype="fp32")
    assert "weights" not in document.to_builtins()
