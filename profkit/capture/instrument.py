"""Named ranges around a diffusers pipeline's stages, without editing the pipeline.

``with instrument(pipe): pipe(prompt)`` opens, both as NVTX ranges (domain ``profkit``) and as
``torch.profiler.record_function`` ranges, the ranges of :mod:`profkit.naming` around the whole call,
each text-encoder call, every denoiser call (with its step index), every scheduler step, VAE
decode/encode and the safety checker. Leaving the ``with`` block removes every patch.

How: component methods are wrapped on the *instance* (``unet.forward``, ``scheduler.step``,
``vae.decode`` ...) and restored afterwards; the pipeline's ``__call__`` is wrapped by giving the
instance a throw-away subclass, restored on exit. A denoise step range opens at the first denoiser
call after a scheduler step and closes when the next scheduler step returns, so the denoiser and
scheduler ranges of a step nest inside it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from profkit import naming
from profkit.errors import ProfkitError
from profkit.model.capture import CUDA_MEMORY_SOURCE

DENOISER_ATTRS = ("unet", "transformer", "transformer_2", "prior", "decoder")
_MISSING = object()
#: The stage names of :class:`StageMemoryTracker` (text encoders, the denoise loop, the VAE, anything else).
MEMORY_STAGES = {"text_encoder": "text_encoders", "denoise": "denoise", "vae": "vae"}


class StageMemoryTracker:
    """Peak device memory per stage of the latest pipeline call, read and reset at every range boundary.

    At each range event the peak since the previous event is read, charged to the stage that was running (the
    innermost open profkit range; "other" outside any stage) and the counter reset; the call's overall peak is
    kept apart (a reset would lose it otherwise). ``read`` and ``reset`` are injected (CUDA's by
    :meth:`for_device`; stand-ins in tests). Opening the pipeline range starts a new call.
    """

    def __init__(
        self,
        read: Callable[[], int],
        reset: Callable[[], None],
        source: str = CUDA_MEMORY_SOURCE,
        read_reserved: Callable[[], int] | None = None,
    ) -> None:
        self._read, self._reset, self._read_reserved = read, reset, read_reserved
        self.source = source
        self._open: list[str] = []
        self.peak_bytes: dict[str, int] = {}
        self.overall_bytes = 0
        self.overall_reserved_bytes = 0  # the reserved peak, kept across the resets (when a reader is given)

    @classmethod
    def for_device(cls, device: str) -> StageMemoryTracker | None:
        """A tracker of CUDA's allocator on a CUDA device; ``None`` elsewhere (no device memory counter)."""
        if not device.startswith("cuda"):
            return None
        import torch

        index = torch.device(device)
        return cls(
            lambda: torch.cuda.max_memory_allocated(index),
            lambda: torch.cuda.reset_peak_memory_stats(index),
            read_reserved=lambda: torch.cuda.max_memory_reserved(index),
        )

    def __call__(self, name: str, opened: bool) -> None:
        info = naming.parse_range_name(name)
        if opened and info is not None and info.kind == "pipeline":
            self.peak_bytes, self.overall_bytes, self.overall_reserved_bytes, self._open = {}, 0, 0, []
            self._reset()
        peak = self._read()
        if self._read_reserved is not None:
            self.overall_reserved_bytes = max(self.overall_reserved_bytes, self._read_reserved())
        stage = self._open[-1] if self._open else "other"
        self.peak_bytes[stage] = max(self.peak_bytes.get(stage, 0), peak)
        self.overall_bytes = max(self.overall_bytes, peak)
        self._reset()
        if opened:
            self._open.append(MEMORY_STAGES.get(info.stage, "other") if info is not None else "other")
        elif self._open:
            self._open.pop()

    def peaks_mb(self) -> dict[str, float]:
        """Stage -> peak MiB of the latest call (the stages that ran)."""
        return {stage: round(value / 2**20, 3) for stage, value in self.peak_bytes.items()}

    def overall_mb(self) -> float:
        return self.overall_bytes / 2**20

    def overall_reserved_mb(self) -> float:
        return self.overall_reserved_bytes / 2**20


def chain_ranges(*callbacks: Callable[[str, bool], None] | None) -> Callable[[str, bool], None] | None:
    """One ``on_range`` callback calling each given one in turn (``None`` when none is given)."""
    given = [callback for callback in callbacks if callback is not None]
    if not given:
        return None

    def on_range(name: str, opened: bool) -> None:
        for callback in given:
            callback(name, opened)

    return on_range


class _RangeStack:
    """Open/close ranges as NVTX push/pop and torch record_function, strictly nested."""

    def __init__(self, use_nvtx: bool, use_torch: bool, on_range: Callable[[str, bool], None] | None = None) -> None:
        self._open: list[tuple[str, Any]] = []
        self._on_range = on_range  # called with (name, True) after a range opens, (name, False) before it closes
        self._nvtx = None
        if use_nvtx:
            try:
                import nvtx

                self._nvtx = nvtx
            except ImportError:  # pragma: no cover - nvtx is a dependency
                self._nvtx = None
        self._use_torch = use_torch
        self.names_opened: list[str] = []

    @property
    def depth(self) -> int:
        return len(self._open)

    def push(self, name: str) -> None:
        record = None
        if self._use_torch:
            from torch.profiler import record_function

            record = record_function(name)
            record.__enter__()
        if self._nvtx is not None:
            self._nvtx.push_range(name, domain=naming.NVTX_DOMAIN)
        self._open.append((name, record))
        self.names_opened.append(name)
        if self._on_range is not None:
            self._on_range(name, True)

    def pop(self) -> None:
        name, record = self._open.pop()
        if self._on_range is not None:
            self._on_range(name, False)
        if self._nvtx is not None:
            self._nvtx.pop_range(domain=naming.NVTX_DOMAIN)
        if record is not None:
            record.__exit__(None, None, None)

    def pop_to(self, depth: int) -> None:
        while len(self._open) > depth:
            self.pop()

    @contextmanager
    def range(self, name: str) -> Iterator[None]:
        depth = self.depth
        self.push(name)
        try:
            yield
        finally:
            self.pop_to(depth)


@dataclass
class _StepState:
    completed_steps: int = 0
    step_depth: int = -1  # stack depth below the open step range, -1 when none is open
    denoiser_calls: int = 0


@dataclass
class Instrumentation:
    """Installed by :func:`instrument`; holds what it patched so it can put everything back."""

    pipeline: Any
    on_step: Callable[[int], None] | None = None
    use_nvtx: bool = True
    use_torch: bool = True
    on_range: Callable[[str, bool], None] | None = None
    components: dict[str, str] = field(default_factory=dict)  # attr -> role
    _patches: list[tuple[Any, str, Any]] = field(default_factory=list)
    _original_class: type | None = None
    _ranges: _RangeStack | None = None
    _state: _StepState = field(default_factory=_StepState)

    @property
    def names_opened(self) -> list[str]:
        return self._ranges.names_opened if self._ranges else []

    # -- install / remove -------------------------------------------------------------------------
    def install(self) -> None:
        pipe = self.pipeline
        if getattr(type(pipe), "_profkit_instrumented", False):
            raise ProfkitError("this pipeline is already instrumented by profkit")
        self._ranges = _RangeStack(self.use_nvtx, self.use_torch, self.on_range)
        components = getattr(pipe, "components", {}) or {}
        for attr, component in components.items():
            if component is None:
                continue
            if attr.startswith("text_encoder"):
                self._wrap(component, _call_method(component), self._plain(naming.text_encoder_range(attr)))
                self.components[attr] = "text_encoder"
            elif attr in DENOISER_ATTRS and callable(component):
                self._wrap(component, _call_method(component), self._denoiser(attr))
                self.components[attr] = "denoiser"
            elif attr == "scheduler" and hasattr(component, "step"):
                self._wrap(component, "step", self._scheduler())
                self.components[attr] = "scheduler"
            elif attr.startswith("vae") and hasattr(component, "decode"):
                for method in ("decode", "encode"):
                    if hasattr(component, method):
                        self._wrap(component, method, self._plain(naming.vae_range(method)))
                self.components[attr] = "vae"
            elif attr == "safety_checker" and callable(component):
                self._wrap(component, _call_method(component), self._plain(naming.SAFETY_CHECKER))
                self.components[attr] = "safety_checker"
        self._wrap_pipeline_call()

    def remove(self) -> None:
        if self._ranges is not None:
            self._ranges.pop_to(0)
        for owner, attr, previous in reversed(self._patches):
            if previous is _MISSING:
                owner.__dict__.pop(attr, None)
            else:
                setattr(owner, attr, previous)
        self._patches.clear()
        if self._original_class is not None:
            self.pipeline.__class__ = self._original_class
            self._original_class = None

    def __enter__(self) -> Instrumentation:
        self.install()
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()

    # -- wrappers ---------------------------------------------------------------------------------
    def _wrap(self, owner: Any, attr: str, make_wrapper: Callable[[Callable], Callable]) -> None:
        previous = owner.__dict__.get(attr, _MISSING)
        original = getattr(owner, attr)
        wrapper = functools.wraps(original)(make_wrapper(original))
        setattr(owner, attr, wrapper)
        self._patches.append((owner, attr, previous))

    def _plain(self, name: str) -> Callable[[Callable], Callable]:
        def make(original: Callable) -> Callable:
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                with self._ranges.range(name):
                    return original(*args, **kwargs)

            return wrapper

        return make

    def _open_step_if_needed(self) -> None:
        state = self._state
        if state.step_depth < 0:
            state.step_depth = self._ranges.depth
            state.denoiser_calls = 0
            self._ranges.push(naming.step_range(state.completed_steps))

    def _close_step(self) -> None:
        state = self._state
        if state.step_depth >= 0:
            self._ranges.pop_to(state.step_depth)
            state.step_depth = -1

    def _denoiser(self, attr: str) -> Callable[[Callable], Callable]:
        def make(original: Callable) -> Callable:
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                self._open_step_if_needed()
                self._state.denoiser_calls += 1
                name = naming.denoiser_range(self._state.completed_steps, attr, self._state.denoiser_calls)
                with self._ranges.range(name):
                    return original(*args, **kwargs)

            return wrapper

        return make

    def _scheduler(self) -> Callable[[Callable], Callable]:
        def make(original: Callable) -> Callable:
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                state = self._state
                self._open_step_if_needed()
                try:
                    with self._ranges.range(naming.scheduler_range(state.completed_steps)):
                        return original(*args, **kwargs)
                finally:
                    self._close_step()
                    state.completed_steps += 1
                    if self.on_step is not None:
                        self.on_step(state.completed_steps)

            return wrapper

        return make

    def _wrap_pipeline_call(self) -> None:
        original_class = type(self.pipeline)
        instrumentation = self

        def __call__(pipe: Any, *args: Any, **kwargs: Any) -> Any:
            instrumentation._state = _StepState()
            ranges = instrumentation._ranges
            depth = ranges.depth
            ranges.push(naming.PIPELINE)
            try:
                return original_class.__call__(pipe, *args, **kwargs)
            finally:
                instrumentation._close_step()
                ranges.pop_to(depth)

        subclass = type(
            original_class.__name__,
            (original_class,),
            {"__call__": __call__, "_profkit_instrumented": True, "__module__": original_class.__module__},
        )
        self.pipeline.__class__ = subclass
        self._original_class = original_class


def _call_method(component: Any) -> str:
    """nn.Modules are wrapped at ``forward`` (what ``__call__`` runs); other callables at ``__call__``."""
    return "forward" if hasattr(component, "forward") else "__call__"


def instrument(
    pipeline: Any,
    *,
    on_step: Callable[[int], None] | None = None,
    use_nvtx: bool = True,
    use_torch: bool = True,
    on_range: Callable[[str, bool], None] | None = None,
) -> Instrumentation:
    """Return an :class:`Instrumentation` context manager for ``pipeline`` (see module docs).

    ``on_range(name, opened)`` is called as each profkit range opens and closes (benchmark timers).
    """
    return Instrumentation(pipeline, on_step=on_step, use_nvtx=use_nvtx, use_torch=use_torch, on_range=on_range)
