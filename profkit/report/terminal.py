"""Report model -> rich terminal tables.

Every string that comes from a trace, a metadata file or a bench result (kernel, model, config and device names,
labels, findings) reaches rich as :class:`~rich.text.Text` (cells, titles, rules) or is printed with
``markup=False``: text in square brackets is shown as written, never read as console markup.
"""

from __future__ import annotations

import statistics
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table
from rich.text import Text

from profkit.analysis.findings import Finding, Severity
from profkit.analysis.kernel_names import short_kernel_name
from profkit.analysis.summary import AnalysisResult
from profkit.analysis.whole_export import WholeExport
from profkit.report.jinja import format_ms, format_pct, format_speedup, format_us, plural

if TYPE_CHECKING:  # the bench summary pulls in scipy, the comparison its module: not needed to print an analysis
    from profkit.analysis.bench.summary import BenchSummary
    from profkit.analysis.compare import ComparisonResult

_SEVERITY_STYLE = {Severity.CRITICAL: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}


def _text(value: object) -> Text:
    """A plain cell, title or line: never parsed as markup."""
    return Text(str(value))


def _line(console: Console, text: str, style: str | None = None) -> None:
    console.print(Text(text, style=style or ""), highlight=False)


def _add_row(table: Table, *cells: object) -> None:
    table.add_row(*(_text(cell) for cell in cells))


def _findings(console: Console, findings: list[Finding], limit: int = 8) -> None:
    for finding in findings[:limit]:
        label = f"{finding.severity.value.upper():8}"
        title = Text.assemble((label, _SEVERITY_STYLE[finding.severity]), " ", str(finding.title))
        console.print(title, highlight=False)
        _line(console, f"         {finding.evidence}")
        if finding.impact is not None:
            _line(console, f"         impact: {finding.impact.headline()}; method: {finding.impact.method}", "dim")


def _notes(console: Console, notes: list[str]) -> None:
    for note in notes:
        _line(console, f"note: {note}")


def print_analysis(result: AnalysisResult, console: Console) -> None:
    console.rule(_text(f"profkit analyze: {result.label}"), style="dim")
    if result.whole is not None:
        _whole_export(console, result.whole)
    if result.view.has_ranges:
        title = _text(f"Stages (pipeline wall time {format_ms(result.view.total_us)})")
        table = Table(title=title, title_justify="left")
        table.add_column("stage")
        table.add_column("wall", justify="right")
        table.add_column("share", justify="right")
        if result.gpu:
            table.add_column("GPU span", justify="right")
            table.add_column("GPU busy", justify="right")
            table.add_column("busy in span", justify="right")
        for stage in result.view.stages:
            cells = [stage.stage, format_ms(stage.wall_us), format_pct(stage.share)]
            if result.gpu:
                span = stage.projection  # the stage projected onto the GPU: busy / span never passes 100%
                cells += [
                    format_ms(span and span.span_us),
                    format_ms(stage.gpu_busy_us),
                    format_pct(span and span.busy_share),
                ]
            _add_row(table, *cells)
        console.print(table)
        stats = result.view.step_stats
        if stats:
            _line(
                console,
                f"Denoise steps: {stats.count}, mean {format_ms(stats.mean)}, median {format_ms(stats.median)}, "
                f"min {format_ms(stats.min)}, max {format_ms(stats.max)}, std {format_ms(stats.std)}",
            )
            gpu_steps = [s for s in result.view.steps if s.denoiser_gpu_us is not None]
            if gpu_steps:
                import statistics

                denoiser = statistics.median(s.denoiser_gpu_us for s in gpu_steps)
                scheduler = statistics.median(s.scheduler_gpu_us or 0.0 for s in gpu_steps)
                host = statistics.median(s.scheduler_us for s in gpu_steps)
                _line(
                    console,
                    f"GPU time per step (median): denoiser {format_ms(denoiser)}, scheduler {format_ms(scheduler)} "
                    f"(the scheduler's CPU range, {format_ms(host)}, includes the host's wait for the GPU)",
                )
    else:
        _line(console, "No profkit ranges in this trace: stage and step views unavailable.")
    if result.trace.not_captured:
        _line(console, f"Not captured: {', '.join(result.trace.not_captured)}")
    if result.gpu:
        gpu = result.gpu
        _line(
            console,
            f"GPU: busy {format_ms(gpu.busy_us)} of {format_ms(gpu.window_us)} window "
            f"({format_pct(gpu.utilization)}), kernel sum {format_ms(gpu.kernel_sum_us)}, "
            f"{plural(gpu.kernel_count, 'kernel')} on {plural(gpu.streams, 'stream')}",
        )
    if result.gaps and result.gaps.count:
        causes = ", ".join(f"{c.label} {format_ms(c.total_us)} ({format_pct(c.share)})" for c in result.gaps.by_cause)
        _line(console, f"GPU idle {format_ms(result.gaps.idle_us)} in {plural(result.gaps.count, 'gap')}: {causes}")
    if result.launches and result.launches.delay_p50_us is not None:
        launches = result.launches
        _line(
            console,
            f"Launch-to-start delay P50 {format_us(launches.delay_p50_us)}, P99 {format_us(launches.delay_p99_us)}; "
            f"{format_pct(launches.short_kernel_share)} of kernels under {launches.short_kernel_threshold_us:.0f} µs",
        )
    _notes(console, result.notes)  # before the table: the notes speak of the breakdown "below"
    breakdown = result.primary
    title = "Top GPU kernels" if breakdown.kind == "gpu_kernels" else "Top CPU operators (self time)"
    table = Table(title=title, title_justify="left")
    # the other columns need about 50 characters; the kernel name gets the rest
    table.add_column("name", overflow="ellipsis", no_wrap=True, max_width=max(20, console.width - 52))
    table.add_column("category", no_wrap=True, min_width=13)
    table.add_column("calls", justify="right", no_wrap=True, min_width=5)
    table.add_column("time (ms)", justify="right", no_wrap=True, min_width=10)
    table.add_column("share", justify="right", no_wrap=True, min_width=6)
    for row in breakdown.rows[:10]:
        name = short_kernel_name(row.name) if breakdown.kind == "gpu_kernels" else row.name
        _add_row(table, name, row.category, row.count, f"{row.total_us / 1000:,.3f}", format_pct(row.share))
    console.print(table)
    _findings(console, result.findings)


def _whole_export(console: Console, whole: WholeExport) -> None:
    """The totals over every event of an export whose detailed views cover only its first calls."""
    parts = [f"{plural(whole.window.gpu_events_total, 'GPU event')}"]
    if whole.calls is not None:
        calls = whole.calls
        parts.append(
            f"{plural(calls.count, 'pipeline call')}: median {format_ms(calls.p50_us)}, P90 {format_ms(calls.p90_us)}, "
            f"P99 {format_ms(calls.p99_us)}"
        )
    parts.append(
        f"GPU busy {format_ms(whole.busy_us)} of {format_ms(whole.span_us)} ({format_pct(whole.utilization)}), "
        f"kernel sum {format_ms(whole.kernel_sum_us)}"
    )
    _line(console, "Whole export (SQLite aggregates over every event): " + "; ".join(parts))
    top = ", ".join(f"{c.category} {format_pct(c.share)}" for c in whole.kernels.categories[:5])
    if top:
        _line(console, f"GPU time by category, whole export: {top}")


def print_comparison(comparison: ComparisonResult, console: Console) -> None:
    console.rule(_text(f"profkit compare: {comparison.label_a} vs {comparison.label_b}"), style="dim")
    _line(console, comparison.verdict + ".", style="bold")
    table = Table(title="Speedup A/B (above 1: B faster)", title_justify="left")
    for column in ("", f"A: {comparison.label_a}", f"B: {comparison.label_b}", "speedup"):
        table.add_column(_text(column), justify="right" if column else "left")
    _add_row(
        table,
        "total",
        format_ms(comparison.total.a_us),
        format_ms(comparison.total.b_us),
        format_speedup(comparison.total.speedup),
    )
    for row in comparison.stages:
        _add_row(table, row.key, format_ms(row.a_us), format_ms(row.b_us), format_speedup(row.speedup))
    if comparison.step_speedup:
        a_steps = [row.a_us for row in comparison.steps if row.a_us is not None]
        b_steps = [row.b_us for row in comparison.steps if row.b_us is not None]
        _add_row(
            table,
            "median step",
            format_ms(statistics.median(a_steps)) if a_steps else "n/a",
            format_ms(statistics.median(b_steps)) if b_steps else "n/a",
            format_speedup(statistics.median(a_steps) / statistics.median(b_steps) if a_steps and b_steps else None),
        )
    console.print(table)
    _notes(console, comparison.notes)
    _findings(console, comparison.findings)
    _findings_diff(console, comparison)


def _findings_diff(console: Console, comparison: ComparisonResult) -> None:
    """A's findings against B's: disappeared, appeared, persisted (impact A -> B)."""
    diff = comparison.findings_diff
    if diff is None or not (diff.disappeared or diff.appeared or diff.persisted):
        return
    table = Table(title="Findings A -> B (recoverable ms)", title_justify="left")
    for column in ("", "finding", "A", "B"):
        table.add_column(column, justify="right" if column in ("A", "B") else "left")
    for status, changes in (("gone", diff.disappeared), ("new", diff.appeared), ("kept", diff.persisted)):
        for change in changes:
            _add_row(
                table,
                status,
                change.title,
                _impact_cell(change.impact_a_ms, change.severity_a),
                _impact_cell(change.impact_b_ms, change.severity_b),
            )
    console.print(table)


def _impact_cell(ms: float | None, severity: str | None) -> str:
    if severity is None:
        return "-"
    return f"{ms:.2f} {severity}" if ms is not None else severity


def print_bench(summary: BenchSummary, console: Console) -> None:
    """Latency percentiles, throughput, memory and cost per configuration; baseline changes."""
    from profkit.report.verdict import group_caveats, summary_verdict

    console.rule(_text(f"profkit bench ({summary.status}, {summary.device})"), style="dim")
    verdict = summary_verdict(summary)
    if verdict is not None:  # the answer first
        _line(console, " ".join([verdict.headline, *(v.sentence for v in verdict.versus)]), style="bold")
    table = Table(title="End-to-end latency (ms), throughput, cost, energy", title_justify="left")
    table.add_column("config", no_wrap=True, min_width=8)
    for column in ("n", "P50", "P90", "P99", "CV", "img/s", "$/1k img", "J/img"):
        table.add_column(column, justify="right", no_wrap=True)
    for config in summary.configs:
        stats = config.metrics.get("e2e_ms")
        if stats is None:
            cells = [config.name, "0", "n/a", "n/a", "n/a", "n/a"]
        else:
            cells = [
                config.name,
                str(stats.count),
                f"{stats.p50:.1f}",
                f"{stats.p90:.1f}",
                f"{stats.p99:.1f}",
                format_pct(stats.cv),
            ]
        cells += [
            f"{config.images_per_s:.2f}" if config.images_per_s else "n/a",
            f"{config.cost.usd_per_1000_images:.4f}" if config.cost else "-",
            f"{config.energy.joules_per_image:.3g}" if config.energy else "-",
        ]
        _add_row(table, *cells)
    console.print(table)
    _line(console, f"energy: {summary.energy_source}")
    for line in summary.saturation.values():
        _line(console, line)
    for warnings in group_caveats(summary.warnings).values():  # grouped: cost, trust, statistics, setup
        for warning in warnings:
            _line(console, f"warning: {warning}")
    if summary.changes:
        changes = Table(title="Against the baseline (median, Mann-Whitney U)", title_justify="left")
        for column in ("config", "metric", "baseline", "now", "change", "p", "verdict"):
            changes.add_column(column, justify="left" if column in ("config", "metric", "verdict") else "right")
        for change in summary.changes:
            verdict = "REGRESSION" if change.regressed else ("significant" if change.significant else "noise")
            p_value = f"{change.p_value:.3g}" if change.p_value is not None else "n/a"
            _add_row(
                changes,
                change.config,
                change.metric,
                f"{change.baseline_median:.2f}",
                f"{change.current_median:.2f}",
                f"{change.change:+.1%}",
                p_value,
                verdict,
            )
        console.print(changes)
