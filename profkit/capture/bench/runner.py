"""Run benchmark trials: configurations interleaved, warm-ups apart, every trial's raw timings kept.

Each configuration is a (dtype, batch) pair. One pipeline is loaded per dtype; after each
configuration's warm-up calls (the first one is the cold-start time), trials run in rounds A B A B ...
so that drift of the machine (clocks, temperature, other load) spreads over all configurations.

Per trial, timed with the host clock around the call plus a device synchronization (end to end,
pre- and post-processing included), and through profkit's ranges: the denoise loop (first step start
to last step end), each step, the text encoders and the VAE. On CUDA the range times come from CUDA
events (GPU time between the marks) and the peak allocated/reserved memory is read per trial.

A trial that raises (out of memory included) is recorded with its error and the run goes on; Ctrl-C or SIGTERM
(see :mod:`profkit.interrupts`) stops the run and returns what was measured, marked "interrupted".
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable
from typing import Any

import msgspec

from profkit import naming
from profkit.capture.bench.sampler import Sampler
from profkit.capture.environment import device_info, environment
from profkit.capture.instrument import instrument
from profkit.capture.progress import NoProgress, Progress
from profkit.capture.run import call_kwargs, synchronize
from profkit.capture.settings import CaptureSettings
from profkit.errors import SettingError
from profkit.model.bench import BenchResult, BenchSettings, ConfigRun, Trial, config_name
from profkit.pipelines.loading import LoadedPipeline, load_pipeline, resolve_device


def validate_settings(settings: BenchSettings) -> BenchSettings:
    """``settings`` when a run can be made of them; else a :class:`SettingError` saying what is wrong."""
    for batch in settings.batches:  # dtypes, steps, sizes, batch, prompts, warm-up: the capture's own checks
        capture_settings(settings, batch).validate()
    if not settings.batches:
        raise SettingError("batches", "needs at least one batch size")
    if len(set(settings.batches)) != len(settings.batches):
        raise SettingError("batches", "lists a batch size twice")
    if settings.trials < 1:
        raise SettingError("trials", f"must be at least 1 (got {settings.trials})")
    if settings.time_budget_s is not None and settings.time_budget_s <= 0:
        raise SettingError("time_budget_s", f"must be positive (got {settings.time_budget_s})")
    if not 1 <= settings.sample_hz <= 1000:
        raise SettingError("sample_hz", f"must be between 1 and 1000 Hz (got {settings.sample_hz})")
    return settings


def capture_settings(settings: BenchSettings, batch: int) -> CaptureSettings:
    """The capture settings of one pipeline call with ``batch`` prompts (what every trial runs)."""
    return CaptureSettings(
        model=settings.model,
        dtypes=settings.dtypes,
        steps=settings.steps,
        height=settings.height,
        width=settings.width,
        batch=batch,
        prompts=settings.prompts,
        seed=settings.seed,
        warmup=settings.warmup,
        device=settings.device,
        guidance_scale=settings.guidance_scale,
    )


class _Records:
    """The run so far: configurations (replaced as they progress) and the trial order; kept on Ctrl-C."""

    def __init__(self, settings: BenchSettings) -> None:
        self.configs = {
            config_name(d, b): ConfigRun(name=config_name(d, b), dtype=d, batch=b) for d, b in settings.configs()
        }
        self.order: list[str] = []

    def update(self, name: str, **changes: Any) -> None:
        self.configs[name] = msgspec.structs.replace(self.configs[name], **changes)

    def add_trial(self, trial: Trial) -> None:
        config = self.configs[trial.config]
        self.update(trial.config, trials=(*config.trials, trial))


class _RangeTimer:
    """Open/close times of profkit ranges during one call, by host clock or CUDA events."""

    def __init__(self, cuda: bool) -> None:
        self.cuda = cuda
        self.marks: list[tuple[str, bool, Any]] = []

    def __call__(self, name: str, opened: bool) -> None:
        if self.cuda:
            import torch

            event = torch.cuda.Event(enable_timing=True)
            event.record()
            self.marks.append((name, opened, event))
        else:
            self.marks.append((name, opened, time.perf_counter()))

    def durations_ms(self) -> list[tuple[str, float, float]]:
        """(name, start, duration) of every closed range; times in ms from the first mark."""
        if not self.marks:
            return []
        first = self.marks[0][2]

        def at(mark: Any) -> float:
            return first.elapsed_time(mark) if self.cuda else (mark - first) * 1000.0

        stack: list[tuple[str, float]] = []
        result = []
        for name, opened, mark in self.marks:
            if opened:
                stack.append((name, at(mark)))
            elif stack:
                open_name, start = stack.pop()
                result.append((open_name, start, at(mark) - start))
        return result


def _fill(trial: Trial, timer: _RangeTimer) -> Trial:
    """``trial`` with the step, denoise-loop and stage times of the ranges ``timer`` saw."""
    steps = []
    stage_ms = {"text_encoder": 0.0, "vae": 0.0}
    for name, start, duration in timer.durations_ms():
        info = naming.parse_range_name(name)
        if info is None:
            continue
        if info.kind == "step":
            steps.append((start, duration))
        elif info.kind in ("text_encoder", "vae"):
            stage_ms[info.kind] += duration
    steps.sort()
    return msgspec.structs.replace(
        trial,
        steps_ms=tuple(duration for _, duration in steps),
        inference_ms=steps[-1][0] + steps[-1][1] - steps[0][0] if steps else trial.inference_ms,
        stage_ms=stage_ms,
        range_timer="cuda events" if timer.cuda else "host",
    )


def _error_text(error: BaseException) -> str:
    text = f"{type(error).__name__}: {error}".strip()
    if "out of memory" in text.lower():
        text = "out of memory: " + text
    return text[:500]


def run_bench(
    settings: BenchSettings,
    progress: Progress | None = None,
    load: Callable[[str, str, str], LoadedPipeline] = load_pipeline,
) -> BenchResult:
    """Run every configuration's warm-ups and trials; Ctrl-C or SIGTERM ends the run with what was measured."""
    return measure(settings, progress, load)[0]


def measure(
    settings: BenchSettings,
    progress: Progress | None = None,
    load: Callable[[str, str, str], LoadedPipeline] = load_pipeline,
    keep: Callable[..., Any] | None = None,
) -> tuple[BenchResult, KeyboardInterrupt | None]:
    """:func:`run_bench`, and the interruption that ended it early (``None`` when it ran to the end).

    An interruption (Ctrl-C, or SIGTERM raised as :class:`~profkit.errors.Terminated`) stops the run between or
    inside trials; the result keeps every finished trial, the cut one as failed "interrupted", and status
    "interrupted".
    """
    validate_settings(settings)
    device = resolve_device(settings.device)
    progress = progress or NoProgress()
    records = _Records(settings)
    progress.start("", len(records.configs) * (settings.warmup + settings.trials))
    started = time.perf_counter()
    status = "complete"
    interruption: KeyboardInterrupt | None = None
    with Sampler(device, settings.sample_hz) as sampler:
        try:
            pipelines = _load_all(settings, device, records, load, sampler)
            _warm_up(settings, device, records, pipelines, sampler, progress)
            if keep is not None:  # one untimed call per configuration: its images (and latents) for profkit.quality
                for c in (c for c in records.configs.values() if not c.error and c.dtype in pipelines):
                    keep(
                        c.name,
                        pipelines[c.dtype],
                        call_kwargs(capture_settings(settings, c.batch), device, settings.seed),
                    )
            _trials(settings, device, records, pipelines, sampler, progress, started)
        except KeyboardInterrupt as interrupt:
            status = "interrupted"
            interruption = interrupt
    samples = sampler.samples
    peak_rss = max(max(samples.rss_mb, default=0.0), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    result = BenchResult(
        environment=environment(),
        device_info=device_info(device),
        device=device,
        settings=settings,
        status=status,
        duration_s=time.perf_counter() - started,
        peak_rss_mb=peak_rss,
        order=tuple(records.order),
        configs=tuple(records.configs.values()),
        samples=samples,
    )
    return result, interruption


def _load_all(
    settings: BenchSettings,
    device: str,
    records: _Records,
    load: Callable[[str, str, str], LoadedPipeline],
    sampler: Sampler,
) -> dict[str, Any]:
    pipelines: dict[str, Any] = {}
    for dtype in settings.dtypes:
        sampler.label = f"loading {dtype}"
        mine = [c.name for c in records.configs.values() if c.dtype == dtype]
        try:
            loaded = load(settings.model, dtype, device)
        except KeyboardInterrupt:
            raise
        except Exception as error:
            for name in mine:
                records.update(name, error=f"load failed: {_error_text(error)}")
            continue
        pipelines[dtype] = loaded.pipeline
        for name in mine:
            records.update(name, load_s=loaded.load_seconds)
    return pipelines


def _call(settings: BenchSettings, device: str, pipeline: Any, batch: int) -> Any:
    output = pipeline(**call_kwargs(capture_settings(settings, batch), device, settings.seed))
    synchronize(device)
    return output


def _warm_up(
    settings: BenchSettings,
    device: str,
    records: _Records,
    pipelines: dict[str, Any],
    sampler: Sampler,
    progress: Progress,
) -> None:
    for config in list(records.configs.values()):
        if config.error or config.dtype not in pipelines:
            continue
        sampler.label = f"warm-up {config.name}"
        for _ in range(settings.warmup):
            started = time.perf_counter()
            try:
                _call(settings, device, pipelines[config.dtype], config.batch)
            except KeyboardInterrupt:
                raise
            except Exception as error:
                records.update(config.name, error=f"warm-up failed: {_error_text(error)}")
                _release_memory(device)
                break
            elapsed = time.perf_counter() - started
            warmups = (*records.configs[config.name].warmup_s, elapsed)
            records.update(config.name, warmup_s=warmups, cold_call_s=warmups[0])
            progress.advance(f"warm-up {config.name}")


def _release_memory(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.empty_cache()


def _trials(
    settings: BenchSettings,
    device: str,
    records: _Records,
    pipelines: dict[str, Any],
    sampler: Sampler,
    progress: Progress,
    started: float,
) -> None:
    runnable = [c for c in records.configs.values() if not c.error and c.dtype in pipelines]
    trials_started = time.perf_counter()
    for round_index in range(settings.trials):
        if (
            settings.time_budget_s is not None
            and round_index
            and (time.perf_counter() - trials_started >= settings.time_budget_s)
        ):
            break
        for config in runnable:  # A B A B ...: every round visits every configuration once
            sampler.label = config.name
            records.add_trial(_trial(device, settings, config, pipelines[config.dtype], round_index, records, started))
            progress.advance(config.name)
        sampler.label = ""


def _trial(
    device: str,
    settings: BenchSettings,
    config: ConfigRun,
    pipeline: Any,
    round_index: int,
    records: _Records,
    started: float,
) -> Trial:
    """One measured call; a failure is recorded in the trial, Ctrl-C records it as interrupted and goes up."""
    cuda = device.startswith("cuda")
    trial = Trial(config=config.name, round=round_index, order=len(records.order), ok=False)
    trial = msgspec.structs.replace(trial, started_s=time.perf_counter() - started)
    records.order.append(config.name)
    timer = _RangeTimer(cuda)
    if cuda:
        import torch

        torch.cuda.reset_peak_memory_stats()
    try:
        with instrument(pipeline, use_nvtx=False, use_torch=False, on_range=timer):
            begin = time.perf_counter()
            _call(settings, device, pipeline, config.batch)
            e2e_ms = (time.perf_counter() - begin) * 1000.0
        trial = _fill(msgspec.structs.replace(trial, ok=True, e2e_ms=e2e_ms), timer)
    except KeyboardInterrupt:
        records.add_trial(msgspec.structs.replace(trial, error="interrupted"))
        raise
    except Exception as error:
        trial = msgspec.structs.replace(trial, error=_error_text(error))
        _release_memory(device)
    if cuda:
        import torch

        trial = msgspec.structs.replace(
            trial,
            peak_allocated_mb=torch.cuda.max_memory_allocated() / 2**20,
            peak_reserved_mb=torch.cuda.max_memory_reserved() / 2**20,
        )
    return trial


__all__ = ["BenchSettings", "capture_settings", "measure", "run_bench", "validate_settings"]
