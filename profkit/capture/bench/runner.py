"""Run benchmark trials: configurations interleaved, warm-ups apart, every trial's raw timings kept.

Each configuration is a dtype, a set of optimization knobs, a number of steps and a batch. One pipeline is loaded
per (dtype, knobs), its load-time knobs applied; after each configuration's warm-up calls (the first one is the
cold-start time, and with ``--compile`` the compile time), trials run in rounds A B A B ... so that drift of the
machine (clocks, temperature, other load) spreads over all configurations. Knobs that a device or install cannot
do are refused before any work. ``--batch auto`` (CUDA only) first finds, per pipeline, the largest batch that fits
(:mod:`profkit.capture.bench.autobatch`).

Per trial, timed with the host clock around the call plus a device synchronization (end to end,
pre- and post-processing included), and through profkit's ranges: the denoise loop (first step start
to last step end), each step, the text encoders and the VAE. On CUDA the range times come from CUDA
events (GPU time between the marks) and the peak allocated/reserved memory is read per trial, and per stage
(text encoders, denoise, VAE) at the range boundaries; on a CPU the stage memory is "not captured".

A trial that raises (out of memory included) is recorded with its error and the run goes on; Ctrl-C or SIGTERM
(see :mod:`profkit.interrupts`) stops the run and returns what was measured, marked "interrupted".
"""

from __future__ import annotations

import dataclasses
import resource
import time
from collections.abc import Callable
from typing import Any

import msgspec

from profkit import naming
from profkit.capture.bench.sampler import Sampler
from profkit.capture.energy import EnergyMeter, open_meter
from profkit.capture.environment import device_info, environment
from profkit.capture.instrument import StageMemoryTracker, chain_ranges, instrument
from profkit.capture.knobs import call_context, check_knobs
from profkit.capture.progress import NoProgress, Progress
from profkit.capture.run import call_kwargs, load_prepared, synchronize
from profkit.capture.settings import CaptureSettings
from profkit.errors import SettingError
from profkit.model.bench import TRIAL_INTERRUPTED, BatchTry, BenchResult, BenchSettings, ConfigKey, ConfigRun, Trial
from profkit.model.capture import Knobs
from profkit.pipelines.loading import LoadedPipeline, load_pipeline, resolve_device

PipelineKey = tuple[str, Knobs]  # (dtype, knobs): one loaded pipeline


def validate_settings(settings: BenchSettings) -> BenchSettings:
    """``settings`` when a run can be made of them; else a :class:`SettingError` saying what is wrong."""
    for batch in settings.batches or (1,):  # dtypes, steps, sizes, knobs, prompts, warm-up: the capture's checks
        dataclasses.replace(
            capture_settings(settings, batch), steps_list=settings.steps_list, grid=settings.grid
        ).validate()
    if settings.batch_auto and settings.batches:
        raise SettingError("batches", "takes auto or batch sizes, not both")
    if not settings.batches and not settings.batch_auto:
        raise SettingError("batches", "needs at least one batch size (or auto)")
    if settings.batch_auto and not 1 <= settings.max_batch <= 65536:
        raise SettingError("max_batch", f"must be between 1 and 65536 (got {settings.max_batch})")
    if len(set(settings.batches)) != len(settings.batches):
        raise SettingError("batches", "lists a batch size twice")
    if settings.trials < 1:
        raise SettingError("trials", f"must be at least 1 (got {settings.trials})")
    if settings.time_budget_s is not None and settings.time_budget_s <= 0:
        raise SettingError("time_budget_s", f"must be positive (got {settings.time_budget_s})")
    if not 1 <= settings.sample_hz <= 1000:
        raise SettingError("sample_hz", f"must be between 1 and 1000 Hz (got {settings.sample_hz})")
    return settings


def capture_settings(
    settings: BenchSettings, batch: int, steps: int | None = None, knobs: Knobs | None = None
) -> CaptureSettings:
    """The capture settings of one pipeline call with ``batch`` prompts (what every trial of a configuration runs)."""
    return CaptureSettings(
        model=settings.model,
        dtypes=settings.dtypes,
        steps=steps if steps is not None else settings.steps,
        knobs=knobs if knobs is not None else Knobs(),
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

    def __init__(self, keys: list[ConfigKey]) -> None:
        self.keys = {key.name: key for key in keys}
        self.configs = {
            key.name: ConfigRun(name=key.name, dtype=key.dtype, batch=key.batch, steps=key.steps, knobs=key.knobs)
            for key in keys
        }
        self.order: list[str] = []

    def pipeline_key(self, name: str) -> PipelineKey:
        return self.keys[name].dtype, self.keys[name].knobs

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


def check_device(settings: BenchSettings, device: str) -> None:
    """Refuse, before any work, what this device or install cannot do: knobs, and ``--batch auto`` off CUDA."""
    check_knobs([knobs for _, knobs in settings.pipelines()], device, settings.warmup, settings.dtypes)
    if settings.batch_auto and not device.startswith("cuda"):
        raise SettingError(
            "batches",
            "auto needs a CUDA device (it finds the largest batch before the allocator runs out of memory; on a CPU "
            "the limit is RAM and swapping): give batch sizes instead",
        )


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
    check_device(settings, device)
    progress = progress or NoProgress()
    records = _Records(settings.configs({key: (1,) for key in settings.pipelines()} if settings.batch_auto else None))
    started = time.perf_counter()
    status = "complete"
    interruption: KeyboardInterrupt | None = None
    with Sampler(device, settings.sample_hz) as sampler, open_meter(device) as meter:
        try:
            pipelines, errors = _load_all(settings, device, load, sampler)
            searches = _auto_batches(settings, device, pipelines, sampler) if settings.batch_auto else {}
            if settings.batch_auto:  # a pipeline that did not load keeps batch 1, with its error
                batches = {key: (searches[key][0] if key in searches else 1,) for key in settings.pipelines()}
                records = _Records(settings.configs(batches))
            _record_loads(records, pipelines, errors, searches)
            progress.start("", len(records.configs) * (settings.warmup + settings.trials))
            _warm_up(settings, device, records, pipelines, sampler, progress)
            if keep is not None:  # one untimed call per configuration: its images (and latents) for profkit.quality
                for c in (
                    c for c in records.configs.values() if not c.error and records.pipeline_key(c.name) in pipelines
                ):
                    with call_context(c.knobs):  # the configuration's own steps and knobs, as its trials run
                        keep(
                            c.name,
                            pipelines[records.pipeline_key(c.name)].pipeline,
                            call_kwargs(capture_settings(settings, c.batch, c.steps, c.knobs), device, settings.seed),
                        )
            _trials(settings, device, records, pipelines, sampler, progress, started, meter)
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
        energy_source=meter.describe(),
    )
    return result, interruption


def _load_all(
    settings: BenchSettings,
    device: str,
    load: Callable[[str, str, str], LoadedPipeline],
    sampler: Sampler,
) -> tuple[dict[PipelineKey, LoadedPipeline], dict[PipelineKey, str]]:
    """One pipeline per (dtype, knobs), its load-time knobs applied; the error of each that failed."""
    pipelines: dict[PipelineKey, LoadedPipeline] = {}
    errors: dict[PipelineKey, str] = {}
    for dtype, knobs in settings.pipelines():
        sampler.label = f"loading {dtype} {knobs.tag}".strip()
        try:
            pipelines[(dtype, knobs)] = load_prepared(capture_settings(settings, 1, knobs=knobs), dtype, device, load)
        except KeyboardInterrupt:
            raise
        except Exception as error:
            errors[(dtype, knobs)] = f"load failed: {_error_text(error)}"
    return pipelines, errors


def _record_loads(
    records: _Records,
    pipelines: dict[PipelineKey, LoadedPipeline],
    errors: dict[PipelineKey, str],
    searches: dict[PipelineKey, tuple[int, tuple[BatchTry, ...]]],
) -> None:
    for name in list(records.configs):
        key = records.pipeline_key(name)
        if key in errors:
            records.update(name, error=errors[key])
            continue
        tries = searches[key][1] if key in searches else ()
        changes: dict[str, Any] = {"load_s": pipelines[key].load_seconds, "batch_search": tries}
        if tries and not any(t.fits for t in tries):
            changes["error"] = f"batch auto: not even batch 1 fits ({tries[0].error})"
        records.update(name, **changes)


def _auto_batches(
    settings: BenchSettings, device: str, pipelines: dict[PipelineKey, LoadedPipeline], sampler: Sampler
) -> dict[PipelineKey, tuple[int, tuple[BatchTry, ...]]]:
    """Per loaded pipeline, the largest batch that fits (1 when none does: its configuration then records why)."""
    from profkit.capture.bench.autobatch import find_max_batch

    steps = min(settings.all_steps())  # memory does not grow with the number of steps

    found = {}
    for key, loaded in pipelines.items():
        dtype, knobs = key
        sampler.label = f"batch auto {dtype} {knobs.tag}".strip()

        def fits(batch: int, loaded: LoadedPipeline = loaded, knobs: Knobs = knobs) -> str | None:
            try:
                _call(settings, device, loaded.pipeline, batch, steps, knobs)
            except KeyboardInterrupt:
                raise
            except Exception as error:
                _release_memory(device)
                return _error_text(error)
            return None

        best, tries = find_max_batch(fits, settings.max_batch, settings.max_batch_tries)
        found[key] = (best or 1, tuple(tries))
    return found


def _call(settings: BenchSettings, device: str, pipeline: Any, batch: int, steps: int | None, knobs: Knobs) -> Any:
    with call_context(knobs):
        output = pipeline(**call_kwargs(capture_settings(settings, batch, steps, knobs), device, settings.seed))
        synchronize(device)
    return output


def _warm_up(
    settings: BenchSettings,
    device: str,
    records: _Records,
    pipelines: dict[PipelineKey, LoadedPipeline],
    sampler: Sampler,
    progress: Progress,
) -> None:
    for config in list(records.configs.values()):
        key = records.pipeline_key(config.name)
        if config.error or key not in pipelines:
            continue
        sampler.label = f"warm-up {config.name}"
        for _ in range(settings.warmup):
            started = time.perf_counter()
            try:
                _call(settings, device, pipelines[key].pipeline, config.batch, config.steps, config.knobs)
            except KeyboardInterrupt:
                raise
            except Exception as error:
                records.update(config.name, error=f"warm-up failed: {_error_text(error)}")
                _release_memory(device)
                break
            elapsed = time.perf_counter() - started
            warmups = (*records.configs[config.name].warmup_s, elapsed)
            changes: dict[str, Any] = {"warmup_s": warmups, "cold_call_s": warmups[0]}
            if config.knobs.compile != "off":
                changes["compile_s"] = warmups[0]
            records.update(config.name, **changes)
            progress.advance(f"warm-up {config.name}")


def _release_memory(device: str) -> None:
    if device.startswith("cuda"):
        import gc

        import torch

        gc.collect()
        torch.cuda.empty_cache()


def _trials(
    settings: BenchSettings,
    device: str,
    records: _Records,
    pipelines: dict[PipelineKey, LoadedPipeline],
    sampler: Sampler,
    progress: Progress,
    started: float,
    meter: EnergyMeter,
) -> None:
    runnable = [c for c in records.configs.values() if not c.error and records.pipeline_key(c.name) in pipelines]
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
            pipeline = pipelines[records.pipeline_key(config.name)].pipeline
            records.add_trial(_trial(device, settings, config, pipeline, round_index, records, started, meter))
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
    meter: EnergyMeter,
) -> Trial:
    """One measured call; a failure is recorded in the trial, Ctrl-C records it as interrupted and goes up."""
    cuda = device.startswith("cuda")
    trial = Trial(config=config.name, round=round_index, order=len(records.order), ok=False)
    trial = msgspec.structs.replace(trial, started_s=time.perf_counter() - started)
    records.order.append(config.name)
    timer = _RangeTimer(cuda)
    memory = StageMemoryTracker.for_device(device)  # resets the peak counters at every range boundary
    if cuda:
        import torch

        torch.cuda.reset_peak_memory_stats()
    try:
        with instrument(pipeline, use_nvtx=False, use_torch=False, on_range=chain_ranges(timer, memory)):
            energy_start = meter.read()  # NVML total energy (mJ) around the timed call, outside its time
            begin = time.perf_counter()
            _call(settings, device, pipeline, config.batch, config.steps, config.knobs)
            e2e_ms = (time.perf_counter() - begin) * 1000.0
            energy_mj = meter.since(energy_start)
        trial = _fill(msgspec.structs.replace(trial, ok=True, e2e_ms=e2e_ms, energy_mj=energy_mj), timer)
    except KeyboardInterrupt:
        records.add_trial(msgspec.structs.replace(trial, error=TRIAL_INTERRUPTED))
        raise
    except Exception as error:
        trial = msgspec.structs.replace(trial, error=_error_text(error))
        _release_memory(device)
    if cuda and memory is not None:
        import torch

        trial = msgspec.structs.replace(
            trial,
            stage_peak_allocated_mb=memory.peaks_mb(),
            peak_allocated_mb=max(memory.overall_mb(), torch.cuda.max_memory_allocated() / 2**20),
            peak_reserved_mb=max(memory.overall_reserved_mb(), torch.cuda.max_memory_reserved() / 2**20),
        )
    return trial


__all__ = ["BenchSettings", "capture_settings", "check_device", "measure", "run_bench", "validate_settings"]
