"""The rule registry: ``@trace_rule`` / ``@comparison_rule`` register a rule under its function name.

A rule is a function of a :class:`~profkit.analysis.findings.context.Context` (trace rule) or a
:class:`~profkit.analysis.findings.context.ComparisonContext` (comparison rule) that returns ``None`` when it
does not apply, else one :class:`Hit` (or a list of them): the numbers, labels and rows behind the finding.
The registry renders the rule's text templates from them into a :class:`Finding`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from numbers import Integral
from typing import TYPE_CHECKING, Any

from profkit.analysis.findings.context import ComparisonContext, Context
from profkit.analysis.findings.model import Finding, Impact, Number, Row, Severity
from profkit.analysis.findings.text import Text
from profkit.analysis.findings.thresholds import THRESHOLDS

if TYPE_CHECKING:
    from profkit.analysis.compare import ComparisonResult
    from profkit.analysis.summary import AnalysisResult


class RuleKind(str, Enum):
    TRACE = "trace"  # reads one analysed trace
    COMPARISON = "comparison"  # reads two analyses and their comparison


@dataclass
class Hit:
    """What a rule found: the facts a finding is rendered from."""

    numbers: dict[str, Number] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    rows: list[Row] = field(default_factory=list)
    severity: Severity | None = None  # None: the rule's declared severity
    scope: str | None = None  # None: the rule's declared scope
    variant: str | None = None  # a key of the rule's ``variants``: other text for this case
    impact: Impact | None = None  # the recoverable time the rule estimates


@dataclass(frozen=True)
class Rule:
    id: str
    kind: RuleKind
    check: Callable[[Any], Hit | Iterable[Hit] | None]
    text: Text
    severity: Severity
    scope: str
    thresholds: tuple[str, ...]  # the THRESHOLDS keys the rule reads
    variants: dict[str, Text]
    order: int  # registration order: ties within a severity keep it

    def finding(self, hit: Hit) -> Finding:
        text = self.variants[hit.variant] if hit.variant else self.text
        numbers = _plain(hit.numbers)
        rows = [_plain(row) for row in hit.rows]
        title, evidence, next_step = text.render(numbers, hit.labels, rows)
        return Finding(
            rule=self.id,
            severity=hit.severity or self.severity,
            scope=hit.scope or self.scope,
            title=title,
            evidence=evidence,
            next_step=next_step,
            numbers=numbers,
            labels=hit.labels,
            rows=rows,
            impact=hit.impact,
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
            {name: replace(text, **override) for name, override in (variants or {}).items()},
            len(_RULES),
        )
        return check

    return register


def trace_rule(**declaration: Any) -> Callable[[Callable], Callable]:
    """Register a trace rule: texts (title, evidence, next_step, row), severity, scope, thresholds, variants."""
    return _register(RuleKind.TRACE, **declaration)


def comparison_rule(**declaration: Any) -> Callable[[Callable], Callable]:
    """Register a comparison rule (same declaration as :func:`trace_rule`)."""
    return _register(RuleKind.COMPARISON, **declaration)


def rules(kind: RuleKind | None = None) -> list[Rule]:
    """The registered rules of ``kind`` (all when ``None``), in registration order."""
    return [rule for rule in _RULES.values() if kind is None or rule.kind == kind]


def _run(kind: RuleKind, ctx: Context | ComparisonContext) -> list[Finding]:
    ranked = []
    for rule in rules(kind):
        outcome = rule.check(ctx)
        hits = [] if outcome is None else [outcome] if isinstance(outcome, Hit) else list(outcome)
        ranked += [(rule.order, rule.finding(hit)) for hit in hits]
    ranked.sort(key=lambda item: (item[1].severity.rank, item[0]))
    return [finding for _, finding in ranked]


def evaluate(ctx: Context) -> list[Finding]:
    """The findings of every trace rule, most severe first, then in rule order."""
    return _run(RuleKind.TRACE, ctx)


def evaluate_comparison(result: ComparisonResult, a: AnalysisResult, b: AnalysisResult) -> list[Finding]:
    """The findings of every comparison rule on ``result`` (A vs B), most severe first, then in rule order."""
    return _run(RuleKind.COMPARISON, ComparisonContext(result, a, b))
