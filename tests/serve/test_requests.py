"""Request validation, settings and the phase clock, without a server."""

from __future__ import annotations

import time

import orjson
import pytest

from profkit.errors import SettingError
from profkit.serve.requests import BadRequest, parse_generation
from profkit.serve.settings import ServeSettings
from profkit.serve.timing import PHASES, BatchClock, server_timing
from tests.serve.timing_header import assert_phases_sum_to_total, parse_server_timing

SETTINGS = ServeSettings(max_n=2, max_side=128, max_steps=8, steps=4, max_body_bytes=200).validate()


def test_a_valid_request_takes_defaults_and_size_as_width_x_height() -> None:
    generation = parse_generation(orjson.dumps({"prompt": "a cat", "size": "64x32", "model": "ignored"}), SETTINGS)
    assert (generation.prompt, generation.n, generation.width, generation.height) == ("a cat", 1, 64, 32)
    assert generation.steps == 4 and generation.seed is None
    assert parse_generation(b'{"prompt": "x", "n": 2, "steps": 8, "seed": 3}', SETTINGS).shape == (64, 64, 8)


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b"[1, 2]", 422, "invalid request"),
        (b'{"n": 1}', 422, "prompt"),
        (b'{"prompt": "  "}', 422, "prompt is empty"),
        (b'{"prompt": 3}', 422, "invalid request"),
        (b'{"prompt": "x", "n": 0}', 422, "n must be"),
        (b'{"prompt": "x", "n": 3}', 422, "n must be"),
        (b'{"prompt": "x", "size": "64"}', 422, "size must be"),
        (b'{"prompt": "x", "size": "60x64"}', 422, "multiples of 8"),
        (b'{"prompt": "x", "size": "256x64"}', 422, "multiples of 8"),
        (b'{"prompt": "x", "steps": 0}', 422, "steps must be"),
        (b'{"prompt": "x", "steps": 9}', 422, "steps must be"),
        (b'{"prompt": "x", "seed": -1}', 422, "seed"),
        (b'{"prompt": "x", "response_format": "url"}', 422, "b64_json"),
        (orjson.dumps({"prompt": "x" * 300}), 413, "larger than 200 bytes"),
    ],
)
def test_bad_requests_say_what_is_wrong(body: bytes, status: int, says: str) -> None:
    with pytest.raises(BadRequest) as caught:
        parse_generation(body, SETTINGS)
    assert caught.value.status == status
    assert says in caught.value.message
    assert caught.value.body()["error"]["code"] == status


@pytest.mark.parametrize(
    ("change", "setting"),
    [
        ({"steps": 0}, "steps"),
        ({"steps": 9, "max_steps": 8}, "steps"),
        ({"height": 60}, "height/width"),
        ({"queue_size": 0}, "queue_size"),
        ({"max_wait_ms": -1}, "max_wait_ms"),
        ({"port": 70000}, "port"),
        ({"deadline_s": 0}, "deadline_s"),
    ],
)
def test_settings_are_checked(change: dict, setting: str) -> None:
    with pytest.raises(SettingError) as caught:
        ServeSettings(**change).validate()
    assert caught.value.setting == setting


def test_the_phases_partition_arrival_to_body_ready() -> None:
    received = time.perf_counter()
    clock = BatchClock()
    time.sleep(0.003)
    clock.start()
    for name, opened in [
        ("profkit/pipeline", True),
        ("profkit/text_encoder/text_encoder", True),
        ("profkit/text_encoder/text_encoder", False),
        ("profkit/denoise/step_000", True),
        ("profkit/denoise/step_000/unet", True),
        ("profkit/denoise/step_000/unet", False),
        ("profkit/denoise/step_000", False),
        ("profkit/denoise/step_001", True),
        ("profkit/denoise/step_001", False),
        ("profkit/vae/decode", True),
        ("profkit/vae/decode", False),
        ("profkit/pipeline", False),
    ]:
        time.sleep(0.001)
        clock.on_range(name, opened)
    clock.finish()
    phases = clock.phases_ms(received)
    assert phases["queue"] >= 3.0
    assert all(phases[name] >= 0 for name in PHASES)
    assert phases["denoise"] >= 3.0 and len(clock.steps_s) == 2
    assert abs(sum(phases[name] for name in PHASES) - phases["total"]) < 1e-6
    header = server_timing(phases, clock.step_mean_ms(), len(clock.steps_s))
    assert_phases_sum_to_total(header)
    entries = parse_server_timing(header)
    assert list(entries) == [*PHASES, "total", "step"]
    assert 'desc="mean of 2"' in header


def test_the_grafana_dashboard_uses_only_metrics_the_server_exports() -> None:
    import re
    from pathlib import Path

    from profkit.serve.metrics import ServeMetrics

    dashboard = orjson.loads((Path(__file__).parents[2] / "dashboards" / "profkit-serve.grafana.json").read_bytes())
    metrics = ServeMetrics()
    metrics.watch_gpu(lambda: (1, 2))
    metrics.count(200)  # labelled series appear once they have a value
    metrics.render()
    exported = {sample.name for family in metrics.registry.collect() for sample in family.samples}
    used = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"profkit_serve_\w+", target["expr"])
    }
    assert len(used) >= 8
    assert used <= exported, used - exported
