"""`profkit quality`: the flags; the work is :func:`profkit.app.quality.quality_paths`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from profkit.app.quality import QualityGate, QualityOutputs

HELP = (
    "How far images moved from a reference: pairs the images of capture folders, bench runs or image folders by "
    "prompt and seed (the first is the reference); PSNR, SSIM, MS-SSIM, optional CLIP score / FID / KID / LPIPS "
    "from local weights, per-step latent drift, speed versus quality."
)
EPILOG = (
    "Example: profkit quality runs/tiny-sd_fp32_10steps_64x64_b1 runs/tiny-sd_fp16_10steps_64x64_b1 --min-psnr 30  "
    "(writes quality_fp32_vs_fp16.html and .json; exit 4 when a median PSNR is below 30 dB)"
)


def quality(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="Capture folders, bench runs or image folders (two or more configurations); the first is "
            "the reference."
        ),
    ],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="HTML report path.")] = None,
    json_out: Annotated[Path | None, typer.Option("--json-out", help="Quality document (JSON) path.")] = None,
    no_html: Annotated[bool, typer.Option("--no-html", help="Do not write the HTML report.")] = False,
    clip_model: Annotated[
        Path | None, typer.Option("--clip-model", help="Local CLIP folder (transformers) for the CLIP score.")
    ] = None,
    inception_weights: Annotated[
        Path | None,
        typer.Option("--inception-weights", help="Local feature-extractor weights (TorchScript) for FID and KID."),
    ] = None,
    lpips_weights: Annotated[
        Path | None, typer.Option("--lpips-weights", help="Local LPIPS backbone: an AlexNet state dict (torchvision).")
    ] = None,
    min_psnr: Annotated[
        float | None, typer.Option("--min-psnr", help="Exit 4 when a configuration's median PSNR (dB) is below.")
    ] = None,
    min_ssim: Annotated[
        float | None, typer.Option("--min-ssim", help="Exit 4 when a configuration's median SSIM is below.")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only the paths written.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing report files.")] = False,
) -> None:
    from profkit.app.quality import QualityGate, quality_paths
    from profkit.cli.output import console, wrote
    from profkit.quality.compare import WeightFiles

    outputs = quality_paths(
        paths,
        html=out,
        json_path=json_out,
        write_html=not no_html,
        force=force,
        weights=WeightFiles(clip_model, inception_weights, lpips_weights),
        gate=QualityGate(min_psnr, min_ssim),
    )
    if not quiet:
        for config in outputs.document.configs:
            console.print(config.verdict + ".", style="bold", markup=False, highlight=False)
    wrote("HTML quality report", outputs.html)
    wrote("JSON quality document", outputs.json)


def report_quality(outputs: QualityOutputs | None, gate: QualityGate) -> None:
    """Print a capture's quality section (verdicts, drift, files), then apply its gate (exit 4 after writing)."""
    from profkit.cli.output import console, wrote

    if outputs is None:
        return
    for config in outputs.document.configs:
        console.print(f"quality: {config.verdict}.", markup=False, highlight=False)
        if config.drift is not None:
            where = "never" if config.drift.diverges_at is None else f"from step {config.drift.diverges_at}"
            console.print(f"  latents of {config.label} diverge {where}", markup=False, highlight=False)
    wrote("HTML quality report", outputs.html)
    wrote("JSON quality document", outputs.json)
    gate.check(outputs.document, str(outputs.html or outputs.json))
