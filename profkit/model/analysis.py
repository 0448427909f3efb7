"""The analysis summary document (``*.summary.json``, kind ``profkit.analysis``): one analyzed trace.

On disk: the header, then every field of :class:`~profkit.analysis.summary.AnalysisResult` (``run`` is the whole
capture document, with its own kind and version). Loading gives back an ``AnalysisResult`` equal to the one
written, so ``compare`` can use a summary instead of re-parsing its trace.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

from profkit.analysis.summary import AnalysisResult
from profkit.model.base import Document
from profkit.model.capture import CaptureMetadata


class AnalysisSummary(Document, frozen=True, kw_only=True):
    """An :class:`AnalysisResult` as a versioned document (its fields flattened into the JSON object)."""

    KIND = "profkit.analysis"

    result: AnalysisResult

    def body(self) -> dict[str, Any]:
        return {"created_at": self.created_at, **self.result.to_dict()}

    @classmethod
    def from_body(cls, body: dict[str, Any], source: str = "document") -> AnalysisSummary:
        fields = dict(body)
        created_at = fields.pop("created_at", None)
        run = fields.pop("run", None)
        result = msgspec.convert(fields, AnalysisResult, strict=False)
        if run is not None:
            result = msgspec.structs.replace(result, run=CaptureMetadata.from_builtins(run, f"{source} (its run)"))
        return cls(result=result, **({"created_at": created_at} if created_at else {}))


def load_analysis(path: Path) -> AnalysisResult:
    """The analysis stored in a ``*.summary.json``."""
    return AnalysisSummary.load(path, "analysis summary").result
