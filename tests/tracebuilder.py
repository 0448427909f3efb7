"""Build small Kineto traces in tests: CPU ranges, launches and GPU kernels with correlation ids."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import orjson

PID, TID = 100, 100


class TraceBuilder:
    def __init__(self, device_name: str | None = "NVIDIA H100 80GB HBM3") -> None:
        self.events: list[dict[str, Any]] = []
        self.device_name = device_name
        self._correlation = 1000

    def range(self, name: str, ts: float, dur: float, gpu: bool = False) -> TraceBuilder:
        self.events.append(
            {
                "ph": "X",
                "cat": "gpu_user_annotation" if gpu else "user_annotation",
                "name": name,
                "pid": 0 if gpu else PID,
                "tid": 7 if gpu else TID,
                "ts": ts,
                "dur": dur,
                "args": {},
            }
        )
        return self

    def cpu_op(self, name: str, ts: float, dur: float) -> TraceBuilder:
        self.events.append(
            {
                "ph": "X",
                "cat": "cpu_op",
                "name": name,
                "pid": PID,
                "tid": TID,
                "ts": ts,
                "dur": dur,
                "args": {"External id": 1},
            }
        )
        return self

    def api(self, name: str, ts: float, dur: float) -> TraceBuilder:
        """A runtime API call with no GPU work (a synchronization, an event query...)."""
        self._correlation += 1
        self.events.append(
            {
                "ph": "X",
                "cat": "cuda_runtime",
                "name": name,
                "pid": PID,
                "tid": TID,
                "ts": ts,
                "dur": dur,
                "args": {"correlation": self._correlation},
            }
        )
        return self

    def kernel(
        self,
        name: str,
        launch_ts: float | None,
        start: float,
        dur: float,
        stream: int = 7,
        api: str = "cudaLaunchKernel",
    ) -> TraceBuilder:
        """A kernel and (unless ``launch_ts`` is None) the launch call that issued it."""
        self._correlation += 1
        corr = self._correlation
        if launch_ts is not None:
            self.events.append(
                {
                    "ph": "X",
                    "cat": "cuda_driver" if api.startswith("cu") and not api.startswith("cuda") else "cuda_runtime",
                    "name": api,
                    "pid": PID,
                    "tid": TID,
                    "ts": launch_ts,
                    "dur": 4.0,
                    "args": {"correlation": corr, "External id": 1},
                }
            )
        self.events.append(
            {
                "ph": "X",
                "cat": "kernel",
                "name": name,
                "pid": 0,
                "tid": stream,
                "ts": start,
                "dur": dur,
                "args": {"device": 0, "stream": stream, "correlation": corr, "grid": [1, 1, 1], "block": [128, 1, 1]},
            }
        )
        return self

    def memcpy(
        self, name: str, launch_ts: float, start: float, dur: float, nbytes: int = 1024, launch_dur: float = 3.0
    ) -> TraceBuilder:
        self._correlation += 1
        corr = self._correlation
        self.events.append(
            {
                "ph": "X",
                "cat": "cuda_runtime",
                "name": "cudaMemcpyAsync",
                "pid": PID,
                "tid": TID,
                "ts": launch_ts,
                "dur": launch_dur,
                "args": {"correlation": corr},
            }
        )
        self.events.append(
            {
                "ph": "X",
                "cat": "gpu_memcpy",
                "name": name,
                "pid": 0,
                "tid": 7,
                "ts": start,
                "dur": dur,
                "args": {"device": 0, "stream": 7, "correlation": corr, "bytes": nbytes},
            }
        )
        return self

    def document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"schemaVersion": 1, "traceEvents": self.events}
        if self.device_name is not None:
            doc["deviceProperties"] = [{"id": 0, "name": self.device_name}]
        return doc

    def write(self, path: Path) -> Path:
        data = orjson.dumps(self.document())
        path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
        return path


def diffusion_trace(
    steps: int = 4,
    step_us: float = 1000.0,
    kernel_name: str = "sm90_xmma_gemm_f16f16_f16f32",
    first_step_extra_us: float = 0.0,
    kernel_fraction: float = 0.5,
    vae_kernel: str = "void cudnn::cnn::conv2d_grouped_direct_kernel<float>",
) -> TraceBuilder:
    """A GPU diffusion pipeline: text encoder, ``steps`` denoise steps with a kernel each, VAE decode."""
    builder = TraceBuilder()
    t = 0.0
    total = 200 + steps * step_us + first_step_extra_us + 400 + 100
    builder.range("profkit/pipeline", t, total)
    builder.range("profkit/text_encoder/text_encoder", 10, 150)
    builder.kernel("void at::native::vectorized_elementwise_kernel<4, float>", 20, 30, 50)
    t = 200.0
    for step in range(steps):
        dur = step_us + (first_step_extra_us if step == 0 else 0)
        builder.range(f"profkit/denoise/step_{step:03d}", t, dur)
        builder.range(f"profkit/denoise/step_{step:03d}/unet", t + 1, dur * 0.8)
        builder.kernel(kernel_name, t + 5, t + 20, dur * kernel_fraction)
        builder.range(f"profkit/denoise/step_{step:03d}/scheduler", t + dur * 0.85, dur * 0.1)
        t += dur
    builder.range("profkit/vae/decode", t, 400)
    builder.kernel(vae_kernel, t + 5, t + 10, 300)
    builder.memcpy("Memcpy DtoH (Device -> Pageable)", t + 320, t + 330, 20)
    return builder


GEMM_F16 = "sm90_xmma_gemm_f16f16_f16f32_f32_tn_n_tilesize128x128x64_warpgroupsize1x1x1"
SOFTMAX = "void at::native::(anonymous namespace)::cunn_SoftMaxForward<4, c10::Half, float, c10::Half>"
FLASH = "void pytorch_flash::flash_fwd_kernel<Flash_fwd_kernel_traits<64, 128, 64, 4, false, false, cutlass::half_t>>"
ELEMENTWISE = "void at::native::vectorized_elementwise_kernel<4, at::native::CUDAFunctor_add<c10::Half>>"


def launch_bound_trace(
    steps: int = 5,
    kernels_per_step: int = 12,
    kernel_us: float = 5.0,
    host_gap_us: float = 20.0,
    sync_each_step: bool = True,
    attention: str = "softmax",  # softmax (unfused) | flash | none
    launches: bool = True,
    gpu_annotations: bool = False,
) -> TraceBuilder:
    """A denoise loop of many short kernels launched slower than they run (launch-bound).

    With ``sync_each_step`` every step ends with a pageable device-to-host copy and a
    ``cudaStreamSynchronize`` (as a scheduler calling ``.item()`` would).
    """
    builder = TraceBuilder()
    names = [GEMM_F16, ELEMENTWISE]
    if attention == "softmax":
        names.append(SOFTMAX)
    elif attention == "flash":
        names.append(FLASH)
    step_us = 20 + kernels_per_step * host_gap_us + 60
    total = 100 + steps * step_us + 100
    builder.range("profkit/pipeline", 0, total)
    builder.range("profkit/text_encoder/text_encoder", 5, 80)
    builder.kernel(GEMM_F16, 10 if launches else None, 20, 50)
    t = 100.0
    for step in range(steps):
        builder.range(f"profkit/denoise/step_{step:03d}", t, step_us)
        builder.range(f"profkit/denoise/step_{step:03d}/unet", t + 1, step_us - 40)
        if gpu_annotations:
            builder.range(f"profkit/denoise/step_{step:03d}", t + 10, step_us - 5, gpu=True)
        for k in range(kernels_per_step):
            launch = t + 10 + k * host_gap_us
            builder.kernel(names[k % len(names)], launch if launches else None, launch + 5, kernel_us)
        if sync_each_step:
            end = t + step_us
            builder.memcpy("Memcpy DtoH (Device -> Pageable)", end - 30, end - 25, 2, nbytes=4, launch_dur=6)
            builder.api("cudaStreamSynchronize", end - 24, 4)
        builder.range(f"profkit/denoise/step_{step:03d}/scheduler", t + step_us - 35, 30)
        t += step_us
    builder.range("profkit/vae/decode", t, 90)
    builder.kernel("void cudnn::cnn::conv2d_grouped_direct_kernel<__half>", t + 5 if launches else None, t + 10, 60)
    return builder
