"""Run benchmark trials: configurations interleaved, warm-ups apart, every trial's raw timings kept.

Each configuration is a (dtype, batch) pair. One pipeline is loaded per dtype; after each
configuration's warm-up calls (the first one is the cold-start time), trials run in rounds A B A B ...
so that drift of the machine (clocks, temperature, other load) spreads over all configurations.

Per trial, timed with the host clock around the call plus a device synchronization (end to end,
pre- and post-processing included), and through profkit's ranges: the denoise loop (first step start
to last step end), each step, the text encoders and the VAE. On CUDA the range times come from CUDA
events (GPU time between the marks) and the peak allocated/reserved memory is read per trial.

A trial that raises (out of memory included) is recorded with its error and the run goes on; Ctrl-C
stops the run and returns what was measured, marked "interrupted".
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from profkit import naming
from profkit.capture.bench.sampler import Sampler, Samples
from profkit.capture.instrument import instrument
from profkit.capture.run import call_kwargs, synchronize
from profkit.capture.settings import DEFAULT_PROMPT, CaptureSettings
from profkit.errors import SettingError
from profkit.pipelines.loading import LoadedPipeline, load_pipeline, resolve_device


@dataclass(frozen=True)
class BenchSettings:
    model: str = "tiny-sd"
    dtypes: tuple[str, ...] = ("fp32",)
    batches: tuple[int, ...] = (1,)
    steps: int = 10
    height: int = 64
    width: int = 64
    prompts: tuple[str, ...] = (DEFAULT_PROMPT,)
    seed: int = 0
    device: str = "auto"
    warmup: int = 1
    trials: int = 10
    time_budget_s: float | None = None  # stop starting new rounds after this many seconds of trials
    guidance_scale: float | None = None
    sample_hz: float = 20.0

    def validate(self) -> BenchSettings:
        for batch in self.batches:  # dtypes, steps, sizes, batch, prompts, warm-up: the capture's own checks
            self.capture_settings(batch).validate()
        if not self.batches:
            raise SettingError("batches", "needs at least one batch size")
        if len(set(self.batches)) != len(self.batches):
            raise SettingError("batches", "lists a batch size twice")
        if self.trials < 1:
            raise SettingError("trials", f"must be at least 1 (got {self.trials})")
        if self.time_budget_s is not None and self.time_budget_s <= 0:
            raise SettingError("time_budget_s", f"must be positive (got {self.time_budget_s})")
        if not 1 <= self.sample_hz <= 1000:
            raise SettingError("sample_hz", f"must be between 1 and 1000 (got {self.sample_hz})")
        return self

    def configs(self) -> list[tuple[str, int]]:
        return [(dtype, batch) for dtype in self.dtypes for batch in self.batches]

    def capture_settings(self, batch: int) -> CaptureSettings:
        """The capture settings of one pipeline call with ``batch`` prompts (what every trial runs)."""
        return CaptureSettings(
            model=self.model,
            dtypes=self.dtypes,
            steps=self.steps,
            height=self.height,
            width=self.width,
            batch=batch,
            prompts=self.prompts,
            seed=self.seed,
            warmup=self.warmup,
            device=self.device,
            guidance_scale=self.guidance_scale,
        )

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("dtypes", "batches", "prompts"):
            data[key] = list(data[key])
        return data


def config_name(dtype: str, batch: int) -> str:
    return f"{dtype} b{batch}"


@dataclass
class Trial:
    config: str
    round: int
    order: int  # position in the whole run (0 = first trial of all)
    ok: bool
    error: str | None = None
    e2e_ms: float | None = None
    inference_ms: float | None = None
    steps_ms: list[float] = field(default_factory=list)
    stage_ms: dict[str, float] = field(default_factory=dict)  # text_encoder, vae (summed over calls)
    range_timer: str = "host"  # host | cuda events
    peak_allocated_mb: float | None = None
    peak_reserved_mb: float | None = None
    started_s: float = 0.0  # since the run started (aligns with the utilization samples)


@dataclass
class ConfigRun:
    name: str
    dtype: str
    batch: int
    load_s: float | None = None
    cold_call_s: float | None = None  # the first warm-up call
    warmup_s: list[float] = field(default_factory=list)
    trials: list[Trial] = field(default_factory=list)
    error: str | None = None  # load or warm-up failure: no trials ran


@dataclass
class BenchRun:
    settings: dict[str, Any]
    device: str
    status: str  # complete | interrupted
    order: list[str]
    configs: list[ConfigRun]
    samples: Samples
    duration_s: float
    peak_rss_mb: float


class BenchProgress(Protocol):
    def start(self, total_calls: int) -> None: ...
    def advance(self, text: str) -> None: ...


class _Quiet:
    def start(self, total_calls: int) -> None:
        pass

    def advance(self, text: str) -> None:
        pass


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


def _fill(trial: Trial, timer: _RangeTimer) -> None:
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
    trial.steps_ms = [duration for _, duration in steps]
    if steps:
        trial.inference_ms = steps[-1][0] + steps[-1][1] - steps[0][0]
    trial.stage_ms = stage_ms
    trial.range_timer = "cuda events" if timer.cuda else "host"


def _error_text(error: BaseException) -> str:
    text = f"{type(error).__name__}: {error}".strip()
    if "out of memory" in text.lower():
        text = "out of memory: " + text
    return text[:500]


def run_bench(
    settings: BenchSettings,
    progress: BenchProgress | None = None,
    load: Callable[[str, str, str], LoadedPipeline] = load_pipeline,
) -> BenchRun:
    settings.validate()
    device = resolve_device(settings.device)
    cuda = device.startswith("cuda")
    progress = progress or _Quiet()
    configs = [ConfigRun(config_name(d, b), d, b) for d, b in settings.configs()]
    progress.start(len(configs) * (settings.warmup + settings.trials))
    started = time.perf_counter()
    status = "complete"
    order: list[str] = []
    with Sampler(device, settings.sample_hz) as sampler:
        try:
            pipelines = _load_all(settings, device, configs, load, sampler)
            _warm_up(settings, device, configs, pipelines, sampler, progress)
            _trials(settings, device, cuda, configs, pipelines, sampler, progress, started, order)
        except KeyboardInterrupt:
            status = "interrupted"
    rss = max(sampler.samples.rss_mb, default=0.0)
    import resource

    peak_rss = max(rss, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return BenchRun(
        settings.as_dict(), device, status, order, configs, sampler.samples, time.perf_counter() - started, peak_rss
    )


def _load_all(
    settings: BenchSettings,
    device: str,
    configs: list[ConfigRun],
    load: Callable[[str, str, str], LoadedPipeline],
    sampler: Sampler,
) -> dict[str, Any]:
    pipelines: dict[str, Any] = {}
    for dtype in dict.fromkeys(c.dtype for c in configs):
        sampler.label = f"loading {dtype}"
        try:
            loaded = load(settings.model, dtype, device)
        except KeyboardInterrupt:
            raise
        except Exception as error:
            for config in configs:
                if config.dtype == dtype:
                    config.error = f"load failed: {_error_text(error)}"
            continue
        pipelines[dtype] = loaded.pipeline
        for config in configs:
            if config.dtype == dtype:
                config.load_s = loaded.load_seconds
    return pipelines


def _call(settings: BenchSettings, device: str, pipeline: Any, batch: int) -> Any:
    output = pipeline(**call_kwargs(settings.capture_settings(batch), device, settings.seed))
    synchronize(device)
    return output


def _warm_up(
    settings: BenchSettings,
    device: str,
    configs: list[ConfigRun],
    pipelines: dict[str, Any],
    sampler: Sampler,
    progress: BenchProgress,
) -> None:
    for config in configs:
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
                config.error = f"warm-up failed: {_error_text(error)}"
                _release_memory(device)
                break
            elapsed = time.perf_counter() - started
            config.warmup_s.append(elapsed)
            if config.cold_call_s is None:
                config.cold_call_s = elapsed
            progress.advance(f"warm-up {config.name}")


def _release_memory(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.empty_cache()


def _trials(
    settings: BenchSettings,
    device: str,
    cuda: bool,
    configs: list[ConfigRun],
    pipelines: dict[str, Any],
    sampler: Sampler,
    progress: BenchProgress,
    started: float,
    order: list[str],
) -> None:
    runnable = [c for c in configs if not c.error and c.dtype in pipelines]
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
            trial = Trial(config.name, round_index, len(order), ok=False, started_s=time.perf_counter() - started)
            order.append(config.name)
            timer = _RangeTimer(cuda)
            if cuda:
                import torch

                torch.cuda.reset_peak_memory_stats()
            try:
                with instrument(pipelines[config.dtype], use_nvtx=False, use_torch=False, on_range=timer):
                    begin = time.perf_counter()
                    _call(settings, device, pipelines[config.dtype], config.batch)
                    trial.e2e_ms = (time.perf_counter() - begin) * 1000.0
                trial.ok = True
                _fill(trial, timer)
            except KeyboardInterrupt:
                trial.error = "interrupted"
                config.trials.append(trial)
                raise
            except Exception as error:
                trial.error = _error_text(error)
                _release_memory(device)
            if cuda:
                import torch

                trial.peak_allocated_mb = torch.cuda.max_memory_allocated() / 2**20
                trial.peak_reserved_mb = torch.cuda.max_memory_reserved() / 2**20
            config.trials.append(trial)
            progress.advance(config.name)
        sampler.label = ""


__all__ = ["BenchRun", "BenchSettings", "ConfigRun", "Trial", "run_bench"]
