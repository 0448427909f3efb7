"""The comparison document (``compare_A_vs_B.json``, kind ``profkit.comparison``): run A against run B.

On disk: the header, then every field of :class:`~profkit.analysis.compare.ComparisonResult`; loading gives back
a ``ComparisonResult`` equal to the one written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

from profkit.analysis.compare import ComparisonResult
from profkit.model.base import Document


class ComparisonDocument(Document, frozen=True, kw_only=True):
    """A :class:`ComparisonResult` as a versioned document (its fields flattened into the JSON object)."""

    KIND = "profkit.comparison"

    result: ComparisonResult

    def body(self) -> dict[str, Any]:
        return {"created_at": self.created_at, **self.result.to_dict()}

    @classmethod
    def from_body(cls, body: dict[str, Any], source: str = "document") -> ComparisonDocument:
        fields = dict(body)
        created_at = fields.pop("created_at", None)
        result = msgspec.convert(fields, ComparisonResult, strict=False)
        return cls(result=result, **({"created_at": created_at} if created_at else {}))


def load_comparison(path: Path) -> ComparisonResult:
    """The comparison stored in a comparison JSON file."""
    return ComparisonDocument.load(path, "comparison").result
