"""Per-step latents of a pipeline call, recorded with diffusers' ``callback_on_step_end``.

:class:`LatentRecorder` is the callback: after every denoise step it copies the latents to the CPU. It runs in an
extra, untimed call (:func:`record_latents`) so the copies never distort a measured or profiled call; the call uses
the run's prompts and seed, so its images equal the run's. :func:`save` writes ``latents.npz``: ``latents`` (steps
x batch x channels x h x w; float32 when small, else float16), ``norms`` (RMS per step) and ``seed``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from profkit.errors import ProfkitError

LATENTS_FILE = "latents.npz"
#: Above this many bytes (float32) the record is stored as float16.
FULL_PRECISION_BYTES = 16 * 1024 * 1024


class LatentRecorder:
    """A ``callback_on_step_end`` that keeps each step's latents (as float32 numpy arrays)."""

    def __init__(self) -> None:
        self.steps: list[Any] = []
        self.output: Any = None  # the call's pipeline output (images)

    def __call__(self, pipeline: Any, step: int, timestep: Any, callback_kwargs: dict[str, Any]) -> dict[str, Any]:
        latents = callback_kwargs.get("latents")
        if latents is not None:
            self.steps.append(latents.detach().float().cpu().numpy())
        return callback_kwargs

    def stacked(self) -> Any:
        import numpy as np

        if not self.steps:
            raise ProfkitError("the pipeline reported no latents (it does not support callback_on_step_end)")
        return np.stack(self.steps)


def supports_callbacks(pipeline: Any) -> bool:
    import inspect

    try:
        return "callback_on_step_end" in inspect.signature(pipeline.__call__).parameters
    except (TypeError, ValueError):
        return False


def record_latents(pipeline: Any, call_kwargs: dict[str, Any]) -> LatentRecorder:
    """One untimed pipeline call with ``call_kwargs`` (prompts, seeded generator, sizes) that records the latents."""
    if not supports_callbacks(pipeline):
        raise ProfkitError(f"{type(pipeline).__name__} has no callback_on_step_end: its latents cannot be recorded")
    recorder = LatentRecorder()
    recorder.output = pipeline(
        **call_kwargs, callback_on_step_end=recorder, callback_on_step_end_tensor_inputs=["latents"]
    )
    return recorder


def save(recorder: LatentRecorder, folder: Path, seed: int | None) -> Path:
    """``folder/latents.npz``, written atomically."""
    import io

    import numpy as np

    from profkit.jsonio import write_bytes

    latents = recorder.stacked()
    norms = np.sqrt((latents.reshape(len(latents), -1).astype(np.float64) ** 2).mean(axis=1))
    if latents.nbytes > FULL_PRECISION_BYTES:
        latents = latents.astype(np.float16)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, latents=latents, norms=norms, seed=np.int64(-1 if seed is None else seed))
    return write_bytes(folder / LATENTS_FILE, buffer.getvalue())


def record_run_latents(pipeline: Any, call_kwargs: dict[str, Any], folder: Path, seed: int | None) -> Path:
    """Record one call's latents into ``folder/latents.npz`` (the capture and bench hook)."""
    return save(record_latents(pipeline, call_kwargs), folder, seed)


class OutputKeeper:
    """For multi-configuration benchmarks: one untimed call per configuration whose images (and, when asked, latents)
    are kept in ``folder/<config folder>/`` (``image_000.png`` ..., ``latents.npz``), for :mod:`profkit.quality`."""

    def __init__(self, folder: Path, record_latents: bool = False) -> None:
        self.folder = folder
        self.record_latents = record_latents
        self.kept: dict[str, Path] = {}

    def __call__(self, name: str, pipeline: Any, call_kwargs: dict[str, Any]) -> Path:
        import io

        from profkit.jsonio import write_bytes
        from profkit.model.quality import config_folder

        target = self.folder / config_folder(name)
        recorder = None
        if self.record_latents:
            recorder = record_latents(pipeline, call_kwargs)
            output = recorder.output
        else:
            output = pipeline(**call_kwargs)
        for index, image in enumerate(getattr(output, "images", []) or []):
            if hasattr(image, "save"):
                buffer = io.BytesIO()
                image.save(buffer, format="PNG")
                write_bytes(target / f"image_{index:03d}.png", buffer.getvalue())
        if recorder is not None:
            generator = call_kwargs.get("generator")
            save(recorder, target, getattr(generator, "initial_seed", lambda: None)())
        self.kept[name] = target
        return target
