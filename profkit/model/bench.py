"""The benchmark result document (``profkit.bench``): settings, raw trials and samples, and their summary.

``profkit bench`` writes one :class:`BenchResult` per run (``bench.json``): what was asked
(:class:`BenchSettings`), every trial's raw timings per configuration (:class:`ConfigRun`,
:class:`Trial`), the utilization samples (:class:`Samples`) and the statistics computed from them
(:class:`BenchSummary`, recomputed whenever a result is checked). Every type is a frozen msgspec Struct.

Version 1 is the shape profkit wrote before documents were typed; the parts a hand-made or older file
may lack (environment, device, status, samples, trial rounds ...) have defaults here.

A file is measured data a gate decides on, so loading refuses what no measurement gives, naming the field:
a negative, NaN or infinite time, size or reading (:data:`Measure`), a batch below 1, and a trial whose
denoise loop, steps or stages take longer than the whole call (:func:`trial_problem`). Results built in
memory by a running benchmark are not re-checked.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

import msgspec

from profkit.model.base import Document
from profkit.model.capture import KnobGrid, Knobs

#: The prompt of every capture and benchmark unless one is given.
#: The error of a trial cut by an interruption (Ctrl-C, SIGTERM): not a failure of the model.
TRIAL_INTERRUPTED = "interrupted"
DEFAULT_PROMPT = "a watercolor painting of a lighthouse at dawn"

#: A measured time, size, rate or reading as stored: finite and never negative (checked when a file is loaded).
Measure = Annotated[float, msgspec.Meta(ge=0, le=1e12)]
#: A batch size as stored: at least 1.
BatchSize = Annotated[int, msgspec.Meta(ge=1)]
#: How much longer than the whole call a part of it may measure (timer resolution, CUDA events vs host clock).
PART_SLACK = 0.01  # of the end-to-end time
PART_SLACK_MS = 1.0


class BenchSettings(msgspec.Struct, frozen=True, kw_only=True):
    """What a benchmark run is asked to do (checked by ``capture.bench.runner.validate_settings``)."""

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
    #: ``--steps`` as a list (empty: ``steps`` alone) and each optimization knob's values: crossed with the dtypes.
    steps_list: tuple[int, ...] = ()
    grid: KnobGrid = msgspec.field(default_factory=KnobGrid)
    #: ``--batch auto``: per pipeline, the largest batch that fits on the device (``batches`` is then empty).
    batch_auto: bool = False
    max_batch: int = 256  # the largest batch ``auto`` tries
    max_batch_tries: int = 12  # calls ``auto`` may make per pipeline

    def all_steps(self) -> tuple[int, ...]:
        return self.steps_list or (self.steps,)

    def pipelines(self) -> list[tuple[str, Knobs]]:
        """The (dtype, knobs) of every pipeline to load, in run order."""
        return [(dtype, knobs) for dtype in self.dtypes for knobs in self.grid.combinations()]

    def configs(self, batches: dict[tuple[str, Knobs], tuple[int, ...]] | None = None) -> list[ConfigKey]:
        """Every configuration, in run order: dtype x knobs x steps x batch (``batches`` per pipeline: auto)."""
        named_steps = len(self.all_steps()) > 1
        return [
            ConfigKey(dtype=dtype, knobs=knobs, steps=steps, batch=batch, named_steps=named_steps)
            for dtype, knobs in self.pipelines()
            for steps in self.all_steps()
            for batch in (batches or {}).get((dtype, knobs), self.batches)
        ]


def config_name(dtype: str, batch: int, steps: int | None = None, knobs: Knobs | None = None) -> str:
    """``"fp16 b2"``, then the steps (when a run varies them) and the changed knobs (``"fp16 b2 20steps cl"``)."""
    parts = [dtype, f"b{batch}"]
    if steps is not None:
        parts.append(f"{steps}steps")
    if knobs is not None and knobs.tag:
        parts.append(knobs.tag)
    return " ".join(parts)


class ConfigKey(msgspec.Struct, frozen=True, kw_only=True):
    """What makes one configuration: dtype, knobs (one pipeline each), steps and batch."""

    dtype: str
    knobs: Knobs
    steps: int
    batch: int
    named_steps: bool = False

    @property
    def name(self) -> str:
        return config_name(self.dtype, self.batch, self.steps if self.named_steps else None, self.knobs)


class Trial(msgspec.Struct, frozen=True, kw_only=True):
    """One measured pipeline call of one configuration."""

    config: str
    round: int = 0
    order: int = 0  # position in the whole run (0 = first trial of all)
    ok: bool
    error: str | None = None
    e2e_ms: Measure | None = None
    inference_ms: Measure | None = None
    steps_ms: tuple[Measure, ...] = ()
    stage_ms: dict[str, Measure] = msgspec.field(default_factory=dict)  # text_encoder, vae (summed over calls)
    range_timer: str = "host"  # host | cuda events
    #: Peak device memory per stage (text_encoders, denoise, vae, other), read at range boundaries (CUDA only).
    stage_peak_allocated_mb: dict[str, Measure] = msgspec.field(default_factory=dict)
    peak_allocated_mb: Measure | None = None
    peak_reserved_mb: Measure | None = None
    started_s: Measure = 0.0  # since the run started (aligns with the utilization samples)
    energy_mj: Measure | None = None  # NVML total-energy counter over the call (capture.energy); None: not captured

    def __post_init__(self) -> None:
        if self.ok and self.e2e_ms is None:
            raise ValueError(f"a successful trial of {self.config} has no e2e_ms")


def trial_problem(trial: Trial) -> str | None:
    """Why a stored trial cannot be a measurement: a part of the call (denoise loop, steps, a stage) that took
    longer than the whole call, or ``None``."""
    if trial.e2e_ms is None:
        return None
    limit = trial.e2e_ms * (1 + PART_SLACK) + PART_SLACK_MS
    parts = {
        "inference_ms": trial.inference_ms,
        "steps_ms (summed)": sum(trial.steps_ms) if trial.steps_ms else None,
        "stage_ms (summed)": sum(trial.stage_ms.values()) if trial.stage_ms else None,
    }
    for name, value in parts.items():
        if value is not None and value > limit:
            return (
                f"{name} of a trial of {trial.config} is {value:.3f} ms, longer than its whole call "
                f"(e2e_ms {trial.e2e_ms:.3f} ms)"
            )
    return None


class BatchTry(msgspec.Struct, frozen=True, kw_only=True):
    """One call of ``--batch auto``'s search: the batch tried and whether it fit."""

    batch: BatchSize
    fits: bool
    error: str | None = None


class ConfigRun(msgspec.Struct, frozen=True, kw_only=True):
    """One configuration (dtype, knobs, steps, batch): its load and warm-up times and its trials."""

    name: str
    dtype: str
    batch: BatchSize
    steps: int | None = None  # None in files from before steps lists (the settings' steps)
    knobs: Knobs = msgspec.field(default_factory=Knobs)
    load_s: Measure | None = None
    cold_call_s: Measure | None = None  # the first warm-up call
    compile_s: Measure | None = None  # with --compile: the first warm-up call, which compiled
    batch_search: tuple[BatchTry, ...] = ()  # --batch auto: the calls that found this batch
    warmup_s: tuple[Measure, ...] = ()
    trials: tuple[Trial, ...] = ()
    error: str | None = None  # load or warm-up failure: no trials ran


class Samples(msgspec.Struct, frozen=True, kw_only=True):
    """Utilization series sampled during the run; ``label`` says which configuration ran at each sample."""

    hz: Measure = 20.0
    t: tuple[Measure, ...] = ()  # seconds since the sampler started
    label: tuple[str, ...] = ()
    cpu_percent: tuple[Measure, ...] = ()
    rss_mb: tuple[Measure, ...] = ()
    # empty when NVML is not available; a failed read is None (null)
    gpu_util: tuple[Measure | None, ...] = ()
    gpu_mem_mb: tuple[Measure | None, ...] = ()
    gpu_power_w: tuple[Measure | None, ...] = ()
    gpu_sm_clock_mhz: tuple[Measure | None, ...] = ()
    gpu_source: str = "not captured"  # "NVML device N (name)" or why not


# ---------------------------------------------------------------- the summary (computed by analysis.bench)


class MetricStats(msgspec.Struct, frozen=True, kw_only=True):
    count: int
    mean: float
    std: float  # sample standard deviation (n-1)
    cv: float
    min: float
    p50: float
    p90: float
    p95: float
    p99: float
    max: float
    median_ci: tuple[float, float] | None  # CONFIDENCE interval of the median; None below 3 samples
    median_ci_level: float | None = None  # actual coverage of the interval (order statistics are discrete)
    warnings: tuple[str, ...] = ()


class Change(msgspec.Struct, frozen=True, kw_only=True):
    metric: str
    config: str
    baseline_median: float
    current_median: float
    change: float  # relative change of the median: +0.10 = 10% slower (for times)
    p_value: float | None  # Mann-Whitney U, two-sided
    significant: bool
    regressed: bool = False  # slower beyond the gate's threshold and significant


class Cost(msgspec.Struct, frozen=True, kw_only=True):
    source: str  # "--price-per-hour" or the instance name
    usd_per_hour: float
    detail: str  # gpu, region, price date
    usd_per_image: float
    usd_per_1000_images: float
    images_per_hour: float


class Energy(msgspec.Struct, frozen=True, kw_only=True):
    """Energy of a configuration's measured calls (``analysis.bench.energy``)."""

    trials: int  # calls whose energy was captured
    joules: float
    seconds: float  # their end-to-end time
    joules_per_image: float
    kwh_per_1000_images: float
    mean_watts: float


class ConfigSummary(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    dtype: str
    batch: int
    steps: int | None = None
    knobs: Knobs = msgspec.field(default_factory=Knobs)
    compile_s: float | None = None
    #: Stage -> highest per-stage peak over the trials (MiB); empty where not captured (see ``memory_source``).
    stage_peak_allocated_mb: dict[str, float] = msgspec.field(default_factory=dict)
    memory_source: str = "not captured"
    #: Settings that differ from the first configuration of the same batch ("key: a vs b"), for isolating variables.
    differs_from_first: tuple[str, ...] = ()
    auto_batch: int | None = None  # --batch auto: the largest batch found to fit
    trials_ok: int
    trials_failed: int  # failed trials; a trial cut by Ctrl-C / SIGTERM is counted in ``trials_interrupted``
    trials_interrupted: int = 0
    errors: tuple[str, ...]
    load_s: float | None
    cold_call_s: float | None
    warmup_s: tuple[float, ...]
    metrics: dict[str, MetricStats | None]
    per_step_p50_ms: tuple[float, ...]  # median of each step index over trials
    images_per_s: float | None  # batch / median end-to-end time
    requests_per_s: float | None
    peak_allocated_mb: float | None
    peak_reserved_mb: float | None
    peak_rss_mb: float | None  # highest sampled process RSS while this configuration ran
    cpu_percent_mean: float | None
    gpu_util_mean: float | None
    gpu_power_w_mean: float | None
    cost: Cost | None = None
    energy: Energy | None = None


class SweepRow(msgspec.Struct, frozen=True, kw_only=True):
    dtype: str  # the batch-sweep group: the dtype, with the steps and knobs when a run varies them
    batch: int
    images_per_s: float | None
    gain: float | None  # relative to the previous batch size


class BenchSummary(msgspec.Struct, frozen=True, kw_only=True):
    status: str
    device: str
    configs: tuple[ConfigSummary, ...]
    sweep: tuple[SweepRow, ...]
    saturation: dict[str, str]  # dtype -> sentence
    timer_note: str
    warnings: tuple[str, ...] = ()
    changes: tuple[Change, ...] = ()
    threshold: float | None = None
    regressions: tuple[Change, ...] = ()
    baseline_differences: tuple[str, ...] = ()
    energy_source: str = "not captured"

    def to_dict(self) -> dict[str, Any]:
        data = msgspec.to_builtins(self)
        for config in data["configs"]:
            _drop_unset(config, _NEW_IN_CONFIG_SUMMARY)
        return data


# ---------------------------------------------------------------- the document

#: Fields added with knobs, stage memory and batch auto, with their defaults: left out of the JSON when unset, so
#: a result without them keeps its version-1 shape (nothing lost, nothing added on a round trip).
_NEW_IN_SETTINGS = {"steps_list": [], "grid": {}, "batch_auto": False, "max_batch": 256, "max_batch_tries": 12}
_NEW_IN_CONFIG = {"steps": None, "knobs": {}, "compile_s": None, "batch_search": []}
_NEW_IN_TRIAL = {"stage_peak_allocated_mb": {}}
_NEW_IN_CONFIG_SUMMARY = {
    "steps": None,
    "knobs": {},
    "compile_s": None,
    "stage_peak_allocated_mb": {},
    "memory_source": "not captured",
    "differs_from_first": [],
    "auto_batch": None,
    "trials_interrupted": 0,
}


_ABSENT = object()


def _drop_unset(data: dict[str, Any], defaults: dict[str, Any]) -> None:
    for key, default in defaults.items():
        value = data.get(key, _ABSENT)
        if value == default or (isinstance(value, tuple) and list(value) == default):
            del data[key]


class BenchResult(Document, frozen=True, kw_only=True):
    """One benchmark run: settings, environment, raw trials and samples, and (once summarized) the summary."""

    KIND: ClassVar[str] = "profkit.bench"

    environment: dict[str, Any] = msgspec.field(default_factory=dict)
    device_info: dict[str, Any] = msgspec.field(default_factory=dict)
    device: str = "unknown"
    settings: BenchSettings = msgspec.field(default_factory=BenchSettings)
    status: str = "unknown"  # complete | interrupted
    duration_s: Measure = 0.0
    peak_rss_mb: Measure = 0.0
    order: tuple[str, ...] = ()  # configuration of each trial, in run order
    configs: tuple[ConfigRun, ...]
    samples: Samples = msgspec.field(default_factory=Samples)
    energy_source: str = "not captured"  # the counter of Trial.energy_mj, or why none
    summary: BenchSummary | None = None

    def __post_init__(self) -> None:
        if not self.configs:
            raise ValueError("the result has no configurations")

    @classmethod
    def from_body(cls, body: dict[str, Any], source: str = "document") -> BenchResult:
        """The document, its field types and ranges checked, then every trial's parts against its whole."""
        result = super().from_body(body, source)
        for i, config in enumerate(result.configs):
            for j, trial in enumerate(config.trials):
                problem = trial_problem(trial)
                if problem is not None:
                    raise msgspec.ValidationError(f"{problem} - at `$.configs[{i}].trials[{j}]`")
        return result

    def body(self) -> dict[str, Any]:
        body = super().body()
        _drop_unset(body["settings"], _NEW_IN_SETTINGS)
        for config in body["configs"]:
            _drop_unset(config, _NEW_IN_CONFIG)
            for trial in config["trials"]:
                _drop_unset(trial, _NEW_IN_TRIAL)
        if body.get("summary") is not None:
            for config in body["summary"]["configs"]:
                _drop_unset(config, _NEW_IN_CONFIG_SUMMARY)
        return body

    def trials(self) -> list[Trial]:
        return [trial for config in self.configs for trial in config.trials]

    def with_summary(self, summary: BenchSummary) -> BenchResult:
        return msgspec.structs.replace(self, summary=summary)
