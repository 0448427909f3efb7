"""The one naming scheme of the ranges profkit opens (NVTX and torch ``record_function``).

Every range name starts with ``profkit/``:

====================================  ==============================================  =========
range                                 what it covers                                   stage
====================================  ==============================================  =========
``profkit/pipeline``                  the whole pipeline call                          (root)
``profkit/text_encoder/<attr>``       one call of a text encoder (``text_encoder_2``)  text_encoder
``profkit/denoise/step_007``          denoise step 7: denoiser call(s) + scheduler     denoise
``profkit/denoise/step_007/unet``     the first denoiser call of step 7                denoise
``profkit/denoise/step_007/unet#2``   a second denoiser call in the same step (CFG)    denoise
``profkit/denoise/step_007/scheduler`` the scheduler step of step 7                    denoise
``profkit/vae/decode``                VAE decode                                       vae
``profkit/vae/encode``                VAE encode (img2img, inpainting)                 vae
``profkit/safety_checker``            the safety checker                               safety_checker
====================================  ==============================================  =========

Step indices are zero-based and zero-padded to three digits, so names sort in step order.
"""

from __future__ import annotations

import re

import msgspec

PREFIX = "profkit/"
PIPELINE = "profkit/pipeline"
NVTX_DOMAIN = "profkit"

#: Stages in report order; "other" is pipeline time outside every named stage.
STAGES: tuple[str, ...] = ("text_encoder", "denoise", "vae", "safety_checker", "other")


def text_encoder_range(attr: str) -> str:
    return f"profkit/text_encoder/{attr}"


def step_range(step: int) -> str:
    return f"profkit/denoise/step_{step:03d}"


def denoiser_range(step: int, attr: str, call_index: int) -> str:
    suffix = "" if call_index == 1 else f"#{call_index}"
    return f"{step_range(step)}/{attr}{suffix}"


def scheduler_range(step: int) -> str:
    return f"{step_range(step)}/scheduler"


def vae_range(method: str) -> str:
    return f"profkit/vae/{method}"


SAFETY_CHECKER = "profkit/safety_checker"

_STEP_RE = re.compile(r"^profkit/denoise/step_(\d+)(?:/(.+))?$")


class RangeInfo(msgspec.Struct, frozen=True):
    """What a profkit range name says: its stage, its step (if any) and its kind."""

    stage: str  # one of STAGES, or "pipeline"
    step: int  # -1 when the range is not inside a denoise step
    kind: str  # pipeline | text_encoder | step | denoiser | scheduler | vae | safety_checker
    component: str  # e.g. "text_encoder_2", "unet", "transformer", "decode"


def parse_range_name(name: str) -> RangeInfo | None:
    """Classify a range name; ``None`` when it is not a profkit range."""
    if not name.startswith(PREFIX):
        return None
    if name == PIPELINE:
        return RangeInfo("pipeline", -1, "pipeline", "pipeline")
    match = _STEP_RE.match(name)
    if match:
        step = int(match.group(1))
        child = match.group(2)
        if child is None:
            return RangeInfo("denoise", step, "step", "step")
        if child == "scheduler":
            return RangeInfo("denoise", step, "scheduler", "scheduler")
        return RangeInfo("denoise", step, "denoiser", child.split("#", 1)[0])
    rest = name[len(PREFIX) :]
    head, _, tail = rest.partition("/")
    if head == "text_encoder" and tail:
        return RangeInfo("text_encoder", -1, "text_encoder", tail)
    if head == "vae" and tail:
        return RangeInfo("vae", -1, "vae", tail)
    if rest == "safety_checker":
        return RangeInfo("safety_checker", -1, "safety_checker", "safety_checker")
    return None


#: Characters a file name derived from data may keep; everything else becomes "-".
_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")


def safe_component(text: str, max_len: int = 80, default: str = "run") -> str:
    """``text`` (a dtype, a model name: data, not trusted) as ONE safe path component.

    Separators, ``..``, control and markup characters become ``-``; no leading dot or dash (no hidden files, no
    option look-alikes); at most ``max_len`` characters (a long name keeps a short hash of the whole so two
    long names stay distinct); ``default`` when nothing is left.
    """
    slug = _UNSAFE.sub("-", str(text)).lstrip(".-").rstrip("-")
    slug = re.sub(r"\.{2,}", ".", slug)
    if len(slug) > max_len >= 16:
        import hashlib

        digest = hashlib.sha256(str(text).encode("utf-8", "surrogatepass")).hexdigest()[:8]
        slug = slug[: max_len - 9].rstrip(".-") + "-" + digest
    return (slug[:max_len].rstrip(".-") or default)[:max_len]
