"""The rule registry: ``@trace_rule`` / ``@comparison_rule`` register a rule under its function name.

A rule is a function of a :class:`~profkit.analysis.findings.context.Context` (trace rule) or a
:class:`~profkit.analysis.findings.context.ComparisonContext` (comparison rule) that returns ``None`` when it
does not apply, else one :class:`Hit` (or a list of them): the numbers, labels and rows behind the finding.
The registry renders the rule's text templates from them into a :class:`Finding`.

A rule that declares an ``impact`` method puts the time its fix would recover in ``Hit.recoverable_ms``; the
registry turns it into the finding's :class:`Impact` (ms, share of the pipeline wall time, method) and derives the
severity from it (:func:`severity_of`), so one table decides what is critical. Findings are ordered by severity,
then by impact (largest first), then by rule order.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from enum import Enum
from numbers import Integral
from typing import TYPE_CHECKING, Any

import msgspec

from profkit.analysis.findings.context import ComparisonContext, Context
from profkit.analysis.findings.model import Finding, Impact, Number, Row, Severity
from profkit.analysis.findings.text import Text, render
from profkit.analysis.findings.thresholds import THRESHOLDS

if TYPE_CHECKING:
    from profkit.analysis.compare import ComparisonResult
    from profkit.analysis.summary import AnalysisResult


class RuleKind(str, Enum):
    TRACE = "trace"  # reads one analysed trace
    COMPARISON = "comparison"  # reads two analyses and their comparison


class Hit(msgspec.Struct):
    """What a rule found: the facts a finding is rendered from."""

    numbers: dict[str, Number] = {}
    labels: dict[str, str] = {}
    rows: list[Row] = []
    severity: Severity | None = None  # None: the rule's declared severity
    scope: str | None = None  # None: the rule's declared scope
    variant: str | None = None  # a key of the rule's ``variants``: other text for this case
    recoverable_ms: float | None = None  # the time the fix would recover (rules that declare an impact method)
    impact: Impact | None = None  # an impact the rule built itself (its own method and share)


def severity_of(impact: Impact) -> Severity:
    """The severity an impact earns: critical / warning from its share of wall time; info below the floor."""
    if impact.recoverable_ms < THRESHOLDS["impact_floor_ms"] or impact.share < THRESHOLDS["impact_warning_share"]:
        return Severity.INFO
    return Severity.CRITICAL if impact.share >= THRESHOLDS["impact_critical_share"] else Severity.WARNING


class Rule(msgspec.Struct, frozen=True):
    id: str
    kind: RuleKind
    check: Callable[[Any], Hit | Iterable[Hit] | None]
    text: Text
    severity: Severity
    scope: str
    thresholds: tuple[str, ...]  # the THRESHOLDS keys the rule reads
    variants: dict[str, Text]
    order: int  # registration order: ties within a severity keep it
    impact: str = ""  # the impact method (a text template); empty: the rule estimates no recoverable time
    estimate: bool = False  # the impact rests on an assumed rate or ratio

    def finding(self, hit: Hit, wall_us: float = 0.0) -> Finding:
        """``hit`` rendered; ``wall_us`` (the pipeline wall time) gives the impact's share."""
        text = self.variants[hit.variant] if hit.variant else self.text
        numbers = _plain(hit.numbers)
        rows = [_plain(row) for row in hit.rows]
        title, evidence, next_step = text.render(numbers, hit.labels, rows)
        impact = None
        severity = hit.severity or self.severity
        if self.impact and hit.recoverable_ms is not None and math.isfinite(hit.recoverable_ms):
            ms = max(float(hit.recoverable_ms), 0.0)
            impact = Impact(
                recoverable_ms=ms,
                share=ms * 1000 / wall_us if wall_us > 0 else 0.0,
                method=render(self.impact, {**numbers, **hit.labels}),
                estimate=self.estimate,
            )
            severity = severity_of(impact)
        elif hit.impact is not None:
            impact = hit.impact
            severity = severity_of(impact)
        return Finding(
            rule=self.id,
            severity=severity,
            scope=hit.scope or self.scope,
            title=title,
            evidence=evidence,
            next_step=next_step,
            numbers=numbers,
            labels=hit.labels,
            rows=rows,
            impact=impact,
        )


def _plain(values: Mapping[str, Any]) -> dict[str, Any]:
    """Builtin ``int``/``float`` for numpy numbers; non-finite numbers dropped (they render as ``n/a``)."""
    plain: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, str):
            plain[key] = value
        elif isinstance(value, Integral):
            plain[key] = int(value)
        elif math.isfinite(number := float(value)):
            plain[key] = number
    return plain


_RULES: dict[str, Rule] = {}


def _register(
    kind: RuleKind,
    *,
    title: str,
    evidence: str,
    next_step: str,
    severity: Severity,
    scope: str = "run",
    thresholds: tuple[str, ...] = (),
    row: str = "",
    row_sep: str = "; ",
    variants: dict[str, dict[str, str]] | None = None,
    impact: str = "",
    estimate: bool = False,
) -> Callable[[Callable], Callable]:
    def register(check: Callable) -> Callable:
        rule_id = check.__name__
        if rule_id in _RULES:
            raise ValueError(f"finding rule {rule_id!r} is registered twice")
        unknown = [key for key in thresholds if key not in THRESHOLDS]
        if unknown:
            raise ValueError(f"finding rule {rule_id!r} declares thresholds missing from THRESHOLDS: {unknown}")
        text = Text(title, evidence, next_step, row, row_sep)
        _RULES[rule_id] = Rule(
            rule_id,
            kind,
            check,
            text,
            severity,
            scope,
            tuple(thresholds),
            {name: msgspec.structs.replace(text, **override) for name, override in (variants or {}).items()},
            len(_RULES),
            impact,
            estimate,
        )
        return check

    return register


def trace_rule(**declaration: Any) -> Callable[[Callable], Callable]:
    """Register a trace rule: texts (title, evidence, next_step, row), severity, scope, thresholds, variants, and
    the ``impact`` method (a template naming how ``Hit.recoverable_ms`` is estimated; ``estimate``: it assumes a
    rate or ratio)."""
    return _register(RuleKind.TRACE, **declaration)


def comparison_rule(**declaration: Any) -> Callable[[Callable], Callable]:
    """Register a comparison rule (same declaration as :func:`trace_rule`)."""
    return _register(RuleKind.COMPARISON, **declaration)


def rules(kind: RuleKind | None = None) -> list[Rule]:
    """The registered rules of ``kind`` (all when ``None``), in registration order."""
    return [rule for rule in _RULES.values() if kind is None or rule.kind == kind]


def rank_key(finding: Finding, order: int = 0) -> tuple[int, float, int]:
    """How findings are ordered: most severe first, then largest impact, then rule order."""
    return finding.severity.rank, -(finding.impact.recoverable_ms if finding.impact else -1.0), order


#: rule -> the more specific rule whose recoverable time is the same idle: when both fire, the general one stays as
#: context (info, no impact of its own), so impacts are never counted twice.
COVERED_BY: dict[str, tuple[str, ...]] = {
    "low_gpu_utilization": ("launch_bound_denoise",),
    # with CUDA graphs, the idle after the per-step syncs is the idle between replays
    "sync_every_step": ("idle_between_graph_replays",),
    "host_sync_calls": ("idle_between_graph_replays",),
}


def _uncounted(finding: Finding, cover: Finding) -> Finding:
    return msgspec.structs.replace(
        finding,
        severity=Severity.INFO,
        impact=None,
        evidence=f"{finding.evidence} (Its recoverable time is counted in: {cover.title}.)",
    )


def _run(kind: RuleKind, ctx: Context | ComparisonContext, wall_us: float = 0.0) -> list[Finding]:
    ranked = []
    for rule in rules(kind):
        outcome = rule.check(ctx)
        hits = [] if outcome is None else [outcome] if isinstance(outcome, Hit) else list(outcome)
        ranked += [(rule.order, rule.finding(hit, wall_us)) for hit in hits]
    fired = {finding.rule: finding for _, finding in ranked}
    covered = {rule: next((fired[c] for c in covers if c in fired), None) for rule, covers in COVERED_BY.items()}
    ranked = [(order, _uncounted(f, cover) if (cover := covered.get(f.rule)) else f) for order, f in ranked]
    ranked.sort(key=lambda item: rank_key(item[1], item[0]))
    return [finding for _, finding in ranked]


def evaluate(ctx: Context) -> list[Finding]:
    """The findings of every trace rule, most severe first, then by impact, then in rule order."""
    return _run(RuleKind.TRACE, ctx, ctx.window_us)


def evaluate_comparison(result: ComparisonResult, a: AnalysisResult, b: AnalysisResult) -> list[Finding]:
    """The findings of every comparison rule on ``result`` (A vs B), most severe first, then in rule order."""
    return _run(RuleKind.COMPARISON, ComparisonContext(result, a, b))
