"""Nsight Systems SQLite export (``nsys export --type sqlite``) -> the same :class:`TraceTables` as Kineto.

Tables read (columns as nsys's own ``reports/*.py`` scripts use them; times in ns, here turned to us):

* ``NVTX_EVENTS`` push/pop (59) and start/end (60) ranges; text in ``text`` or ``textId`` -> ``StringIds``
* ``CUPTI_ACTIVITY_KIND_KERNEL`` (name ``demangledName`` -> ``StringIds``), ``..._MEMCPY``, ``..._MEMSET``,
  ``..._SYNCHRONIZATION``: GPU work; ``CUPTI_ACTIVITY_KIND_RUNTIME``: CUDA API calls (launches)
* ``OSRT_API``: OS runtime calls, which stand in for CPU operators (nsys records no PyTorch operators)

Kernels join their launch on ``correlationId`` *within a process*: a kernel's ``globalPid`` equals its
launch's ``globalTid & 0xFFFFFFFFFF000000``. Here both sides get one correlation number that folds the
process in, so the analyses join on ``correlation`` alone, exactly as for Kineto.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from profkit.errors import ProfkitError
from profkit.parsers.tables import TraceInfo, TraceTables, build_table, empty_table

NVTX_RANGE_TYPES = (59, 60, 70)  # push/pop, start/end, NVTXT push/pop
_COPY_KINDS = {
    1: "HtoD",
    2: "DtoH",
    3: "HtoA",
    4: "AtoH",
    5: "AtoA",
    6: "AtoD",
    7: "DtoA",
    8: "DtoD",
    9: "HtoH",
    10: "PtoP",
}
_DIRECTIONS = {"HtoD": "H2D", "DtoH": "D2H", "DtoD": "D2D", "PtoP": "P2P", "HtoH": "H2H"}
_MEM_KINDS = {
    0: "Unknown",
    1: "Pageable",
    2: "Device",
    3: "Array",
    4: "Managed",
    5: "Device Static",
    6: "Managed Static",
    7: "Pinned",
}
PAGEABLE = 1

#: what each table holds, for the "not captured" notes
TABLE_ROLES = {
    "NVTX_EVENTS": "NVTX ranges",
    "CUPTI_ACTIVITY_KIND_KERNEL": "GPU kernels",
    "CUPTI_ACTIVITY_KIND_RUNTIME": "CUDA runtime API calls",
    "CUPTI_ACTIVITY_KIND_MEMCPY": "GPU memcpys",
    "CUPTI_ACTIVITY_KIND_MEMSET": "GPU memsets",
    "OSRT_API": "OS runtime calls",
}


def _connect(path: Path) -> sqlite3.Connection:
    if not path.exists():
        raise ProfkitError(f"{path}: no such file")
    if path.is_dir():
        raise ProfkitError(f"{path}: is a directory, expected an Nsight Systems SQLite export")
    with path.open("rb") as handle:
        if handle.read(16) != b"SQLite format 3\x00":
            raise ProfkitError(f"{path}: not an SQLite database (export one with: nsys export --type sqlite REPORT)")
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        connection.execute("SELECT name FROM sqlite_master LIMIT 1").fetchall()
    except sqlite3.DatabaseError as error:
        raise ProfkitError(f"{path}: the SQLite file is unreadable or truncated ({error})") from error
    return connection


def _query(connection: sqlite3.Connection, path: Path, table: str, sql: str) -> pd.DataFrame:
    try:
        return pd.read_sql_query(sql, connection)
    except (sqlite3.DatabaseError, pd.errors.DatabaseError) as error:
        raise ProfkitError(f"{path}: cannot read {table} ({error}); is this an nsys SQLite export?") from error


def _pid_tid(global_tid: pd.Series) -> tuple[list[str], list[str]]:
    values = global_tid.fillna(0).astype("int64").to_numpy()
    return [str(v) for v in (values >> 24) & 0xFFFFFF], [str(v) for v in values & 0xFFFFFF]


class _Correlations:
    """One correlation number per (process, correlationId): ``process index << 32 | correlationId``."""

    def __init__(self) -> None:
        self._processes: dict[int, int] = {}

    def __call__(self, process: pd.Series, correlation: pd.Series) -> np.ndarray:
        process_ids = process.fillna(-1).astype("int64").to_numpy()
        index = np.array(
            [self._processes.setdefault(int(p), len(self._processes)) for p in process_ids], dtype=np.int64
        )
        ids = correlation.fillna(-1).astype("int64").to_numpy()
        return np.where(ids >= 0, (index << 32) | (ids & 0xFFFFFFFF), -1)


def _memcpy_name(copy_kind: int, src: int, dst: int) -> str:
    kind = _COPY_KINDS.get(copy_kind, "other")
    return f"Memcpy {kind} ({_MEM_KINDS.get(src, 'Unknown')} -> {_MEM_KINDS.get(dst, 'Unknown')})"


def load_nsys_sqlite(path: Path) -> TraceTables:
    connection = _connect(path)
    try:
        return _read(connection, path)
    finally:
        connection.close()


def _read(connection: sqlite3.Connection, path: Path) -> TraceTables:
    tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if "StringIds" not in tables:
        raise ProfkitError(f"{path}: SQLite, but not an Nsight Systems export (no StringIds table)")
    present = [table for table in TABLE_ROLES if table in tables]
    if not present:
        raise ProfkitError(f"{path}: the report holds no events (no NVTX, CUDA or OS runtime tables)")
    correlate = _Correlations()
    raw: dict[str, pd.DataFrame] = {}
    if "NVTX_EVENTS" in tables:
        raw["ranges"] = _query(
            connection,
            path,
            "NVTX_EVENTS",
            "SELECT e.start, e.end, coalesce(e.text, s.value) AS name, e.globalTid "
            "FROM NVTX_EVENTS e LEFT JOIN StringIds s ON e.textId = s.id "
            f"WHERE e.eventType IN {NVTX_RANGE_TYPES} AND e.end IS NOT NULL",
        )
    if "CUPTI_ACTIVITY_KIND_KERNEL" in tables:
        raw["kernels"] = _query(
            connection,
            path,
            "CUPTI_ACTIVITY_KIND_KERNEL",
            "SELECT k.start, k.end, s.value AS name, k.deviceId, k.streamId, k.correlationId, k.globalPid, "
            "k.gridX, k.gridY, k.gridZ, k.blockX, k.blockY, k.blockZ, k.registersPerThread, "
            "k.staticSharedMemory, k.dynamicSharedMemory "
            "FROM CUPTI_ACTIVITY_KIND_KERNEL k LEFT JOIN StringIds s ON k.demangledName = s.id",
        )
    if "CUPTI_ACTIVITY_KIND_RUNTIME" in tables:
        raw["launches"] = _query(
            connection,
            path,
            "CUPTI_ACTIVITY_KIND_RUNTIME",
            "SELECT r.start, r.end, s.value AS name, r.globalTid, r.correlationId "
            "FROM CUPTI_ACTIVITY_KIND_RUNTIME r LEFT JOIN StringIds s ON r.nameId = s.id",
        )
    if "CUPTI_ACTIVITY_KIND_MEMCPY" in tables:
        raw["memcpy"] = _query(
            connection,
            path,
            "CUPTI_ACTIVITY_KIND_MEMCPY",
            "SELECT start, end, deviceId, streamId, correlationId, globalPid, bytes, copyKind, srcKind, dstKind "
            "FROM CUPTI_ACTIVITY_KIND_MEMCPY",
        )
    if "CUPTI_ACTIVITY_KIND_MEMSET" in tables:
        raw["memset"] = _query(
            connection,
            path,
            "CUPTI_ACTIVITY_KIND_MEMSET",
            "SELECT start, end, deviceId, streamId, correlationId, globalPid, bytes, memKind "
            "FROM CUPTI_ACTIVITY_KIND_MEMSET",
        )
    if "CUPTI_ACTIVITY_KIND_SYNCHRONIZATION" in tables:
        raw["syncs"] = _query(
            connection,
            path,
            "CUPTI_ACTIVITY_KIND_SYNCHRONIZATION",
            "SELECT start, end, deviceId, streamId, syncType FROM CUPTI_ACTIVITY_KIND_SYNCHRONIZATION",
        )
    if "OSRT_API" in tables:
        raw["osrt"] = _query(
            connection,
            path,
            "OSRT_API",
            "SELECT o.start, o.end, s.value AS name, o.globalTid "
            "FROM OSRT_API o LEFT JOIN StringIds s ON o.nameId = s.id",
        )
    if not any(len(frame) for frame in raw.values()):
        raise ProfkitError(f"{path}: the report holds no events (its event tables are empty)")

    origin_ns = min(float(frame["start"].min()) for frame in raw.values() if len(frame))
    columns: dict[str, dict[str, Any]] = {}

    def timing(frame: pd.DataFrame) -> dict[str, Any]:
        start = (frame["start"].to_numpy(dtype=np.float64) - origin_ns) / 1000.0
        end = (frame["end"].to_numpy(dtype=np.float64) - origin_ns) / 1000.0
        return {"ts": start, "dur": np.maximum(end - start, 0.0)}

    if "ranges" in raw:
        frame = raw["ranges"]
        pid, tid = _pid_tid(frame["globalTid"])
        columns["ranges"] = {
            **timing(frame),
            "name": frame["name"].fillna("").astype(str).tolist(),
            "pid": pid,
            "tid": tid,
            "on_gpu": [False] * len(frame),
        }
    if "launches" in raw:
        frame = raw["launches"]
        pid, tid = _pid_tid(frame["globalTid"])
        # globalTid & 0xFFFFFFFFFF000000: the thread bits cleared (shifts keep it within int64)
        process = pd.Series((frame["globalTid"].fillna(0).astype("int64").to_numpy() >> 24) << 24)
        columns["launches"] = {
            **timing(frame),
            "name": frame["name"].fillna("").astype(str).str.replace(r"_v\d+$", "", regex=True).tolist(),
            "pid": pid,
            "tid": tid,
            "correlation": correlate(process, frame["correlationId"]),
            "external_id": [-1] * len(frame),
            "api": ["runtime"] * len(frame),
        }
    if "kernels" in raw:
        frame = raw["kernels"]
        grid = frame[["gridX", "gridY", "gridZ"]].fillna(0).astype("int64").to_numpy().tolist()
        block = frame[["blockX", "blockY", "blockZ"]].fillna(0).astype("int64").to_numpy().tolist()
        columns["kernels"] = {
            **timing(frame),
            "name": frame["name"].fillna("").astype(str).tolist(),
            "device": frame["deviceId"].fillna(-1).astype("int64").to_numpy(),
            "stream": frame["streamId"].fillna(-1).astype("int64").to_numpy(),
            "correlation": correlate(frame["globalPid"], frame["correlationId"]),
            "external_id": [-1] * len(frame),
            "grid": [str(g) for g in grid],
            "block": [str(b) for b in block],
            "registers": frame["registersPerThread"].astype("float64").to_numpy(),
            "shared_memory": (frame["staticSharedMemory"].fillna(0) + frame["dynamicSharedMemory"].fillna(0))
            .astype("float64")
            .to_numpy(),
        }
    memops = []
    if "memcpy" in raw and len(raw["memcpy"]):
        frame = raw["memcpy"]
        kinds = [_COPY_KINDS.get(int(k), "other") for k in frame["copyKind"].fillna(0)]
        memops.append(
            {
                **timing(frame),
                "name": [
                    _memcpy_name(int(c), int(s), int(d))
                    for c, s, d in zip(
                        frame["copyKind"].fillna(0), frame["srcKind"].fillna(0), frame["dstKind"].fillna(0), strict=True
                    )
                ],
                "kind": ["memcpy"] * len(frame),
                "direction": [_DIRECTIONS.get(k, "other") for k in kinds],
                "pageable": ((frame["srcKind"] == PAGEABLE) | (frame["dstKind"] == PAGEABLE)).to_numpy(dtype=bool),
                "device": frame["deviceId"].fillna(-1).astype("int64").to_numpy(),
                "stream": frame["streamId"].fillna(-1).astype("int64").to_numpy(),
                "correlation": correlate(frame["globalPid"], frame["correlationId"]),
                "bytes": frame["bytes"].astype("float64").to_numpy(),
            }
        )
    if "memset" in raw and len(raw["memset"]):
        frame = raw["memset"]
        memops.append(
            {
                **timing(frame),
                "name": [f"Memset ({_MEM_KINDS.get(int(k), 'Unknown')})" for k in frame["memKind"].fillna(0)],
                "kind": ["memset"] * len(frame),
                "direction": ["memset"] * len(frame),
                "pageable": (frame["memKind"] == PAGEABLE).to_numpy(dtype=bool),
                "device": frame["deviceId"].fillna(-1).astype("int64").to_numpy(),
                "stream": frame["streamId"].fillna(-1).astype("int64").to_numpy(),
                "correlation": correlate(frame["globalPid"], frame["correlationId"]),
                "bytes": frame["bytes"].astype("float64").to_numpy(),
            }
        )
    if memops:
        columns["memops"] = {key: np.concatenate([np.asarray(m[key]) for m in memops]) for key in memops[0]}
    if "syncs" in raw:
        frame = raw["syncs"]
        columns["syncs"] = {
            **timing(frame),
            "name": [f"CUDA sync (type {int(t)})" for t in frame["syncType"].fillna(0)],
            "device": frame["deviceId"].fillna(-1).astype("int64").to_numpy(),
            "stream": frame["streamId"].fillna(-1).astype("int64").to_numpy(),
        }
    if "osrt" in raw:
        frame = raw["osrt"]
        pid, tid = _pid_tid(frame["globalTid"])
        columns["cpu_ops"] = {
            **timing(frame),
            "name": frame["name"].fillna("").astype(str).tolist(),
            "cat": ["osrt"] * len(frame),
            "pid": pid,
            "tid": tid,
            "external_id": [-1] * len(frame),
        }

    built = {
        name: build_table(name, columns[name], 0.0) if name in columns else empty_table(name)
        for name in ("kernels", "launches", "memops", "cpu_ops", "ranges", "syncs")
    }
    info = TraceInfo(
        path=path,
        source_format="nsys",
        devices=_devices(connection, tables),
        event_count=sum(len(frame) for frame in raw.values()),
        time_origin_us=origin_ns / 1000.0,
        decoder="sqlite",
        not_captured=[f"{role} ({table})" for table, role in TABLE_ROLES.items() if table not in tables],
    )
    info.warnings.append(
        "Nsight Systems records no PyTorch operators: the CPU view lists OS runtime calls (OSRT_API) instead"
        if "OSRT_API" in tables
        else "Nsight Systems records no PyTorch operators, and OS runtime calls were not traced"
    )
    return TraceTables(info=info, **built)


def _devices(connection: sqlite3.Connection, tables: set[str]) -> list[dict[str, Any]]:
    for table in ("TARGET_INFO_GPU", "TARGET_INFO_CUDA_DEVICE"):
        if table in tables:
            try:
                rows = connection.execute(f"SELECT * FROM {table}").fetchall()
                names = [d[0] for d in connection.execute(f"SELECT * FROM {table} LIMIT 0").description]
            except sqlite3.DatabaseError:
                continue
            return [dict(zip(names, row, strict=True)) for row in rows]
    return []
