"""Where each piece of GPU work came from: the profkit stage and denoise step that launched it.

Two sources, in order of trust:

1. **launch**: the kernel's runtime/driver launch call (joined on the correlation id) lies inside a
   profkit CPU range. This is where the work was *issued*, which stays right even when the GPU runs
   far behind the host.
2. **gpu_annotation**: no launch was recorded for it (a trace without runtime events), but the kernel
   starts inside the GPU-side projection of a profkit range (Kineto's ``gpu_user_annotation``).

Work matching neither is "unattributed" and reported as such.
"""

from __future__ import annotations

import msgspec
import numpy as np

from profkit import naming
from profkit.analysis.intervals import locate, merge
from profkit.analysis.namecodes import per_name
from profkit.analysis.taxonomy import kernel_classes
from profkit.parsers.columns import choose, counts, factorize, isin, object_column
from profkit.parsers.tables import Table, TraceTables

#: range kinds whose union is a stage's wall time (the step ranges cover the denoiser and scheduler).
STAGE_KINDS: dict[str, tuple[str, ...]] = {
    "text_encoder": ("text_encoder",),
    "denoise": ("step",),
    "vae": ("vae",),
    "safety_checker": ("safety_checker",),
}
OUTSIDE = ""  # stage label of times outside every pipeline call

Intervals = tuple[np.ndarray, np.ndarray]


class PipelineWindows(msgspec.Struct):
    ranges: Table  # profkit ranges with stage, kind, step columns, sorted by ts
    pipeline: Intervals  # merged pipeline-call intervals
    pipeline_source: str  # "pipeline range" | "span of profkit ranges"
    pipeline_calls: int
    stages: dict[str, Intervals]  # merged CPU intervals of each named stage
    steps: Table  # one row per step range: ts, end, dur, step, call
    gpu_stages: dict[str, Intervals]  # the same from gpu_user_annotation ranges (may be empty)
    gpu_steps: Table


#: step numbers from here on are not real denoise steps (and would not fit the int64 step column)
MAX_STEP = 2**31


def parse_range(name: str) -> naming.RangeInfo | None:
    """What a range name says, or ``None`` when it is not a profkit range profkit can place."""
    try:
        info = naming.parse_range_name(name)
    except ValueError:  # a step number too long for int()
        return None
    return info if info is None or info.step < MAX_STEP else None


def _profkit_named(names: np.ndarray) -> np.ndarray:
    return per_name(names, lambda name: name.startswith(naming.PREFIX), False, dtype=bool)


def unparsed_ranges(ranges: Table) -> dict[str, int]:
    """CPU-side ranges named ``profkit/...`` whose names do not parse, by name (most frequent first)."""
    named = ranges["name"][~ranges["on_gpu"].astype(bool, copy=False)]
    named = named[_profkit_named(named)]
    return {str(name): count for name, count in counts(named).items() if parse_range(str(name)) is None}


def _classified(ranges: Table) -> Table:
    named = ranges[_profkit_named(ranges["name"])]
    codes, uniques = factorize(named["name"])
    parsed = [parse_range(str(name)) for name in uniques]
    keep = np.array([info is not None for info in parsed], dtype=bool)[codes] if len(codes) else np.zeros(0, bool)
    named, codes = named[keep], codes[keep]
    stage = np.empty(len(parsed), dtype=object)
    kind = np.empty(len(parsed), dtype=object)
    stage[:] = [info.stage if info is not None else None for info in parsed]
    kind[:] = [info.kind if info is not None else None for info in parsed]
    step = np.array([-1 if info is None or info.step is None else info.step for info in parsed], dtype=np.int64)
    named = named.assign(stage=stage[codes], kind=kind[codes], step=step[codes])
    return named.sorted_by("ts")


def _stage_intervals(ranges: Table) -> dict[str, Intervals]:
    result = {}
    for stage, kinds in STAGE_KINDS.items():
        rows = ranges[(ranges["stage"] == stage) & isin(ranges["kind"], kinds)]
        if not rows.empty:
            result[stage] = merge(rows["ts"], rows["end"])
    return result


def _steps(ranges: Table, pipeline: Intervals) -> Table:
    steps = ranges[ranges["kind"] == "step"][["ts", "end", "dur", "step"]]
    steps["call"] = np.maximum(locate(steps["ts"], *pipeline), 0)
    return steps


def pipeline_windows(tables: TraceTables) -> PipelineWindows | None:
    """The profkit stage/step intervals of a trace, or ``None`` when it has no profkit ranges."""
    classified = _classified(tables.ranges)
    on_gpu = classified["on_gpu"].astype(bool, copy=False)
    cpu = classified[~on_gpu]
    if cpu.empty:
        return None
    gpu = classified[on_gpu]
    calls = cpu[cpu["kind"] == "pipeline"]
    if not calls.empty:
        pipeline = merge(calls["ts"], calls["end"])
        source = "pipeline range"
    else:
        pipeline = (np.array([cpu["ts"].min()]), np.array([cpu["end"].max()]))
        source = "span of profkit ranges"
    return PipelineWindows(
        ranges=cpu,
        pipeline=pipeline,
        pipeline_source=source,
        pipeline_calls=len(pipeline[0]) if not calls.empty else 0,
        stages=_stage_intervals(cpu),
        steps=_steps(cpu, pipeline),
        gpu_stages=_stage_intervals(gpu),
        gpu_steps=gpu[gpu["kind"] == "step"][["ts", "end"]],
    )


def label_times(times: np.ndarray, windows: PipelineWindows, gpu_side: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Stage label and step row (index into ``windows.steps``, -1 for none) of each time point.

    Labels: a stage name, ``"other"`` inside a pipeline call but outside named stages, and
    :data:`OUTSIDE` outside every call (or, GPU side, outside every annotated stage).
    """
    times = np.asarray(times, dtype=np.float64)
    stages = windows.gpu_stages if gpu_side else windows.stages
    if gpu_side:
        labels = object_column(times.size, OUTSIDE)
    else:
        labels = choose(locate(times, *windows.pipeline) >= 0, "other", OUTSIDE)
    for stage, intervals in stages.items():
        labels[locate(times, *intervals) >= 0] = stage
    step_table = windows.gpu_steps if gpu_side else windows.steps
    step_rows = np.full(times.size, -1, dtype=np.int64)
    if not step_table.empty and not (gpu_side and len(step_table) != len(windows.steps)):
        order = np.argsort(step_table["ts"], kind="stable")
        starts = step_table["ts"][order]
        ends = step_table["end"][order]
        found = locate(times, starts, ends)  # step ranges do not overlap one another
        step_rows[found >= 0] = order[found[found >= 0]]
    return labels, step_rows


def gpu_work(tables: TraceTables, windows: PipelineWindows | None) -> Table:
    """Kernels, memcpys and memsets in one table with their category, launch and stage/step.

    Columns: name, kind (kernel|memcpy|memset), category, subcategory, tensor_core, precision, ts, end,
    dur, stream, device, bytes, pageable, launch_ts, launch_dur, stage, step_row, attributed_by.
    """
    kernels, memops = tables.kernels, tables.memops
    classes = kernel_classes(kernels["name"])
    kernel_count, memop_count = len(kernels), len(memops)

    def joined(kernel_values: np.ndarray, memop_values: np.ndarray) -> np.ndarray:
        return np.concatenate([kernel_values, memop_values])

    def text(frame: Table, column: str) -> np.ndarray:
        return frame[column].astype(object, copy=False)

    columns = {
        "name": joined(text(kernels, "name"), text(memops, "name")),
        "kind": joined(object_column(kernel_count, "kernel"), text(memops, "kind")),
        "category": joined(text(classes, "category"), text(memops, "kind")),
        "subcategory": joined(text(classes, "subcategory"), text(memops, "direction")),
        "tensor_core": joined(classes["tensor_core"].astype(bool, copy=False), np.zeros(memop_count, dtype=bool)),
        "precision": joined(text(classes, "precision"), object_column(memop_count, "n/a")),
        "bytes": joined(np.full(kernel_count, np.nan), memops["bytes"].astype(np.float64, copy=False)),
        "pageable": joined(np.zeros(kernel_count, dtype=bool), memops["pageable"].astype(bool, copy=False)),
    }
    for column in ("ts", "end", "dur", "stream", "device", "correlation"):
        columns[column] = joined(
            kernels[column].astype(np.float64, copy=False), memops[column].astype(np.float64, copy=False)
        )
    # each column built once and taken as it is (no per-part frames, no concat copy: the table is the largest
    # the analysis holds, one row per kernel)
    work = Table(columns)
    del columns, classes

    launches = tables.launches
    launch_ts = np.full(len(work), np.nan)
    launch_dur = np.full(len(work), np.nan)
    if len(launches) and len(work):
        # the first launch of each correlation id (ids sorted, with its row); columns only, not a copy of the table
        correlated = np.flatnonzero(launches["correlation"] >= 0)
        ids, first = np.unique(launches["correlation"][correlated].astype(np.int64, copy=False), return_index=True)
        rows = correlated[first]
        del correlated, first
        wanted = work["correlation"].astype(np.int64, copy=False)
        position = np.minimum(np.searchsorted(ids, wanted), max(len(ids) - 1, 0))
        found = (ids[position] == wanted) & (wanted >= 0) if len(ids) else np.zeros(len(work), dtype=bool)
        launch_rows = rows[position[found]]
        launch_ts[found] = launches["ts"][launch_rows]
        launch_dur[found] = launches["dur"][launch_rows]
    work["launch_ts"] = launch_ts
    work["launch_dur"] = launch_dur

    stage = object_column(len(work), OUTSIDE)
    step_row = np.full(len(work), -1, dtype=np.int64)
    attributed_by = object_column(len(work), "none")
    if windows is not None and len(work):
        has_launch = np.isfinite(launch_ts)
        labels, rows = label_times(np.where(has_launch, launch_ts, np.nan), windows)
        stage[has_launch] = labels[has_launch]
        step_row[has_launch] = rows[has_launch]
        attributed_by[has_launch & (stage != OUTSIDE)] = "launch"
        if windows.gpu_stages:
            no_launch = ~has_launch
            gpu_labels, gpu_rows = label_times(work["ts"], windows, gpu_side=True)
            take = no_launch & (gpu_labels != OUTSIDE)
            stage[take] = gpu_labels[take]
            step_row[take] = gpu_rows[take]
            attributed_by[take] = "gpu_annotation"
    work["stage"] = stage
    work["step_row"] = step_row
    work["attributed_by"] = attributed_by
    return work
