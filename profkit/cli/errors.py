"""The one place that turns profkit's errors into command-line text and exit codes.

Library code names settings (``steps``, ``prompts_file``, ``force``); :data:`FLAGS` maps each to the flag that
sets it, and :func:`error_line` renders an error with those flags.
"""

from __future__ import annotations

from profkit.cli.output import visible
from profkit.errors import ProfkitError

#: Setting name (a field of CaptureSettings, BenchSettings, the cost/gate options) -> the flag that sets it.
FLAGS: dict[str, str] = {
    "model": "--model",
    "dtypes": "--dtype",
    "steps": "--steps",
    "height": "--height",
    "width": "--width",
    "batch": "--batch",
    "batches": "--batch",
    "prompt": "--prompt",
    "prompts": "--prompt",
    "prompts_file": "--prompts-file",
    "seed": "--seed",
    "warmup": "--warmup",
    "device": "--device",
    "guidance_scale": "--guidance-scale",
    "trials": "--trials",
    "time_budget_s": "--time-budget",
    "out": "--out",
    "force": "--force",
    "nsys": "--nsys",
    "nsys_path": "--nsys-path",
    "nsys_args": "--nsys-args",
    "price_per_hour": "--price-per-hour",
    "instance": "--instance",
    "spot": "--spot",
    "price_table": "--price-table",
    "baseline": "--baseline",
    "fail_if_slower": "--fail-if-slower",
    "jobs": "--jobs",
    "detail_events": "--detail-events",
    "compile": "--compile",
    "attention": "--attention",
    "channels_last": "--channels-last",
    "tf32": "--tf32",
    "scheduler": "--scheduler",
    "quantize": "--quantize",
    "vae_tiling": "--vae-tiling",
    "cpu_offload": "--cpu-offload",
    "max_batch": "--max-batch",
    # profkit serve
    "dtype": "--dtype",
    "host": "--host",
    "port": "--port",
    "max_steps": "--max-steps",
    "max_side": "--max-side",
    "max_n": "--max-n",
    "max_body_bytes": "--max-body-bytes",
    "queue_size": "--queue-size",
    "max_wait_ms": "--max-wait-ms",
    "deadline_s": "--deadline",
    "graceful_s": "--graceful",
    # profkit load
    "url": "URL",
    "template": "--template",
    "mode": "--mode",
    "arrivals": "--arrivals",
    "duration": "--duration",
    "users": "--users",
    "rates": "--rates",
    "serve": "--serve",
    "serve_args": "--serve-args",
    "master_bind": "--master-bind",
    "expect_workers": "--expect-workers",
    "connect_timeout": "--connect-timeout",
    "worker": "--worker",
    "master": "--master",
    "shape": "--shape",
    "workers": "--workers",
    "clip_model": "--clip-model",
    "inception_weights": "--inception-weights",
    "lpips_weights": "--lpips-weights",
    "min_psnr": "--min-psnr",
    "min_ssim": "--min-ssim",
    "record_latents": "--record-latents",
    "no_analyze": "--no-analyze",
}


def flag_for(setting: str) -> str:
    """The flag of a setting; a setting no flag sets (e.g. the bench sampler's ``sample_hz``) keeps its name."""
    return FLAGS.get(setting, setting)


def error_line(error: ProfkitError) -> str:
    """The single stderr line of an error, settings shown as flags (a newline or a control character in a file name
    or in text from a trace shown escaped)."""
    return visible(f"profkit: error: {error.render(flag_for)}").replace("\n", "\\n")
