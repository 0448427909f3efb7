"""Build small SQLite files with the Nsight Systems export schema (the tables and columns profkit reads).

Times are nanoseconds, as in real exports. ``globalTid`` packs the pid in bits 24-47 and the tid in
bits 0-23; a kernel's ``globalPid`` is its launching thread's ``globalTid`` with the tid bits cleared.

Hostile fixtures: :meth:`NsysBuilder.set` puts any value (text, a blob, a real, ``None``, a repeated
correlation id) into one cell of a row already added, and ``write(path, constraints=False)`` creates the
tables without their NOT NULL constraints so that NULLs can be written where nsys never writes them.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

SCHEMA = {
    "StringIds": "id INTEGER PRIMARY KEY, value TEXT NOT NULL",
    "NVTX_EVENTS": "start INTEGER NOT NULL, end INTEGER, eventType INTEGER NOT NULL, rangeId INTEGER, "
    "category INTEGER, color INTEGER, text TEXT, globalTid INTEGER, endGlobalTid INTEGER, textId INTEGER, "
    "domainId INTEGER, uint64Value INTEGER, int64Value INTEGER, doubleValue REAL, uint32Value INTEGER, "
    "int32Value INTEGER, floatValue REAL, jsonTextId INTEGER, jsonText TEXT",
    "CUPTI_ACTIVITY_KIND_KERNEL": "start INTEGER NOT NULL, end INTEGER NOT NULL, deviceId INTEGER NOT NULL, "
    "contextId INTEGER, streamId INTEGER NOT NULL, correlationId INTEGER, globalPid INTEGER, "
    "demangledName INTEGER NOT NULL, shortName INTEGER NOT NULL, mangledName INTEGER, launchType INTEGER, "
    "cacheConfig INTEGER, registersPerThread INTEGER NOT NULL, gridX INTEGER NOT NULL, gridY INTEGER NOT NULL, "
    "gridZ INTEGER NOT NULL, blockX INTEGER NOT NULL, blockY INTEGER NOT NULL, blockZ INTEGER NOT NULL, "
    "staticSharedMemory INTEGER NOT NULL, dynamicSharedMemory INTEGER NOT NULL, localMemoryPerThread INTEGER, "
    "localMemoryTotal INTEGER, gridId INTEGER, sharedMemoryExecuted INTEGER, graphNodeId INTEGER",
    "CUPTI_ACTIVITY_KIND_RUNTIME": "start INTEGER NOT NULL, end INTEGER NOT NULL, eventClass INTEGER NOT NULL, "
    "globalTid INTEGER, correlationId INTEGER, nameId INTEGER NOT NULL, returnValue INTEGER NOT NULL, "
    "callchainId INTEGER",
    "CUPTI_ACTIVITY_KIND_MEMCPY": "start INTEGER NOT NULL, end INTEGER NOT NULL, deviceId INTEGER NOT NULL, "
    "contextId INTEGER, streamId INTEGER NOT NULL, correlationId INTEGER, globalPid INTEGER, bytes INTEGER NOT NULL, "
    "copyKind INTEGER NOT NULL, deprecatedSrcId INTEGER, srcKind INTEGER, dstKind INTEGER, srcDeviceId INTEGER, "
    "srcContextId INTEGER, dstDeviceId INTEGER, dstContextId INTEGER, migrationCause INTEGER, graphNodeId INTEGER",
    "CUPTI_ACTIVITY_KIND_MEMSET": "start INTEGER NOT NULL, end INTEGER NOT NULL, deviceId INTEGER NOT NULL, "
    "contextId INTEGER, streamId INTEGER NOT NULL, correlationId INTEGER, globalPid INTEGER, value INTEGER NOT NULL, "
    "bytes INTEGER NOT NULL, graphNodeId INTEGER, memKind INTEGER",
    "OSRT_API": "start INTEGER NOT NULL, end INTEGER, eventClass INTEGER NOT NULL, globalTid INTEGER, "
    "nameId INTEGER NOT NULL, returnValue INTEGER NOT NULL, nestingLevel INTEGER, callchainId INTEGER",
    "TARGET_INFO_GPU": "id INTEGER, name TEXT, busLocation TEXT, totalMemory INTEGER",
}
PUSH_POP, DOMAIN_CREATE = 59, 75
KERNEL, RUNTIME, MEMCPY, MEMSET = (f"CUPTI_ACTIVITY_KIND_{k}" for k in ("KERNEL", "RUNTIME", "MEMCPY", "MEMSET"))
HTOD, DTOH, PAGEABLE, DEVICE, PINNED = 1, 2, 1, 2, 7


def columns(table: str) -> list[str]:
    """The column names of ``table`` in :data:`SCHEMA`, in order."""
    return [part.split()[0] for part in SCHEMA[table].split(", ")]


def global_tid(pid: int, tid: int) -> int:
    return (pid << 24) | tid


def global_pid(pid: int) -> int:
    return pid << 24


class NsysBuilder:
    def __init__(self, tables: tuple[str, ...] = tuple(SCHEMA)) -> None:
        self.tables = tables
        self.rows: dict[str, list[tuple]] = {name: [] for name in SCHEMA}
        self._strings: dict[str, int] = {}
        self._correlation: dict[int, int] = {}

    def string(self, value: str) -> int:
        if value not in self._strings:
            self._strings[value] = len(self._strings) + 1
            self.rows["StringIds"].append((self._strings[value], value))
        return self._strings[value]

    def nvtx(self, name: str, start_us: float, dur_us: float, pid: int = 10, tid: int = 10) -> NsysBuilder:
        start = int(start_us * 1000)
        row = [None] * 19
        row[0:3] = [start, start + int(dur_us * 1000), PUSH_POP]
        row[7], row[9], row[10] = global_tid(pid, tid), self.string(name), 1
        self.rows["NVTX_EVENTS"].append(tuple(row))
        return self

    def _next_correlation(self, pid: int) -> int:
        # every process numbers its own correlation ids from 1, as CUDA does: ids repeat across processes
        self._correlation[pid] = self._correlation.get(pid, 0) + 1
        return self._correlation[pid]

    def runtime(self, name: str, start_us: float, dur_us: float, pid: int = 10, tid: int = 10) -> int:
        correlation = self._next_correlation(pid)
        start = int(start_us * 1000)
        self.rows["CUPTI_ACTIVITY_KIND_RUNTIME"].append(
            (start, start + int(dur_us * 1000), 1, global_tid(pid, tid), correlation, self.string(name), 0, None)
        )
        return correlation

    def kernel(
        self, name: str, launch_us: float, start_us: float, dur_us: float, pid: int = 10, stream: int = 7
    ) -> NsysBuilder:
        correlation = self.runtime("cudaLaunchKernel_v7000", launch_us, 3, pid)
        start = int(start_us * 1000)
        name_id = self.string(name)
        self.rows["CUPTI_ACTIVITY_KIND_KERNEL"].append(
            (
                start,
                start + int(dur_us * 1000),
                0,
                1,
                stream,
                correlation,
                global_pid(pid),
                name_id,
                name_id,
                None,
                0,
                0,
                32,
                4,
                1,
                1,
                128,
                1,
                1,
                0,
                1024,
                0,
                0,
                0,
                0,
                None,
            )
        )
        return self

    def memcpy(
        self,
        copy_kind: int,
        launch_us: float,
        start_us: float,
        dur_us: float,
        src: int,
        dst: int,
        nbytes: int = 4096,
        pid: int = 10,
    ) -> NsysBuilder:
        correlation = self.runtime("cudaMemcpyAsync_v3020", launch_us, 3, pid)
        start = int(start_us * 1000)
        self.rows["CUPTI_ACTIVITY_KIND_MEMCPY"].append(
            (
                start,
                start + int(dur_us * 1000),
                0,
                1,
                7,
                correlation,
                global_pid(pid),
                nbytes,
                copy_kind,
                None,
                src,
                dst,
                None,
                None,
                None,
                None,
                None,
                None,
            )
        )
        return self

    def memset(self, launch_us: float, start_us: float, dur_us: float, pid: int = 10) -> NsysBuilder:
        correlation = self.runtime("cudaMemsetAsync_v3020", launch_us, 2, pid)
        start = int(start_us * 1000)
        self.rows["CUPTI_ACTIVITY_KIND_MEMSET"].append(
            (start, start + int(dur_us * 1000), 0, 1, 7, correlation, global_pid(pid), 0, 512, None, DEVICE)
        )
        return self

    def osrt(self, name: str, start_us: float, dur_us: float, pid: int = 10, tid: int = 10) -> NsysBuilder:
        start = int(start_us * 1000)
        self.rows["OSRT_API"].append(
            (start, start + int(dur_us * 1000), 27, global_tid(pid, tid), self.string(name), 0, 0, None)
        )
        return self

    def set(self, table: str, row: int, column: str, value: Any) -> NsysBuilder:
        """Overwrite one cell of row ``row`` (an index into the rows added to ``table``, -1 the last)."""
        cells = list(self.rows[table][row])
        cells[columns(table).index(column)] = value
        self.rows[table][row] = tuple(cells)
        return self

    def write(self, path: Path, constraints: bool = True) -> Path:
        """The SQLite file; ``constraints=False`` leaves out the NOT NULL constraints (types stay declared)."""
        path.unlink(missing_ok=True)
        with sqlite3.connect(path) as connection:
            for table in self.tables:
                schema = SCHEMA[table] if constraints else SCHEMA[table].replace(" NOT NULL", "")
                connection.execute(f"CREATE TABLE {table} ({schema})")
                rows = self.rows[table] or (
                    [(0, "NVIDIA H100 80GB HBM3", "0000:00:00.0", 80 << 30)] if table == "TARGET_INFO_GPU" else []
                )
                if rows:
                    marks = ",".join("?" * len(rows[0]))
                    connection.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)
        connection.close()
        return path


def nsys_diffusion(steps: int = 3, step_us: float = 1000.0) -> NsysBuilder:
    """A GPU diffusion run as nsys records it: NVTX stage/step ranges, launches, kernels, copies."""
    builder = NsysBuilder()
    builder.string("profkit")  # the domain name
    total = 200 + steps * step_us + 500
    builder.nvtx("profkit/pipeline", 0, total)
    builder.nvtx("profkit/text_encoder/text_encoder", 10, 150)
    builder.memcpy(HTOD, 15, 20, 10, PAGEABLE, DEVICE)
    builder.kernel("void at::native::vectorized_elementwise_kernel<4, float>", 40, 45, 50)
    t = 200.0
    for step in range(steps):
        builder.nvtx(f"profkit/denoise/step_{step:03d}", t, step_us)
        builder.nvtx(f"profkit/denoise/step_{step:03d}/unet", t + 1, step_us * 0.8)
        builder.kernel("sm90_xmma_gemm_f16f16_f16f32_f32_tn_n", t + 5, t + 20, step_us * 0.5)
        builder.runtime("cudaStreamSynchronize_v3020", t + step_us * 0.85, step_us * 0.05)
        builder.nvtx(f"profkit/denoise/step_{step:03d}/scheduler", t + step_us * 0.85, step_us * 0.1)
        t += step_us
    builder.nvtx("profkit/vae/decode", t, 400)
    builder.kernel("void cudnn::cnn::conv2d_grouped_direct_kernel<__half>", t + 5, t + 10, 300)
    builder.memset(t + 5, t + 320, 5)
    builder.memcpy(DTOH, t + 330, t + 335, 20, DEVICE, PAGEABLE)
    builder.osrt("pthread_cond_wait", 0, 100)
    builder.osrt("read", t + 50, 10)
    return builder


#: kernel names cycled through the denoise steps of :func:`nsys_calls`
CALL_KERNELS = ("gemm_kernel", "flash_fwd_kernel", "elementwise_kernel<add>", "group_norm_kernel")
#: GPU events of one call of :func:`nsys_calls`: 5 encoder kernels, 3 steps x 20 kernels, 8 VAE kernels, 2 copies and
#: 1 memset
PER_CALL = 5 + 3 * 20 + 8 + 3


def nsys_calls(count: int = 5, steps: int = 3, kernels: int = 20) -> NsysBuilder:
    """``count`` pipeline calls back to back, each a little slower than the one before."""
    builder = NsysBuilder()
    t = 0.0
    for call in range(count):
        step_us = kernels * 6 + 50
        total = 100 + steps * step_us + 200 + call * 7  # later calls end a little later
        builder.nvtx("profkit/pipeline", t, total)
        builder.nvtx("profkit/text_encoder/text_encoder", t + 5, 60)
        builder.memcpy(HTOD, t + 6, t + 10, 5, PAGEABLE, DEVICE)
        for i in range(5):
            builder.kernel("encoder_gemm", t + 10 + i * 5, t + 12 + i * 5, 2 + call)
        start = t + 100
        for step in range(steps):
            builder.nvtx(f"profkit/denoise/step_{step:03d}", start, step_us)
            for i in range(kernels):
                name = CALL_KERNELS[i % len(CALL_KERNELS)]
                builder.kernel(name, start + 1 + i * 6, start + 2 + i * 6, 3 + i % 3 + call * 0.5)
            builder.runtime("cudaStreamSynchronize_v3020", start + step_us - 20, 10)
            start += step_us
        builder.nvtx("profkit/vae/decode", start, 150)
        for i in range(8):
            builder.kernel("vae_conv", start + 1 + i * 10, start + 2 + i * 10, 7)
        builder.memset(start + 100, start + 120, 4)
        builder.memcpy(DTOH, start + 130, start + 135, 6, DEVICE, PAGEABLE, nbytes=8192)
        builder.osrt("read", start + 140, 5)
        t += total + 50 + call * 10
    return builder
