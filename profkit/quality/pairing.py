"""The images of one configuration, keyed by prompt, seed and batch index, and the pairs two configurations share.

A configuration is a capture folder (``metadata.json`` + ``images/``), a bench run folder whose ``images/<config>/``
hold each configuration's images (one set per configuration), a load-test folder (``load.json`` + the image sample
of :mod:`profkit.quality.sample`), or a plain folder of images (keyed by file name).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path

from profkit.errors import ProfkitError
from profkit.model.capture import METADATA_FILE
from profkit.model.quality import BENCH_IMAGES_DIR, config_folder

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
#: The per-run latent record written by :mod:`profkit.capture.latents`.
LATENTS_FILE = "latents.npz"


@dataclass(frozen=True)
class ImageRef:
    path: Path
    prompt: str | None = None
    seed: int | None = None


@dataclass
class ImageSet:
    """One configuration's images: ``key -> image``; its latency per image and latent record when known."""

    label: str
    source: Path
    images: dict[str, ImageRef] = field(default_factory=dict)
    seconds: float | None = None
    latents: Path | None = None


@dataclass(frozen=True)
class Pair:
    key: str
    reference: ImageRef
    other: ImageRef


def image_key(prompt: str | None, seed: int | None, index: int) -> str:
    """``"seed 0 #0: a photo of a cat"``: what makes two images comparable."""
    return f"seed {seed} #{index}: {prompt}"


def _capture_set(folder: Path) -> ImageSet:
    from profkit.model.capture import CaptureMetadata

    metadata = CaptureMetadata.load(folder / METADATA_FILE, "capture metadata")
    prompts = [p for p in (metadata.settings.prompts if metadata.settings else []) if p.strip()]
    seed = metadata.seed
    images: dict[str, ImageRef] = {}
    for index, name in enumerate(metadata.files.images):
        prompt = prompts[index % len(prompts)] if prompts else None
        images[image_key(prompt, seed, index)] = ImageRef(folder / name, prompt, seed)
    timing = metadata.timing_seconds
    # the recorded call (what the speed comparison measures), else the warm-up calls after the cold first one
    seconds = timing.recorded_call_under_profiler or timing.recorded_call_under_nsys
    if seconds is None and timing.warmup_calls:
        seconds = statistics.median(timing.warmup_calls[1:] or timing.warmup_calls)
    if seconds is not None:  # per image: configurations of other batch sizes compare fairly
        seconds /= max(metadata.settings.batch if metadata.settings else 1, 1)
    latents = folder / LATENTS_FILE
    return ImageSet(metadata.dtype, folder, images, seconds, latents if latents.is_file() else None)


def _folder_set(folder: Path, label: str | None = None) -> ImageSet:
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    images = {str(p.relative_to(folder).with_suffix("")): ImageRef(p) for p in files}
    latents = folder / LATENTS_FILE
    return ImageSet(label or folder.name, folder, images, None, latents if latents.is_file() else None)


def _bench_sets(folder: Path) -> list[ImageSet]:
    """A bench run folder: one set per ``images/<config>/`` (seconds from the bench summary when present)."""
    from profkit.model.bench import BenchResult

    result = BenchResult.load(folder / "bench.json", "benchmark result")
    seconds: dict[str, float] = {}
    for config in result.configs:
        times = [t.e2e_ms for t in config.trials if t.ok and t.e2e_ms is not None]
        if times:
            seconds[config.name] = statistics.median(times) / 1000 / config.batch  # per image
    sets = []
    for config in result.configs:
        images = folder / BENCH_IMAGES_DIR / config_folder(config.name)
        if images.is_dir():
            found = _folder_set(images, config.name)
            found.seconds = seconds.get(config.name)
            found.images = _keyed(found.images, list(result.settings.prompts), result.settings.seed)
            sets.append(found)
    return sets


def _keyed(images: dict[str, ImageRef], prompts: list[str], seed: int) -> dict[str, ImageRef]:
    """Images named ``image_<index>`` keyed by the prompt (cycled over the batch) and seed of that index."""
    prompts = [p for p in prompts if p.strip()] or [""]
    keyed = {}
    for name, ref in images.items():
        index = int(name.rsplit("_", 1)[-1]) if name.rsplit("_", 1)[-1].isdigit() else None
        if index is None:
            keyed[name] = ref
            continue
        prompt = prompts[index % len(prompts)]
        keyed[image_key(prompt, seed, index)] = ImageRef(ref.path, prompt, seed)
    return keyed


def _load_test_set(folder: Path) -> ImageSet:
    """A load-test run: its image sample keyed by the sample request's prompt and seed; latency: the one-user
    (or lowest-rate) level's median request latency."""
    from profkit.model.load import LoadTestResult
    from profkit.quality.sample import SAMPLE_DIR, read_sample

    sample = read_sample(folder)
    if sample is None or not sample.images:
        raise ProfkitError(
            f"{folder} is a load-test run without an image sample (runs of profkit load before it kept one, or the "
            "endpoint answered no b64_json images): run profkit load again to compare its images"
        )
    images = {
        image_key(sample.prompt, sample.seed, index): ImageRef(folder / SAMPLE_DIR / name, sample.prompt, sample.seed)
        for index, name in enumerate(sample.images)
    }
    result = LoadTestResult.load(folder / "load.json", "load-test result")
    timed = [level for level in result.levels if level.latency is not None and level.ok]
    seconds = timed[0].latency.p50 / 1000 if timed else None
    return ImageSet(folder.name, folder, images, seconds)


def load_sets(path: Path) -> list[ImageSet]:
    """The configurations ``path`` holds: one for a capture or image folder, one per configuration of a bench run."""
    path = Path(path)
    if not path.exists():
        raise ProfkitError(f"{path} does not exist")
    if not path.is_dir():
        raise ProfkitError(f"{path} is not a folder: pass a capture folder, a bench run folder or a folder of images")
    if (path / METADATA_FILE).is_file():
        found = [_capture_set(path)]
    elif (path / "bench.json").is_file():
        found = _bench_sets(path)
    elif (path / "load.json").is_file():
        found = [_load_test_set(path)]
    else:
        found = [_folder_set(path)]
    found = [s for s in found if s.images]
    if not found:
        raise ProfkitError(f"{path} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    return found


def pair(reference: ImageSet, other: ImageSet) -> tuple[list[Pair], int]:
    """The pairs both sets hold (by key, in the reference's order) and how many images found no partner."""
    pairs = [Pair(key, ref, other.images[key]) for key, ref in reference.images.items() if key in other.images]
    unmatched = len(reference.images) + len(other.images) - 2 * len(pairs)
    if not pairs:
        raise ProfkitError(
            f"no image of {other.source} matches one of {reference.source} by prompt and seed "
            f"(e.g. {next(iter(reference.images))!r} vs {next(iter(other.images))!r})"
        )
    return pairs, unmatched
