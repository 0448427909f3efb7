"""`profkit analyze DIR` on a folder of traces: each item analyzed in its own process, one index report.

An item is a trace file directly in the folder or a capture folder one level down. Each is analyzed like
``profkit analyze ITEM`` (its report and summary next to its trace) in a pool of worker processes; a worker
returns only the item's key numbers, so the parent holds one small row per item whatever the trace sizes. An
item that fails becomes a row with its error: the others are kept, and the command then exits non-zero.
Ranks of one distributed job (Kineto's ``distributedInfo``) are set side by side: iteration or step time per rank
and the slowest rank.
"""

from __future__ import annotations

import os
from pathlib import Path

import msgspec

from profkit.app import DETAIL_EVENTS
from profkit.errors import ProfkitError
from profkit.jsonio import check_outputs, output_folder, write_text
from profkit.model import sniff_kind
from profkit.model.capture import METADATA_FILE, TRACE_FILE
from profkit.model.index import AnalysisIndex, IndexRow, RankRow
from profkit.parsers.columns import median

#: Items one folder may hold (a sweep or the ranks of a job, not a disk scan).
MAX_ITEMS = 512
#: Worker processes at most (each holds one trace's tables).
MAX_JOBS = 8
INDEX_NAME = "index.report.html"


class FolderOutputs(msgspec.Struct):
    index: AnalysisIndex
    html: Path
    json: Path | None
    notes: list[str] = []  # where the outputs went, when not in the folder


def is_folder_of_traces(path: Path) -> bool:
    """A folder that is not itself a capture folder (no metadata.json, no trace.json.gz)."""
    return path.is_dir() and not (path / METADATA_FILE).exists() and not (path / TRACE_FILE).exists()


def find_items(folder: Path) -> list[Path]:
    """Trace files in ``folder`` and capture folders right below it, by name; at most :data:`MAX_ITEMS`."""
    from profkit.parsers import trace_suffixes

    suffixes = tuple(trace_suffixes())
    items = []
    for entry in sorted(folder.iterdir()):
        if entry.is_symlink():
            continue
        if entry.is_file() and entry.name.lower().endswith(suffixes):
            if sniff_kind(entry) is None:  # not a profkit document (a summary or index written here before)
                items.append(entry)
        elif entry.is_dir() and ((entry / METADATA_FILE).is_file() or (entry / TRACE_FILE).is_file()):
            items.append(entry)
        if len(items) > MAX_ITEMS:
            raise ProfkitError(f"{folder} holds more than {MAX_ITEMS} traces: analyze a smaller folder")
    return items


def analyze_item(
    item: str, write_json_summary: bool, force: bool, detail_events: int | None = DETAIL_EVENTS
) -> IndexRow:
    """Worker: analyze one item like ``profkit analyze``; its key numbers, or its error, as one row."""
    from profkit.analysis.iterations import profiler_step_durations_us
    from profkit.app.analyze import analyze_source, output_paths
    from profkit.app.inputs import load_tables, resolve_input

    path = Path(item)
    try:
        source = resolve_input(path)
        html, json_path, _note = output_paths(source, None, None, True, write_json_summary)
        tables = load_tables(source, detail_events) if source.analysis is None else None
        outputs = analyze_source(source, html, json_path, force, tables)
    except ProfkitError as error:
        return IndexRow(item=item, label=path.name, ok=False, error=str(error))
    except MemoryError:
        return IndexRow(item=item, label=path.name, ok=False, error="ran out of memory")
    result = outputs.result
    distributed = tables.info.trace_metadata.get("distributedInfo") if tables is not None else None
    rank = distributed.get("rank") if isinstance(distributed, dict) else None
    world = distributed.get("world_size") if isinstance(distributed, dict) else None
    iterations = profiler_step_durations_us(tables.ranges) if tables is not None else []
    steps = [s.wall_us for s in result.view.steps]
    top = result.findings[0] if result.findings else None
    total_us, busy = result.total_us, result.gpu.utilization if result.gpu is not None else None
    whole = result.whole  # a large export read in part: its totals count every event
    if whole is not None:
        total_us = whole.calls.mean_us * whole.calls.count if whole.calls is not None else total_us
        busy = whole.utilization
    return IndexRow(
        item=item,
        label=result.label,
        ok=True,
        report=str(outputs.html) if outputs.html else None,
        summary=str(outputs.json) if outputs.json else None,
        devices=tuple(result.trace.devices),
        events=result.trace.event_count,
        total_ms=total_us / 1000,
        gpu_busy_share=busy,
        denoise_steps=len(steps),
        median_step_ms=median(steps) / 1000 if steps else None,
        iterations=len(iterations),
        median_iteration_ms=median(iterations) / 1000 if iterations else None,
        top_finding=top.title if top else None,
        top_finding_severity=str(top.severity) if top else None,
        rank=rank if isinstance(rank, int) and not isinstance(rank, bool) else None,
        world_size=world if isinstance(world, int) and not isinstance(world, bool) else None,
        detail_calls=whole.window.calls if whole is not None else None,
        calls_total=whole.window.calls_total if whole is not None else None,
    )


def _ranks(rows: list[IndexRow]) -> tuple[RankRow, ...]:
    ranked = [r for r in rows if r.ok and r.rank is not None]
    ranks = [r.rank for r in ranked]
    if len(ranked) < 2 or len(set(ranks)) != len(ranks) or len({r.world_size for r in ranked}) != 1:
        return ()  # not the ranks of one job: runs of different jobs (or copies) are not set side by side

    def loop_ms(row: IndexRow) -> float | None:
        return row.median_iteration_ms if row.median_iteration_ms is not None else row.median_step_ms

    times = [t for r in ranked if (t := loop_ms(r)) is not None]
    fastest = min(times) if times else None
    return tuple(
        RankRow(
            rank=r.rank,
            label=r.label,
            step_ms=loop_ms(r),
            vs_fastest=(t / fastest - 1) if (t := loop_ms(r)) is not None and fastest else None,
            slowest=t is not None and times != [] and t == max(times),
        )
        for r in sorted(ranked, key=lambda row: row.rank)
    )


def analyze_folder(
    folder: Path,
    html: Path | None = None,
    json_path: Path | None = None,
    write_json_summary: bool = False,
    force: bool = False,
    jobs: int | None = None,
    detail_events: int | None = DETAIL_EVENTS,
) -> FolderOutputs:
    from profkit.report.index_html import index_html

    items = find_items(folder)
    if not items:
        raise ProfkitError(
            f"{folder}: is a directory with no trace file (.json, .json.gz, .sqlite, .nsys-rep) or capture folder in it"
        )
    notes: list[str] = []
    if html is None:
        place, note = output_folder(folder, "the index and reports")
        html, notes = place / INDEX_NAME, [note] if note else []
    if json_path is None and write_json_summary:
        json_path = html.with_name(html.name.removesuffix(".html").removesuffix(".report") + ".json")
    check_outputs((html, json_path), tuple(items), force)
    workers = max(1, min(jobs or os.cpu_count() or 1, MAX_JOBS, len(items)))
    if workers == 1:
        rows = [analyze_item(str(item), write_json_summary, force, detail_events) for item in items]
    else:
        # imported here: analyzing one trace starts without the process machinery
        from concurrent.futures import ProcessPoolExecutor
        from multiprocessing import get_context

        # spawn: a fresh interpreter per worker (no fork of a parent holding threads or big tables)
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
            rows = list(
                pool.map(
                    analyze_item,
                    [str(i) for i in items],
                    [write_json_summary] * len(items),
                    [force] * len(items),
                    [detail_events] * len(items),
                )
            )
    index = AnalysisIndex(folder=str(folder), jobs=workers, rows=tuple(rows), ranks=_ranks(rows))
    outputs = FolderOutputs(index, write_text(html, index_html(index, html.parent), force), None, notes)
    if json_path is not None:
        outputs.json = index.write(json_path, force)
    return outputs
