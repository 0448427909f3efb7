"""`profkit capture`: every configuration (dtype x steps x knobs) captured with identical prompts, seed and
sizes, then analyzed and compared, each against the first.

A knob this device or install cannot do is refused before any work (:func:`profkit.capture.knobs.check_knobs`).

An interrupted capture (Ctrl-C, SIGTERM) stops there: the interrupted run folder keeps what was measured, marked
interrupted, and nothing is analyzed. A run folder left unfinished is refused without ``force``, saying so.

The comparisons read the analysis summaries the analyses wrote, so no trace is parsed twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from profkit.app.analyze import AnalyzeOutputs, analyze_path
from profkit.app.compare import CompareOutputs, compare_name, compare_paths
from profkit.capture.partial import unfinished_status
from profkit.capture.progress import NoProgress, Progress
from profkit.capture.run import RunRecord, run_folder
from profkit.capture.settings import CaptureSettings
from profkit.errors import EXIT_RUN_FAILED, Interrupted, OutputExists, ProfkitError, UnfinishedRun
from profkit.jsonio import check_outputs
from profkit.pipelines.loading import resolve_device


def _refuse_inputs_inside(folder: Path, inputs: Sequence[Path | None]) -> None:
    """A run folder is replaced as a whole: no input (a prompts file) may live in it."""
    for source in inputs:
        if source is not None and Path(source).resolve().is_relative_to(folder.resolve()):
            raise ProfkitError(f"{source} is an input inside the run folder {folder}: choose another output folder")


def run_capture(
    settings: CaptureSettings, progress: Progress | None = None, inputs: Sequence[Path | None] = ()
) -> list[RunRecord]:
    """Capture every configuration of ``settings`` (dtypes x steps x knobs) with identical prompts, seed and sizes;
    ``inputs`` (a prompts file) are files no run folder may hold."""
    from profkit.capture.knobs import check_knobs

    settings.validate()
    device = resolve_device(settings.device)
    variants = settings.variants()
    check_knobs([run.knobs for _, run in variants], device, settings.warmup, settings.dtypes)
    for dtype, run in variants:  # refuse before any work rather than half-way through
        folder = run_folder(run, dtype)
        _refuse_inputs_inside(folder, inputs)
        if folder.exists() and not settings.force:
            status = unfinished_status(folder)
            raise UnfinishedRun(folder, status) if status else OutputExists(folder)
    progress = progress or NoProgress()
    tool = None
    if settings.nsys:
        from profkit.capture.nsys.runner import capture_one_nsys
        from profkit.capture.nsys.tool import find_nsys

        tool = find_nsys(settings.nsys_path)
    records = []
    for dtype, run in variants:
        try:
            if tool is not None:
                records.append(capture_one_nsys(run, dtype, device, progress, tool, list(settings.nsys_args)))
            else:
                from profkit.capture.torch_profiler import capture_one

                records.append(capture_one(run, dtype, device, progress))
        except Interrupted as interrupted:  # the interrupted run is kept; so are the runs finished before it
            if records:
                finished = ", ".join(str(r.folder) for r in records)
                kept = f"{interrupted.kept}; finished before it: {finished}"
                raise Interrupted(kept, interrupted.interrupt) from None
            raise
        except ProfkitError:
            raise
        except Exception as error:  # a crash inside the model: keep what earlier runs wrote
            done = ", ".join(str(r.folder) for r in records) or "nothing"
            raise ProfkitError(
                f"capture of {run_folder(run, dtype).name} failed: {type(error).__name__}: {error} (kept: {done})",
                EXIT_RUN_FAILED,
            ) from error
    return records


@dataclass
class CaptureOutputs:
    runs: list[RunRecord]
    reports: list[AnalyzeOutputs] = field(default_factory=list)
    comparisons: list[CompareOutputs] = field(default_factory=list)
    quality: Any = None  # profkit.app.quality.QualityOutputs: images against the first dtype's


def comparison_paths(settings: CaptureSettings) -> list[tuple[Path, Path]]:
    """The HTML and JSON comparison of each run against the first, in ``out``, named after both runs (model,
    settings, what differs): known before any work, so an existing one is refused before capturing."""
    names = [run_folder(run, dtype).name for dtype, run in settings.variants()]
    bases = [settings.out / compare_name(names[0], name) for name in names[1:]]
    return [(base.with_name(base.name + ".html"), base.with_name(base.name + ".json")) for base in bases]


def capture_and_report(
    settings: CaptureSettings,
    progress: Progress | None = None,
    analyze: bool = True,
    inputs: Sequence[Path | None] = (),
) -> CaptureOutputs:
    """Capture every configuration; analyze each run; with two or more, compare each against the first (a
    comparison where more than one setting differs carries the isolate-variables warning). Every output is
    checked before the first capture starts."""
    paths = comparison_paths(settings.validate()) if analyze else []
    check_outputs([path for pair in paths for path in pair], inputs, settings.force)
    runs = run_capture(settings, progress, inputs)
    outputs = CaptureOutputs(runs)
    if not analyze:
        return outputs
    for run in runs:
        outputs.reports.append(analyze_path(run.folder, write_json_summary=True, force=settings.force))
    # from the summaries just written: the traces are not parsed again
    first, *others = [report.json or run.folder for run, report in zip(runs, outputs.reports, strict=True)]
    for other, (html, json_path) in zip(others, paths, strict=True):
        outputs.comparisons.append(
            compare_paths(first, other, html=html, json_path=json_path, force=settings.force, out_dir=settings.out)
        )
    if len(runs) >= 2:
        from profkit.app.quality import capture_quality

        outputs.quality = capture_quality([r.folder for r in runs], outputs.comparisons, settings.out, settings.force)
    return outputs
