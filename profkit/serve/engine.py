"""The pipeline behind the server: loaded once, instrumented once, called by the worker thread only."""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from typing import Any

from profkit.serve.requests import Generation
from profkit.serve.settings import ServeSettings
from profkit.serve.timing import BatchClock


class PipelineRunner:
    """Runs batches of :class:`Generation` through a diffusers pipeline and answers base64 PNGs."""

    def __init__(self, settings: ServeSettings) -> None:
        from profkit.capture.instrument import instrument
        from profkit.capture.knobs import check_knobs, prepare
        from profkit.model.capture import Knobs
        from profkit.pipelines.loading import load_pipeline, resolve_device

        self.settings = settings
        self.device = resolve_device(settings.device)
        check_knobs([settings.knobs], self.device, settings.warmup, [settings.dtype])
        self.pipeline = load_pipeline(settings.model, settings.dtype, self.device).pipeline
        if settings.knobs != Knobs():
            prepare(self.pipeline, settings.knobs, self.device)
        self._clock: BatchClock | None = None
        self.sync: Callable[[], None] | None = None
        if self.device.startswith("cuda"):
            import torch

            self.sync = torch.cuda.synchronize
        # Installed for the server's lifetime; only the worker thread calls the pipeline.
        self._instrumentation = instrument(self.pipeline, use_nvtx=False, use_torch=False, on_range=self._on_range)
        self._instrumentation.install()

    def _on_range(self, name: str, opened: bool) -> None:
        if self._clock is not None:
            self._clock.on_range(name, opened)

    def gpu_memory(self) -> tuple[int, int] | None:
        if not self.device.startswith("cuda"):
            return None
        import torch

        return torch.cuda.memory_allocated(), torch.cuda.memory_reserved()

    def warm_up(self) -> None:
        s = self.settings
        for index in range(s.warmup):
            self.run([Generation("warm-up", 1, s.height, s.width, s.steps, index)], BatchClock())

    def run(self, batch: list[Generation], clock: BatchClock) -> list[list[str]]:
        import torch

        first = batch[0]
        prompts: list[str] = []
        generators = []
        generator_device = "cpu" if self.device == "cpu" else self.device
        for generation in batch:
            for index in range(generation.n):
                prompts.append(generation.prompt)
                seed = torch.seed() if generation.seed is None else generation.seed + index
                generators.append(torch.Generator(device=generator_device).manual_seed(seed % 2**63))
        kwargs: dict[str, Any] = {
            "prompt": prompts,
            "num_inference_steps": first.steps,
            "height": first.height,
            "width": first.width,
            "generator": generators,
        }
        if self.settings.guidance_scale is not None:
            kwargs["guidance_scale"] = self.settings.guidance_scale
        from profkit.capture.knobs import call_context

        self._clock = clock
        try:
            with torch.inference_mode(), call_context(self.settings.knobs):
                images = self.pipeline(**kwargs).images
        finally:
            self._clock = None
        encoded = [_png_base64(image) for image in images]
        answers, at = [], 0
        for generation in batch:
            answers.append(encoded[at : at + generation.n])
            at += generation.n
        return answers

    def close(self) -> None:
        self._instrumentation.remove()


def _png_base64(image: Any) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")
