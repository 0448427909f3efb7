"""`profkit quality`: two or more configurations (capture folders, bench runs, image folders) -> quality document
(JSON) and HTML report; the gates (minimum PSNR / SSIM) raise exit 4 after everything is written."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from profkit.errors import EXIT_REGRESSION, ConflictingSettings, ProfkitError, SettingError
from profkit.jsonio import check_outputs, write_text
from profkit.model.quality import QualityDocument
from profkit.naming import safe_component
from profkit.quality.compare import WeightFiles, compare_sets
from profkit.quality.pairing import ImageSet, load_sets


@dataclass(frozen=True)
class QualityGate:
    """Minimum median PSNR (dB) and SSIM every configuration must reach (``None``: not gated)."""

    min_psnr: float | None = None
    min_ssim: float | None = None

    def failures(self, document: QualityDocument) -> list[str]:
        failed = []
        for config in document.configs:
            psnr, ssim = config.psnr_db.median, config.ssim.median
            if self.min_psnr is not None and psnr is not None and psnr < self.min_psnr:
                failed.append(f"{config.label} PSNR {psnr:.2f} dB < {self.min_psnr:g} dB")
            if self.min_ssim is not None and ssim is not None and ssim < self.min_ssim:
                failed.append(f"{config.label} SSIM {ssim:.4f} < {self.min_ssim:g}")
        return failed

    def check(self, document: QualityDocument, where: str) -> None:
        failed = self.failures(document)
        if failed:
            raise ProfkitError(
                f"image quality below the gate against {document.reference}: {'; '.join(failed)} (report: {where})",
                EXIT_REGRESSION,
            )


@dataclass
class QualityOutputs:
    document: QualityDocument
    html: Path | None
    json: Path | None


def gather_sets(paths: Sequence[Path]) -> list[ImageSet]:
    sets = [found for path in paths for found in load_sets(Path(path))]
    if len(sets) < 2:
        raise ProfkitError(f"{paths[0]} holds one configuration: pass a second one to compare against")
    return sets


def default_base(sets: Sequence[ImageSet], folder: Path) -> Path:
    names = [safe_component(s.label, max_len=40) for s in sets[:3]]
    return folder / f"quality_{'_vs_'.join(names)}{'_etc' if len(sets) > 3 else ''}"


def quality_sets(
    sets: Sequence[ImageSet],
    html: Path | None = None,
    json_path: Path | None = None,
    write_html: bool = True,
    force: bool = False,
    weights: WeightFiles = WeightFiles(),
    out_dir: Path | None = None,
    inputs: Sequence[Path] = (),
) -> QualityOutputs:
    """Compare ``sets`` (the first is the reference) and write the report and document."""
    from profkit.report.quality_html import quality_html

    base = default_base(sets, out_dir or Path.cwd())
    html = (html or base.with_name(base.name + ".html")) if write_html else None
    json_path = json_path or base.with_name(base.name + ".json")
    check_outputs((html, json_path), list(inputs), force)
    outcome = compare_sets(sets, weights)
    document = outcome.document
    written_json = document.write(json_path, force)
    written_html = write_text(html, quality_html(document, outcome.visuals), force) if html is not None else None
    return QualityOutputs(document, written_html, written_json)


def quality_paths(
    paths: Sequence[Path],
    html: Path | None = None,
    json_path: Path | None = None,
    write_html: bool = True,
    force: bool = False,
    weights: WeightFiles = WeightFiles(),
    gate: QualityGate = QualityGate(),
) -> QualityOutputs:
    """`profkit quality A B ...`: reports next to the current folder unless ``html``/``json_path`` say where."""
    validate_gate(gate)
    sets = gather_sets(paths)
    outputs = quality_sets(sets, html, json_path, write_html, force, weights, inputs=list(paths))
    gate.check(outputs.document, str(outputs.html or outputs.json))
    return outputs


def validate_gate(gate: QualityGate) -> None:
    if gate.min_ssim is not None and not -1 <= gate.min_ssim <= 1:
        raise SettingError("min_ssim", f"must be between -1 and 1 (got {gate.min_ssim:g})")
    if gate.min_psnr is not None and gate.min_psnr != gate.min_psnr:
        raise SettingError("min_psnr", "must be a number")


def capture_quality(
    folders: Sequence[Path], comparisons: Sequence[Any], out_dir: Path, force: bool
) -> QualityOutputs | None:
    """The quality section of ``capture --dtype a,b,...``: every run's images against the first run's, one quality
    report in ``out_dir``, and each comparison (the first run against each other, in order; its JSON and HTML
    rewritten) carrying its quality line and a verdict that names speed and quality together."""
    import msgspec

    from profkit.model.comparison import ComparisonDocument
    from profkit.model.quality import QualityBrief
    from profkit.report import comparison_html

    if not all(any(found.images for found in load_sets(folder)) for folder in folders):
        return None
    outputs = quality_sets(gather_sets(folders), force=force, out_dir=out_dir)
    report = str(outputs.html or outputs.json)
    for compared, config, folder in zip(comparisons, outputs.document.configs, folders[1:], strict=False):
        brief = QualityBrief.of(config, outputs.document.reference, report)
        result = compared.comparison
        result = msgspec.structs.replace(result, quality=brief, verdict=f"{result.verdict}; {brief.phrase}")
        compared.comparison = result
        if compared.json is not None:
            ComparisonDocument(result=result).write(compared.json, force=True)
        if compared.html is not None:
            write_text(compared.html, comparison_html(result, str(folders[0]), str(folder)), force=True)
    return outputs


def capture_gate(settings: Any, no_analyze: bool, min_psnr: float | None, min_ssim: float | None) -> QualityGate:
    """The quality gate of a capture: it needs two dtypes and the reports; latents need torch.profiler capture."""
    gate = QualityGate(min_psnr, min_ssim)
    validate_gate(gate)
    if settings.record_latents and settings.nsys:
        raise ConflictingSettings("record_latents", "nsys")
    if gate.min_psnr is None and gate.min_ssim is None:
        return gate
    setting = "min_psnr" if gate.min_psnr is not None else "min_ssim"
    if len(settings.dtypes) < 2:
        raise SettingError(setting, "needs two or more dtypes to compare (e.g. {dtypes} fp32,fp16)", ("dtypes",))
    if no_analyze:
        raise SettingError(setting, "needs the reports, which {no_analyze} skips", ("no_analyze",))
    return gate


BENCH_QUALITY_HTML = "quality.html"
BENCH_QUALITY_JSON = "quality.json"


@dataclass(frozen=True)
class BenchQuality:
    """The quality section of a multi-configuration bench: images kept (one untimed call per configuration),
    latents when ``record_latents``, and the gate."""

    enabled: bool = True
    record_latents: bool = False
    gate: QualityGate = QualityGate()

    def keeper(self, settings: Any, out: Path, force: bool) -> Any:
        """The runner's ``keep`` hook, or ``None`` (one configuration, or not asked for); refuses before the run
        when the quality report exists and ``force`` is not set."""
        validate_gate(self.gate)
        if not self.enabled or len(settings.configs()) < 2:
            if self.record_latents or self.gate.min_psnr is not None or self.gate.min_ssim is not None:
                raise SettingError(
                    "min_psnr" if self.gate.min_psnr is not None else "record_latents",
                    "needs two or more configurations (e.g. {dtypes} fp32,fp16)",
                    ("dtypes",),
                )
            return None
        from profkit.capture.latents import OutputKeeper
        from profkit.model.quality import BENCH_IMAGES_DIR

        check_outputs([out / BENCH_QUALITY_HTML, out / BENCH_QUALITY_JSON], [], force)
        return OutputKeeper(out / BENCH_IMAGES_DIR, self.record_latents)


def bench_quality(out: Path, force: bool) -> QualityOutputs | None:
    """``out/quality.html`` and ``out/quality.json``: every configuration's kept images against the first's."""
    try:
        sets = load_sets(out)
    except ProfkitError:  # no configuration kept images (all failed)
        return None
    if len(sets) < 2:
        return None
    return quality_sets(
        sets, out / BENCH_QUALITY_HTML, out / BENCH_QUALITY_JSON, force=force, inputs=[out / "bench.json"]
    )
