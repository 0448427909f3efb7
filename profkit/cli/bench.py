"""`profkit bench` and `profkit check`: the flags; the work is in :mod:`profkit.app.bench`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from profkit.cli.settings import knob_options
from profkit.pipelines.builtin import BUILTIN_MODELS, DEFAULT_MODEL

HELP = (
    "Benchmark a diffusers pipeline: latency (end to end, denoise loop, per step, per stage) with P50/P90/P95/P99 "
    "and a CI of the median, throughput per batch, memory, utilization and cost; optionally gate against a baseline."
)
EPILOG = (
    "Example: profkit bench --dtype fp32,fp16 --batch 1,2,4 --warmup 2 --trials 20 --instance aws:g5.xlarge "
    "--baseline old/bench.json --fail-if-slower 5; knobs are comma lists crossed with the dtypes, run interleaved: "
    "--compile off,default --attention math,flash --steps 10,20; --batch auto (CUDA) finds the largest batch that fits"
)
INSTANCE_HELP = "A cloud instance of the price table: provider:type (aws:g5.xlarge) or its type (p5.48xlarge)."
CHECK_HELP = "Compare a stored benchmark result with a baseline result; exit 4 when a metric regressed."
CHECK_EPILOG = "Example: profkit check bench/new/bench.json --baseline bench/old/bench.json --fail-if-slower 5"


def _report(outputs: Any, fail_if_slower: float | None) -> None:
    """Print a bench or check outcome; exit 130 when interrupted, 4 when gated and slower."""
    from profkit.cli.output import console, wrote
    from profkit.errors import EXIT_INTERRUPTED, EXIT_REGRESSION, ProfkitError
    from profkit.report.terminal import print_bench

    print_bench(outputs.summary, console)
    for what, path in outputs.files.items():
        wrote(
            {"json": "result", "trials_csv": "trials CSV", "stats_csv": "statistics CSV"}.get(what, "HTML report"), path
        )
    if outputs.interrupted is not None:  # this run was stopped: one line on stderr, exit 130 (SIGINT) / 143 (SIGTERM)
        raise outputs.interrupted
    if outputs.result.status == "interrupted":
        console.print("interrupted: the partial results above were written", markup=False)
        raise typer.Exit(EXIT_INTERRUPTED)
    if fail_if_slower is not None and outputs.regressed:
        names = ", ".join(f"{c.config} {c.metric} {c.change:+.1%}" for c in outputs.summary.regressions)
        raise ProfkitError(f"slower than the baseline by more than {fail_if_slower:g}%: {names}", EXIT_REGRESSION)


@knob_options
def bench_command(
    model: Annotated[
        str, typer.Option("--model", "-m", help=f"Built-in ({', '.join(BUILTIN_MODELS)}) or a folder.")
    ] = DEFAULT_MODEL,
    dtype: Annotated[str, typer.Option("--dtype", help="fp32, fp16, bf16 or a comma list.")] = "fp32",
    batch: Annotated[
        str,
        typer.Option(
            "--batch",
            help="Batch size, a comma list (a throughput sweep), or auto (CUDA only: the largest batch that fits, "
            "found by doubling then bisecting on out-of-memory).",
        ),
    ] = "1",
    max_batch: Annotated[
        int, typer.Option("--max-batch", help="The largest batch --batch auto tries (its search is bounded).")
    ] = 256,
    steps: Annotated[str, typer.Option("--steps", help="Denoising steps, or a comma list.")] = "10",
    height: Annotated[int, typer.Option("--height", help="Image height (multiple of 8).")] = 64,
    width: Annotated[int, typer.Option("--width", help="Image width (multiple of 8).")] = 64,
    prompt: Annotated[str | None, typer.Option("--prompt", help="The prompt.")] = None,
    prompts_file: Annotated[Path | None, typer.Option("--prompts-file", help="One prompt per line.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Generator seed.")] = 0,
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda, cuda:N.")] = "auto",
    warmup: Annotated[int, typer.Option("--warmup", help="Warm-up calls per configuration (excluded).")] = 1,
    trials: Annotated[int, typer.Option("--trials", help="Measured calls per configuration.")] = 10,
    time_budget: Annotated[
        float | None, typer.Option("--time-budget", help="Seconds: start no new round after this (--trials caps).")
    ] = None,
    guidance_scale: Annotated[float | None, typer.Option("--guidance-scale", help="CFG scale.")] = None,
    knobs: dict[str, str] | None = None,  # the knob flags (settings.knob_options)
    price_per_hour: Annotated[
        float | None, typer.Option("--price-per-hour", help="USD per hour of the machine.")
    ] = None,
    instance: Annotated[str | None, typer.Option("--instance", help=INSTANCE_HELP)] = None,
    spot: Annotated[bool, typer.Option("--spot", help="Price the instance at its spot price.")] = False,
    price_table: Annotated[Path | None, typer.Option("--price-table", help="Your own price table (JSON).")] = None,
    baseline: Annotated[Path | None, typer.Option("--baseline", help="A previous bench.json to compare with.")] = None,
    fail_if_slower: Annotated[
        float | None, typer.Option("--fail-if-slower", help="Exit 4 when a metric is this many % slower (significant).")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Output folder (default: bench/<run name>).")] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite outputs; compare with a baseline of another setup.")
    ] = False,
    no_quality: Annotated[
        bool, typer.Option("--no-quality", help="Several configurations: skip the images kept for profkit quality.")
    ] = False,
    record_latents: Annotated[
        bool, typer.Option("--record-latents", help="Also record each step's latents (per-step drift).")
    ] = False,
    min_psnr: Annotated[
        float | None,
        typer.Option("--min-psnr", help="Exit 4 when a configuration's median PSNR vs the first is below."),
    ] = None,
    min_ssim: Annotated[
        float | None,
        typer.Option("--min-ssim", help="Exit 4 when a configuration's median SSIM vs the first is below."),
    ] = None,
) -> None:
    from profkit.app.bench import CostOptions, GateOptions, bench
    from profkit.app.quality import BenchQuality, QualityGate
    from profkit.capture.bench.runner import BenchSettings, validate_settings
    from profkit.cli.progress import progress_display
    from profkit.cli.quality import report_quality
    from profkit.cli.settings import comma_ints, comma_list, knob_grid, prompts_from
    from profkit.errors import ProfkitError

    batch_auto = batch.strip().lower() == "auto"
    steps_list = comma_ints(steps, "steps")
    settings = BenchSettings(
        model=model,
        dtypes=comma_list(dtype),
        batches=() if batch_auto else comma_ints(batch, "batches"),
        batch_auto=batch_auto,
        max_batch=max_batch,
        steps=steps_list[0] if steps_list else 0,
        steps_list=steps_list if len(steps_list) > 1 else (),
        grid=knob_grid(**(knobs or {})),
        height=height,
        width=width,
        prompts=prompts_from(prompt, prompts_file),
        seed=seed,
        device=device,
        warmup=warmup,
        trials=trials,
        time_budget_s=time_budget,
        guidance_scale=guidance_scale,
    )
    validate_settings(settings)
    if fail_if_slower is not None and baseline is None:
        raise ProfkitError("--fail-if-slower needs --baseline")
    cost = CostOptions(price_per_hour, instance, price_table, spot)
    gate = GateOptions(baseline, fail_if_slower, force)
    quality = BenchQuality(not no_quality, record_latents, QualityGate(min_psnr, min_ssim))
    with progress_display("calls") as display:
        outputs = bench(settings, out, cost, gate, force, display, inputs=(prompts_file,), quality=quality)
    _report(outputs, fail_if_slower)
    report_quality(outputs.quality, quality.gate)


def check_command(
    result: Annotated[Path, typer.Argument(help="The new bench.json.")],
    baseline: Annotated[Path, typer.Option("--baseline", help="The bench.json to compare with.")],
    fail_if_slower: Annotated[
        float | None, typer.Option("--fail-if-slower", help="Exit 4 when a metric is this many % slower (significant).")
    ] = None,
    price_per_hour: Annotated[float | None, typer.Option("--price-per-hour", help="USD per hour.")] = None,
    instance: Annotated[str | None, typer.Option("--instance", help=INSTANCE_HELP)] = None,
    spot: Annotated[bool, typer.Option("--spot", help="Price the instance at its spot price.")] = False,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Also write an HTML report here.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Compare across setups; overwrite --out.")] = False,
) -> None:
    from profkit.app.bench import CostOptions, GateOptions, check

    cost = CostOptions(price_per_hour, instance, spot=spot)
    outputs = check(result, cost, GateOptions(baseline, fail_if_slower, force), out, force)
    _report(outputs, fail_if_slower)
