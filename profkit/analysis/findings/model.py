"""The one finding type: a rule id, a severity, the numbers behind it and the prose rendered from them.

A :class:`Finding` is plain data: JSON-serialisable (orjson, msgspec) and loaded back with
``msgspec.convert(data, Finding)``. ``numbers`` carry units in their key names (``idle_ms``, ``share``,
``count``), ``labels`` the non-numeric facts (a dtype, a stage), ``rows`` the listed items (kernels, calls,
gaps). ``title``, ``evidence`` and ``next_step`` are rendered from those by the rule's text templates and kept
as fields for JSON readers.
"""

from __future__ import annotations

from enum import Enum

import msgspec

Number = int | float
Row = dict[str, str | int | float]


class Severity(str, Enum):
    """How urgent a finding is; members are declared most urgent first."""

    CRITICAL = "critical"
    WARNING = "warning"
    INFO = "info"

    def __str__(self) -> str:
        return self.value

    @property
    def rank(self) -> int:
        """0 for the most urgent."""
        return _RANK[self]


_RANK = {severity: rank for rank, severity in enumerate(Severity)}


class Impact(msgspec.Struct, frozen=True, kw_only=True):
    """Recoverable time a finding estimates: ms, share of the pipeline wall time, and how it was estimated."""

    recoverable_ms: float
    share: float  # of the pipeline wall time
    method: str  # how it was estimated, e.g. "GPU idle inside steps waiting on the host (upper bound)"
    estimate: bool = False  # True: an assumed rate or ratio enters the number (labelled "estimate" when shown)

    def headline(self) -> str:
        """``"5.28 ms recoverable (1.2% of wall time), estimate"``: how reports show it (the method follows)."""
        label = ", estimate" if self.estimate else ""
        return f"{self.recoverable_ms:.2f} ms recoverable ({self.share:.1%} of wall time){label}"


class Finding(msgspec.Struct, frozen=True, kw_only=True):
    """A named bottleneck or caveat with the numbers behind it, a severity and a next step."""

    rule: str  # the registered rule id (= its function name)
    severity: Severity
    scope: str = "run"  # run | text_encoder | denoise | vae | other
    title: str
    evidence: str
    next_step: str
    numbers: dict[str, Number] = {}
    labels: dict[str, str] = {}
    rows: list[Row] = []
    impact: Impact | None = None
