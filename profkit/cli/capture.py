"""`profkit capture`: the flags; the work is :func:`profkit.app.capture.capture_and_report`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from profkit.cli.settings import knob_options
from profkit.pipelines.builtin import BUILTIN_MODELS, DEFAULT_MODEL

HELP = (
    "Run a diffusers pipeline under torch.profiler (or Nsight Systems with --nsys) with profkit's ranges; "
    "write trace, metadata, images and reports. Built-in models (offline): " + ", ".join(BUILTIN_MODELS) + "."
)
EPILOG = (
    "Example: profkit capture --dtype fp32,fp16 --steps 10 --out runs  "
    "(captures both precisions with identical prompts/seed/sizes, analyzes each and writes the comparison); "
    "knobs are comma lists too: --compile off,default --attention math,flash --steps 10,20 make one run of every "
    "combination"
)


@knob_options
def capture(
    model: Annotated[
        str,
        typer.Option(
            "--model",
            "-m",
            help=f"Built-in name ({', '.join(BUILTIN_MODELS)}), a diffusers pipeline folder, or a hub id.",
        ),
    ] = DEFAULT_MODEL,
    dtype: Annotated[
        str, typer.Option("--dtype", help="fp32, fp16, bf16, or a comma list (each run with identical settings).")
    ] = "fp32",
    steps: Annotated[str, typer.Option("--steps", help="Denoising steps, or a comma list.")] = "10",
    height: Annotated[int, typer.Option("--height", help="Image height in pixels (multiple of 8).")] = 64,
    width: Annotated[int, typer.Option("--width", help="Image width in pixels (multiple of 8).")] = 64,
    batch: Annotated[int, typer.Option("--batch", help="Prompts per pipeline call.")] = 1,
    prompt: Annotated[str | None, typer.Option("--prompt", help="The prompt.")] = None,
    prompts_file: Annotated[Path | None, typer.Option("--prompts-file", help="File with one prompt per line.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Generator seed (same for every dtype).")] = 0,
    warmup: Annotated[int, typer.Option("--warmup", help="Un-recorded pipeline calls before the recorded one.")] = 1,
    device: Annotated[
        str, typer.Option("--device", help="auto (CUDA if available, else CPU), cpu, cuda, cuda:N.")
    ] = "auto",
    guidance_scale: Annotated[
        float | None,
        typer.Option("--guidance-scale", help="Classifier-free guidance scale (pipeline default if unset)."),
    ] = None,
    knobs: dict[str, str] | None = None,  # the knob flags (settings.knob_options)
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the run folders.")] = Path("runs"),
    no_analyze: Annotated[bool, typer.Option("--no-analyze", help="Only capture; skip reports.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing run folders and reports.")] = False,
    nsys: Annotated[
        bool,
        typer.Option("--nsys", help="Capture under Nsight Systems (NVTX, CUDA, OS runtime) instead of torch.profiler."),
    ] = False,
    nsys_path: Annotated[
        str | None,
        typer.Option("--nsys-path", help="The nsys binary or its install folder (default: PATH, usual places)."),
    ] = None,
    nsys_args: Annotated[
        str | None, typer.Option("--nsys-args", help='Extra flags for `nsys profile`, e.g. "--gpu-metrics-device=0".')
    ] = None,
    record_latents: Annotated[
        bool, typer.Option("--record-latents", help="Record each step's latents (one extra untimed call) for drift.")
    ] = False,
    min_psnr: Annotated[
        float | None, typer.Option("--min-psnr", help="Exit 4 when a dtype's median PSNR vs the first is below (dB).")
    ] = None,
    min_ssim: Annotated[
        float | None, typer.Option("--min-ssim", help="Exit 4 when a dtype's median SSIM vs the first is below.")
    ] = None,
) -> None:
    import shlex

    from rich.text import Text

    from profkit.app.capture import capture_and_report
    from profkit.app.quality import capture_gate
    from profkit.capture.settings import CaptureSettings
    from profkit.cli.output import console, wrote
    from profkit.cli.progress import progress_display
    from profkit.cli.quality import report_quality
    from profkit.cli.settings import comma_ints, comma_list, knob_grid, prompts_from
    from profkit.errors import ProfkitError

    steps_list = comma_ints(steps, "steps")
    settings = CaptureSettings(
        model=model,
        dtypes=comma_list(dtype),
        steps=steps_list[0] if steps_list else 0,
        steps_list=steps_list if len(steps_list) > 1 else (),
        grid=knob_grid(**(knobs or {})),
        height=height,
        width=width,
        batch=batch,
        prompts=prompts_from(prompt, prompts_file),
        seed=seed,
        warmup=warmup,
        device=device,
        out=out,
        force=force,
        guidance_scale=guidance_scale,
        nsys=nsys,
        nsys_path=nsys_path,
        nsys_args=tuple(shlex.split(nsys_args)) if nsys_args else (),
        record_latents=record_latents,
    ).validate()
    gate = capture_gate(settings, no_analyze, min_psnr, min_ssim)
    if (nsys_path or nsys_args) and not nsys:
        raise ProfkitError("--nsys-path and --nsys-args only apply with --nsys")
    with progress_display("steps") as display:
        outputs = capture_and_report(settings, display, analyze=not no_analyze, inputs=(prompts_file,))
    for run, report in zip(outputs.runs, outputs.reports or [None] * len(outputs.runs), strict=True):
        name = run.label if settings.steps_list else f"{run.dtype} {run.knobs.tag}".strip()
        console.print(Text.assemble((name, "bold"), f" run: {run.folder}"), highlight=False)
        wrote("  trace", run.trace)
        wrote("  metadata", run.metadata)
        console.print(f"  images: {len(run.images)} in {run.folder / 'images'}", highlight=False, markup=False)
        if report is not None:
            wrote("  HTML report", report.html)
            wrote("  JSON summary", report.json)
        for note in run.notes:
            console.print(f"  note: {note}", markup=False)
    for comparison in outputs.comparisons:
        console.print(comparison.comparison.verdict + ".", style="bold", highlight=False, markup=False)
        wrote("HTML comparison", comparison.html)
        wrote("JSON comparison", comparison.json)
    report_quality(outputs.quality, gate)
