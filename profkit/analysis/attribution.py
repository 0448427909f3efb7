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

from dataclasses import dataclass

import numpy as np
import pandas as pd

from profkit import naming
from profkit.analysis.intervals import locate, merge
from profkit.analysis.taxonomy import kernel_classes
from profkit.parsers.columns import choose, object_column
from profkit.parsers.tables import TraceTables

#: range kinds whose union is a stage's wall time (the step ranges cover the denoiser and scheduler).
STAGE_KINDS: dict[str, tuple[str, ...]] = {
    "text_encoder": ("text_encoder",),
    "denoise": ("step",),
    "vae": ("vae",),
    "safety_checker": ("safety_checker",),
}
OUTSIDE = ""  # stage label of times outside every pipeline call

Intervals = tuple[np.ndarray, np.ndarray]


@dataclass
class PipelineWindows:
    ranges: pd.DataFrame  # profkit ranges with stage, kind, step columns, sorted by ts
    pipeline: Intervals  # merged pipeline-call intervals
    pipeline_source: str  # "pipeline range" | "span of profkit ranges"
    pipeline_calls: int
    stages: dict[str, Intervals]  # merged CPU intervals of each named stage
    steps: pd.DataFrame  # one row per step range: ts, end, dur, step, call
    gpu_stages: dict[str, Intervals]  # the same from gpu_user_annotation ranges (may be empty)
    gpu_steps: pd.DataFrame


#: step numbers from here on are not real denoise steps (and would not fit the int64 step column)
MAX_STEP = 2**31


def parse_range(name: str) -> naming.RangeInfo | None:
    """What a range name says, or ``None`` when it is not a profkit range profkit can place."""
    try:
        info = naming.parse_range_name(name)
    except ValueError:  # a step number too long for int()
        return None
    return info if info is None or info.step < MAX_STEP else None


def unparsed_ranges(ranges: pd.DataFrame) -> dict[str, int]:
    """CPU-side ranges named ``profkit/...`` whose names do not parse, by name (most frequent first)."""
    named = ranges.loc[~ranges["on_gpu"].to_numpy(dtype=bool), "name"]
    named = named[named.str.startswith(naming.PREFIX, na=False)]
    counts = named.value_counts()
    return {str(name): int(count) for name, count in counts.items() if parse_range(str(name)) is None}


def _classified(ranges: pd.DataFrame) -> pd.DataFrame:
    named = ranges[ranges["name"].str.startswith(naming.PREFIX, na=False)]
    parsed = {name: parse_range(name) for name in named["name"].unique()}
    infos = [parsed[name] for name in named["name"]]
    keep = np.array([info is not None for info in infos], dtype=bool)
    named = named[keep].copy()
    infos = [info for info in infos if info is not None]
    named["stage"] = [info.stage for info in infos]
    named["kind"] = [info.kind for info in infos]
    named["step"] = np.array([-1 if info.step is None else info.step for info in infos], dtype=np.int64)
    return named.sort_values("ts", kind="stable").reset_index(drop=True)


def _stage_intervals(ranges: pd.DataFrame) -> dict[str, Intervals]:
    result = {}
    for stage, kinds in STAGE_KINDS.items():
        rows = ranges[(ranges["stage"] == stage) & ranges["kind"].isin(kinds)]
        if not rows.empty:
            result[stage] = merge(rows["ts"].to_numpy(), rows["end"].to_numpy())
    return result


def _steps(ranges: pd.DataFrame, pipeline: Intervals) -> pd.DataFrame:
    steps = ranges[ranges["kind"] == "step"][["ts", "end", "dur", "step"]].reset_index(drop=True)
    steps["call"] = np.maximum(locate(steps["ts"].to_numpy(), *pipeline), 0)
    return steps


def pipeline_windows(tables: TraceTables) -> PipelineWindows | None:
    """The profkit stage/step intervals of a trace, or ``None`` when it has no profkit ranges."""
    classified = _classified(tables.ranges)
    cpu = classified[~classified["on_gpu"]]
    if cpu.empty:
        return None
    gpu = classified[classified["on_gpu"]]
    calls = cpu[cpu["kind"] == "pipeline"]
    if not calls.empty:
        pipeline = merge(calls["ts"].to_numpy(), calls["end"].to_numpy())
        source = "pipeline range"
    else:
        pipeline = (np.array([cpu["ts"].min()]), np.array([cpu["end"].max()]))
        source = "span of profkit ranges"
    return PipelineWindows(
        ranges=cpu.reset_index(drop=True),
        pipeline=pipeline,
        pipeline_source=source,
        pipeline_calls=len(pipeline[0]) if not calls.empty else 0,
        stages=_stage_intervals(cpu),
        steps=_steps(cpu, pipeline),
        gpu_stages=_stage_intervals(gpu),
        gpu_steps=gpu[gpu["kind"] == "step"][["ts", "end"]].reset_index(drop=True),
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
        order = np.argsort(step_table["ts"].to_numpy(), kind="stable")
        starts = step_table["ts"].to_numpy()[order]
        ends = step_table["end"].to_numpy()[order]
        found = locate(times, starts, ends)  # step ranges do not overlap one another
        step_rows[found >= 0] = order[found[found >= 0]]
    return labels, step_rows


def gpu_work(tables: TraceTables, windows: PipelineWindows | None) -> pd.DataFrame:
    """Kernels, memcpys and memsets in one table with their category, launch and stage/step.

    Columns: name, kind (kernel|memcpy|memset), category, subcategory, tensor_core, precision, ts, end,
    dur, stream, device, bytes, pageable, launch_ts, launch_dur, stage, step_row, attributed_by.
    """
    kernels, memops = tables.kernels, tables.memops
    classes = kernel_classes(kernels["name"])
    kernel_count, memop_count = len(kernels), len(memops)

    def joined(kernel_values: np.ndarray, memop_values: np.ndarray) -> np.ndarray:
        return np.concatenate([kernel_values, memop_values])

    def text(frame: pd.DataFrame, column: str) -> np.ndarray:
        return frame[column].to_numpy(dtype=object)

    columns = {
        "name": joined(text(kernels, "name"), text(memops, "name")),
        "kind": joined(object_column(kernel_count, "kernel"), text(memops, "kind")),
        "category": joined(text(classes, "category"), text(memops, "kind")),
        "subcategory": joined(text(classes, "subcategory"), text(memops, "direction")),
        "tensor_core": joined(classes["tensor_core"].to_numpy(dtype=bool), np.zeros(memop_count, dtype=bool)),
        "precision": joined(text(classes, "precision"), object_column(memop_count, "n/a")),
        "bytes": joined(np.full(kernel_count, np.nan), memops["bytes"].to_numpy(dtype=np.float64)),
        "pageable": joined(np.zeros(kernel_count, dtype=bool), memops["pageable"].to_numpy(dtype=bool)),
    }
    for column in ("ts", "end", "dur", "stream", "device", "correlation"):
        columns[column] = joined(kernels[column].to_numpy(dtype=np.float64), memops[column].to_numpy(dtype=np.float64))
    # each column built once and taken as it is (no per-part frames, no concat copy: the table is the largest
    # the analysis holds, one row per kernel)
    work = pd.DataFrame(columns, copy=False)
    del columns, classes

    launches = tables.launches
    launch_ts = np.full(len(work), np.nan)
    launch_dur = np.full(len(work), np.nan)
    if len(launches) and len(work):
        correlated = launches[launches["correlation"] >= 0].drop_duplicates("correlation")
        index = pd.Index(correlated["correlation"].to_numpy(dtype=np.int64))
        position = index.get_indexer(work["correlation"].to_numpy(dtype=np.int64))
        found = (position >= 0) & (work["correlation"].to_numpy() >= 0)
        launch_ts[found] = correlated["ts"].to_numpy()[position[found]]
        launch_dur[found] = correlated["dur"].to_numpy()[position[found]]
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
            gpu_labels, gpu_rows = label_times(work["ts"].to_numpy(), windows, gpu_side=True)
            take = no_launch & (gpu_labels != OUTSIDE)
            stage[take] = gpu_labels[take]
            step_row[take] = gpu_rows[take]
            attributed_by[take] = "gpu_annotation"
    work["stage"] = stage
    work["step_row"] = step_row
    work["attributed_by"] = attributed_by
    return work
