"""Pure functions from event tables to result dataclasses: no I/O, no printing, no HTML.

Attribution, stages and steps (``pipeline_view``), kernels and operators, the GPU timeline, the comparison,
findings (``findings/``: add a rule there) and benchmark statistics (``bench/``)."""

from profkit.analysis.summary import AnalysisResult, analyze_tables

__all__ = ["AnalysisResult", "analyze_tables"]
