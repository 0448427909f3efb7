"""Build a large Nsight Systems SQLite export (for scale tests of `profkit analyze` on nsys input).

One diffusion pipeline call is built with ``tests/nsysbuilder.py`` (its schema: the tables and columns
profkit reads): NVTX pipeline/stage/step ranges, a text encoder, ``--steps`` denoising steps of
``--kernels`` kernels each (with their CUDA runtime launches), a VAE decode, copies, memsets and OS
runtime calls. SQLite itself then repeats that call back to back (``INSERT ... SELECT`` shifted in time,
correlation ids offset per copy so every launch still joins its own kernel) until the file reaches
``--size-gb``: millions of kernels and launches without a Python object per row.

    python benchmarks/make_big_nsys.py --size-gb 1 --out /tmp/big.sqlite
    /usr/bin/time -v profkit analyze /tmp/big.sqlite --json --no-html --force
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.nsysbuilder import (  # noqa: E402
    DEVICE,
    DTOH,
    HTOD,
    KERNEL,
    MEMCPY,
    MEMSET,
    PAGEABLE,
    RUNTIME,
    NsysBuilder,
    columns,
)

#: the kernel names of one UNet step (cycled), as a Hopper diffusion run shows them
UNET_KERNELS = (
    "sm90_xmma_gemm_f16f16_f16f32_f32_tn_n_tilesize128x128x64_warpgroupsize1x1x1_execute_segment_k_off_kernel",
    "void at::native::vectorized_elementwise_kernel<4, at::native::CUDAFunctor_add<c10::Half>>",
    "void at::native::(anonymous namespace)::vectorized_layer_norm_kernel<c10::Half, float>",
    "pytorch_flash::flash_fwd_kernel<Flash_fwd_kernel_traits<64, 128, 128, 4, false, false, cutlass::half_t>>",
    "void at::native::unrolled_elementwise_kernel<at::native::silu_kernel<c10::Half>>",
    "void cudnn::cnn::conv2d_grouped_direct_kernel<__half, __half, float, true>",
    "void at::native::reduce_kernel<512, 1, at::native::ReduceOp<float, at::native::MeanOps<float, float>>>",
    "void at::native::elementwise_kernel<128, 2, at::native::gpu_kernel_impl<at::native::MulFunctor<c10::Half>>>",
    "sm90_xmma_gemm_f16f16_f16f32_f32_nn_n_tilesize64x128x64_warpgroupsize1x1x1_execute_kernel",
    "void at::native::group_norm_kernel<c10::Half, float>",
)
#: tables whose rows are repeated per copy, with the columns shifted in time or offset as ids
TIMED = ("NVTX_EVENTS", KERNEL, RUNTIME, MEMCPY, MEMSET, "OSRT_API")


def one_call(steps: int, kernels: int) -> tuple[NsysBuilder, float]:
    """One pipeline call and its length in microseconds (a gap included)."""
    builder = NsysBuilder()
    builder.string("profkit")
    kernel_us, gap_us = 4.0, 1.0
    step_us = kernels * (kernel_us + gap_us) + 200
    total = 300 + steps * step_us + 900
    builder.nvtx("profkit/pipeline", 0, total)
    builder.nvtx("profkit/text_encoder/text_encoder", 10, 250)
    builder.memcpy(HTOD, 15, 20, 10, PAGEABLE, DEVICE)
    for i in range(40):
        builder.kernel(UNET_KERNELS[i % 3], 30 + i * 5, 40 + i * 5, 4)
    t = 300.0
    for step in range(steps):
        builder.nvtx(f"profkit/denoise/step_{step:03d}", t, step_us)
        builder.nvtx(f"profkit/denoise/step_{step:03d}/unet", t + 1, step_us - 150)
        for i in range(kernels):
            start = t + 10 + i * (kernel_us + gap_us)
            builder.kernel(UNET_KERNELS[i % len(UNET_KERNELS)], start - 8, start, kernel_us)
        builder.runtime("cudaStreamSynchronize_v3020", t + step_us - 140, 30)
        builder.nvtx(f"profkit/denoise/step_{step:03d}/scheduler", t + step_us - 100, 80)
        builder.osrt("pthread_cond_wait", t + step_us - 140, 30)
        t += step_us
    builder.nvtx("profkit/vae/decode", t, 800)
    for i in range(60):
        builder.kernel(UNET_KERNELS[5 + i % 5], t + 5 + i * 10, t + 10 + i * 10, 8)
    builder.memset(t + 5, t + 700, 5)
    builder.memcpy(DTOH, t + 720, t + 730, 40, DEVICE, PAGEABLE)
    builder.osrt("read", t + 750, 10)
    return builder, total + 100.0


def repeat(path: Path, call_us: float, correlations: int, size_gb: float, batch: int = 16) -> int:
    """Append shifted copies of every call already in ``path`` until it reaches ``size_gb``; the copy count."""
    shift_ns = int(call_us * 1000)
    with sqlite3.connect(path) as connection:
        for table in TIMED:
            connection.execute(f"CREATE TEMP TABLE t_{table} AS SELECT * FROM {table}")
        copies = 1
        while True:
            pages, page_size = (connection.execute(f"PRAGMA {p}").fetchone()[0] for p in ("page_count", "page_size"))
            if pages * page_size >= size_gb * 1e9:
                return copies
            per_copy = pages * page_size / copies
            todo = max(1, min(batch, int((size_gb * 1e9 - pages * page_size) / per_copy) + 1))
            for k in range(copies, copies + todo):
                for table in TIMED:
                    names = columns(table)
                    select = []
                    for name in names:
                        if name in ("start", "end"):
                            select.append(f'"{name}" + {k * shift_ns}')
                        elif name == "correlationId":
                            select.append(f"correlationId + {k * correlations}")
                        else:
                            select.append(f'"{name}"')
                    connection.execute(f"INSERT INTO {table} SELECT {', '.join(select)} FROM t_{table}")
            connection.commit()
            copies += todo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-gb", type=float, default=1.0, help="target file size in GB")
    parser.add_argument("--out", type=Path, required=True, help="the .sqlite file to write")
    parser.add_argument("--steps", type=int, default=20, help="denoising steps per pipeline call")
    parser.add_argument("--kernels", type=int, default=500, help="kernels per denoising step")
    options = parser.parse_args()
    builder, call_us = one_call(options.steps, options.kernels)
    builder.write(options.out)
    correlations = max(row[4] for row in builder.rows[RUNTIME])
    copies = repeat(options.out, call_us, correlations, options.size_gb)
    with sqlite3.connect(options.out) as connection:
        kernels = connection.execute(f"SELECT count(*) FROM {KERNEL}").fetchone()[0]
    connection.close()
    size = options.out.stat().st_size / 1e9
    print(f"{options.out}: {size:.2f} GB, {copies} pipeline calls, {kernels} kernels")


if __name__ == "__main__":
    main()
