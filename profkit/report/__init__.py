"""Report models -> renderers (HTML, JSON, terminal)."""

from profkit.report.html import analysis_html, comparison_html

__all__ = ["analysis_html", "comparison_html"]
