"""Instrumentation: range names, nesting, step indices, CFG calls, several encoders, removal."""

from __future__ import annotations

import pytest
import torch

from profkit import naming
from profkit.capture.instrument import instrument


class FakeScheduler:
    def step(self, model_output, t, sample):
        return sample - 0.1 * model_output


class FakeDenoiser(torch.nn.Module):
    def __init__(self, fail_at_call: int | None = None) -> None:
        super().__init__()
        self.calls = 0
        self.fail_at_call = fail_at_call

    def forward(self, x):
        self.calls += 1
        if self.fail_at_call == self.calls:
            raise RuntimeError("denoiser exploded")
        return x * 0.5


class FakeEncoder(torch.nn.Module):
    def forward(self, x):
        return x + 1


class FakeVae:
    def decode(self, z):
        return z * 2


class FakePipeline:
    """Calls the denoiser twice per step (CFG as separate batches) and has two text encoders."""

    def __init__(self, denoiser: FakeDenoiser | None = None) -> None:
        self.text_encoder = FakeEncoder()
        self.text_encoder_2 = FakeEncoder()
        self.unet = denoiser or FakeDenoiser()
        self.scheduler = FakeScheduler()
        self.vae = FakeVae()

    @property
    def components(self):
        return {
            "text_encoder": self.text_encoder,
            "text_encoder_2": self.text_encoder_2,
            "unet": self.unet,
            "scheduler": self.scheduler,
            "vae": self.vae,
            "safety_checker": None,
        }

    def __call__(self, steps: int):
        x = torch.ones(2)
        self.text_encoder(x)
        self.text_encoder_2(x)
        for t in range(steps):
            cond = self.unet(x)
            uncond = self.unet(x)
            x = self.scheduler.step(cond - uncond, t, x)
        return self.vae.decode(x)


def test_ranges_nest_in_order_with_cfg_calls_and_two_encoders():
    pipe = FakePipeline()
    with instrument(pipe, use_nvtx=False) as inst:
        pipe(3)
    expected = [naming.PIPELINE, "profkit/text_encoder/text_encoder", "profkit/text_encoder/text_encoder_2"]
    for step in range(3):
        expected += [
            f"profkit/denoise/step_{step:03d}",
            f"profkit/denoise/step_{step:03d}/unet",
            f"profkit/denoise/step_{step:03d}/unet#2",
            f"profkit/denoise/step_{step:03d}/scheduler",
        ]
    expected.append("profkit/vae/decode")
    assert inst.names_opened == expected
    assert inst.components == {
        "text_encoder": "text_encoder",
        "text_encoder_2": "text_encoder",
        "unet": "denoiser",
        "scheduler": "scheduler",
        "vae": "vae",
    }


def test_step_index_restarts_on_each_pipeline_call():
    pipe = FakePipeline()
    with instrument(pipe, use_nvtx=False) as inst:
        pipe(2)
        pipe(2)
    steps = [n for n in inst.names_opened if n.endswith("step_000")]
    assert len(steps) == 2


def test_removal_restores_pipeline_and_components():
    pipe = FakePipeline()
    original_class = type(pipe)
    with instrument(pipe, use_nvtx=False):
        assert "forward" in pipe.unet.__dict__
        assert "step" in pipe.scheduler.__dict__
    assert type(pipe) is original_class
    assert "forward" not in pipe.unet.__dict__
    assert "step" not in pipe.scheduler.__dict__
    assert "decode" not in pipe.vae.__dict__
    assert pipe(1).shape == (2,)


def test_exception_inside_denoiser_closes_every_range_and_still_removes():
    pipe = FakePipeline(FakeDenoiser(fail_at_call=3))
    inst = instrument(pipe, use_nvtx=False)
    with pytest.raises(RuntimeError, match="exploded"), inst:
        pipe(3)
    assert inst._ranges.depth == 0
    assert type(pipe) is FakePipeline


def test_double_instrumentation_is_refused():
    from profkit.errors import ProfkitError

    pipe = FakePipeline()
    with instrument(pipe, use_nvtx=False), pytest.raises(ProfkitError, match="already instrumented"):
        instrument(pipe, use_nvtx=False).install()


def test_ranges_reach_torch_profiler_nested():
    from torch.profiler import ProfilerActivity, profile

    pipe = FakePipeline()
    with instrument(pipe, use_nvtx=False), profile(activities=[ProfilerActivity.CPU]) as prof:
        pipe(2)
    events = [e for e in prof.events() if e.name.startswith("profkit/")]
    names = [e.name for e in events]
    assert names.count("profkit/denoise/step_001/unet#2") == 1
    by_name = {e.name: e for e in events}
    step, unet = by_name["profkit/denoise/step_001"], by_name["profkit/denoise/step_001/unet"]
    assert step.time_range.start <= unet.time_range.start and unet.time_range.end <= step.time_range.end


def test_nvtx_ranges_are_pushed_and_popped(monkeypatch):
    import nvtx

    calls: list[tuple[str, str | None]] = []
    monkeypatch.setattr(nvtx, "push_range", lambda message=None, domain=None, **_: calls.append(("push", message)))
    monkeypatch.setattr(nvtx, "pop_range", lambda domain=None: calls.append(("pop", None)))
    pipe = FakePipeline()
    with instrument(pipe, use_torch=False):
        pipe(1)
    assert calls[0] == ("push", naming.PIPELINE)
    assert sum(1 for kind, _ in calls if kind == "push") == sum(1 for kind, _ in calls if kind == "pop")


@pytest.mark.slow
@pytest.mark.parametrize("model, denoiser, encoders", [("tiny-sd", "unet", 1), ("tiny-dit", "transformer", 2)])
def test_builtin_unet_and_dit_pipelines(model, denoiser, encoders):
    from profkit.pipelines import load_pipeline

    pipe = load_pipeline(model).pipeline
    with instrument(pipe, use_nvtx=False) as inst:
        pipe("a cat", num_inference_steps=2, height=64, width=64)
    names = inst.names_opened
    assert [n for n in names if n.count("/") == 2 and "/step_" in n] == [
        "profkit/denoise/step_000",
        "profkit/denoise/step_001",
    ]
    assert f"profkit/denoise/step_001/{denoiser}" in names
    assert len({n for n in names if n.startswith("profkit/text_encoder/")}) == encoders
    assert names[-1] == "profkit/vae/decode"
