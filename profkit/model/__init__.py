"""Typed, versioned result documents: what profkit writes and reads back.

One module per document kind (:mod:`~profkit.model.capture`, :mod:`~profkit.model.analysis`,
:mod:`~profkit.model.comparison` ...), each a :class:`~profkit.model.base.Document`; :mod:`~profkit.model.compat`
decides which results may be compared. :data:`DOCUMENT_KINDS` maps each kind to its class, so
:func:`load_document` reads any of them; a new kind (load-test or quality results) is a new module plus one entry.
"""

from __future__ import annotations

import importlib
import re
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

from profkit.errors import ProfkitError

if TYPE_CHECKING:
    from profkit.model.base import Document

#: kind -> ``"module:Class"`` of its document (imported on first use: some kinds pull in the analysis types).
DOCUMENT_KINDS: dict[str, str] = {
    "profkit.capture": "profkit.model.capture:CaptureMetadata",
    "profkit.analysis": "profkit.model.analysis:AnalysisSummary",
    "profkit.comparison": "profkit.model.comparison:ComparisonDocument",
    "profkit.bench": "profkit.model.bench:BenchResult",
    "profkit.history": "profkit.model.history:History",
    "profkit.analysis-index": "profkit.model.index:AnalysisIndex",
    "profkit.load-test": "profkit.model.load:LoadTestResult",
    "profkit.quality": "profkit.model.quality:QualityDocument",
}

_KIND = re.compile(rb'"kind"\s*:\s*"(profkit\.[A-Za-z0-9_.-]+)"')
_SNIFF_BYTES = 2048


def document_class(kind: str) -> type[Document]:
    """The document class of ``kind``; an unknown kind is one clear error."""
    target = DOCUMENT_KINDS.get(kind)
    if target is None:
        raise ProfkitError(f"unknown profkit document kind {kind!r} (this profkit reads {', '.join(DOCUMENT_KINDS)})")
    module, name = target.split(":")
    return getattr(importlib.import_module(module), name)


def sniff_kind(path: Path) -> str | None:
    """The ``kind`` of a profkit JSON document, from its first bytes (gzip or plain); ``None`` for anything else."""
    try:
        with open(path, "rb") as file:
            head = file.read(_SNIFF_BYTES)
    except OSError:
        return None
    if head[:2] == b"\x1f\x8b":
        try:
            head = zlib.decompressobj(wbits=31).decompress(head, _SNIFF_BYTES)
        except zlib.error:
            return None
    if head.lstrip()[:1] != b"{":
        return None
    match = _KIND.search(head)
    return match.group(1).decode() if match else None


def load_document(path: Path) -> Document:
    """Any profkit document, as the class its ``kind`` names (checked, migrated, typed)."""
    from profkit.jsonio import read_json

    path = Path(path)
    data = read_json(path, "profkit document")
    kind = data.get("kind") if isinstance(data, dict) else None
    if not isinstance(kind, str):
        raise ProfkitError(f"{path}: not a profkit document (no kind)")
    return document_class(kind).from_builtins(data, str(path))
