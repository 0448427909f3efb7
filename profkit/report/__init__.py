"""Renderers: one module per format. ``html`` (analysis, comparison, bench reports from ``templates/``),
``terminal`` (rich, trace text never read as markup), ``csv`` (bench trials and statistics); JSON is each
document's own ``to_json`` (``profkit.model``). Add a report section in a template and, if it needs shaped data,
in ``html.py``/``charts.py``.
"""

from profkit.report.html import analysis_html, bench_html, comparison_html

__all__ = ["analysis_html", "bench_html", "comparison_html"]
