"""Findings: named bottlenecks and caveats with the numbers behind them, a severity and a next step.

One :class:`Finding` type (``model.py``); rules registered under their function names (``registry.py``) as
trace rules (``caveats.py``, ``expert_rules.py``, ``diffusion_rules.py``, ``stage_rules.py``) or comparison
rules (``comparison_rules.py``); every threshold in one table (``thresholds.py``); facts shared with captures
and comparisons in ``facts.py``. To add a rule: write a function of the context that returns a ``Hit`` (or
``None``) in the module of its topic, decorate it with ``@trace_rule`` / ``@comparison_rule`` and its text
templates, and put any threshold it compares against in ``THRESHOLDS``.
"""

# importing a rule module registers its rules; import order is rule order (the tie-break within a severity)
from profkit.analysis.findings import (
    attention_rules,
    caveats,
    comparison_rules,
    diffusion_rules,
    expert_rules,
    graph_rules,
    stage_rules,
)
from profkit.analysis.findings.context import ComparisonContext, Context
from profkit.analysis.findings.model import Finding, Impact, Severity
from profkit.analysis.findings.registry import Hit, Rule, RuleKind, evaluate, evaluate_comparison, rules
from profkit.analysis.findings.thresholds import THRESHOLDS

RULE_MODULES = (caveats, expert_rules, diffusion_rules, stage_rules, graph_rules, attention_rules, comparison_rules)

__all__ = [
    "RULE_MODULES",
    "THRESHOLDS",
    "ComparisonContext",
    "Context",
    "Finding",
    "Hit",
    "Impact",
    "Rule",
    "RuleKind",
    "Severity",
    "evaluate",
    "evaluate_comparison",
    "rules",
]
