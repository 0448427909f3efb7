"""Pure functions from event tables to result dataclasses (no printing, no HTML)."""

from profkit.analysis.summary import AnalysisResult, analyze_tables

__all__ = ["AnalysisResult", "analyze_tables"]
