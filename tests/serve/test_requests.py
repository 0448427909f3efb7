"""Request validation, settings and the phase clock, without a server."""

from __future__ import annotations

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
    ticks = iter(range(100, 200))  # one tick per clock reading, in seconds
    clock = BatchClock(clock=lambda: float(next(ticks)))
    clock.start()  # 100, the request arrived at 97
    for name, opened in [
        ("profkit/pipeline", True),  # ignored
        ("profkit/text_encoder/text_encoder", True),  # 101
        ("profkit/text_encoder/text_encoder", False),  # 102
        ("profkit/denoise/step_000", True),  # 103
        ("profkit/denoise/step_000/unet", True),  # ignored
        ("profkit/denoise/step_000/unet", False),
        ("profkit/denoise/step_000", False),  # 104
        ("profkit/denoise/step_001", True),  # 105
        ("profkit/denoise/step_001", False),  # 106
        ("profkit/vae/encode", True),  # ignored
        ("profkit/vae/decode", True),  # 107
        ("profkit/vae/decode", False),  # 108
        ("profkit/pipeline", False),
    ]:
        clock.on_range(name, opened)
    clock.finish()  # 109
    phases = clock.phases_ms(97.0)
    expected = {"queue": 3, "preprocess": 2, "text_encode": 1, "denoise": 3, "vae_decode": 2, "encode_image": 1}
    assert phases == {**{k: v * 1000.0 for k, v in expected.items()}, "total": 12000.0}
    assert clock.steps_s == [1.0, 1.0] and clock.step_mean_ms() == 1000.0
    header = server_timing(phases, clock.step_mean_ms(), len(clock.steps_s))
    assert header.startswith("queue;dur=3000.000, preprocess;dur=2000.000, text_encode;dur=1000.000")
    assert_phases_sum_to_total(header)
    entries = parse_server_timing(header)
    assert list(entries) == [*PHASES, "total", "step"]
    assert header.endswith('step;dur=1000.000;desc="mean of 2"')


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
