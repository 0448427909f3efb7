"""What every document profkit writes starts with."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

#: Version of every JSON document profkit writes (metadata, summaries, comparisons).
SCHEMA_VERSION = 1


def document_header(kind: str) -> dict[str, Any]:
    """The first keys of every JSON document profkit writes."""
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": kind,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
