"""Kernel and CPU-operator categories: one ordered rule table each, first match wins.

Kernel rules are matched (case-insensitive regex search) against the demangled kernel name, in
order. The order matters: Inductor's pointwise/reduction/persistent Triton kernels come first (compiled work,
whatever op they fuse), convolutions before GEMMs (cuDNN's implicit-GEMM conv kernels contain "gemm"),
attention before other Triton kernels (a Triton flash-attention kernel is attention), and elementwise last
before "other". Tensor-core use and the precision are guessed from the name
alone and are labelled as guesses in reports.
"""

from __future__ import annotations

import functools
import re

import msgspec
import numpy as np

from profkit.analysis.namecodes import factorize
from profkit.parsers.tables import Table


class Rule(msgspec.Struct, frozen=True):
    category: str
    subcategory: str
    pattern: str


KERNEL_RULES: tuple[Rule, ...] = (
    Rule("communication", "nccl", r"nccl|rccl|^hccl|allreduce|all_reduce|allgather|reducescatter|sendrecv"),
    Rule("memcpy", "copy", r"^memcpy|^dma"),
    Rule("memset", "memset", r"^memset"),
    # Inductor's compiled kernels are compiled work whatever they fuse (the fused op is only a hint in the name):
    # a pointwise kernel that fuses the reshapes around SDPA is not attention.
    Rule("triton", "pointwise", r"^triton_poi_"),
    Rule("triton", "reduction", r"^triton_red_"),
    Rule("triton", "persistent", r"^triton_per_"),
    # cuDNN's layout transforms around NHWC convolutions
    Rule("layout", "cudnn_layout", r"nchwtonhwc|nhwctonchw"),
    Rule("attention", "flash", r"flash_?(fwd|bwd|attn|attention|_kernel)|flash::|pytorch_flash|flashattn"),
    Rule("attention", "memory_efficient", r"fmha|cutlassf|mem_?eff|efficient_attention|attention_kernel"),
    Rule("attention", "cudnn", r"cudnn.*(sdpa|attention|mha)|sdpa"),
    Rule("attention", "triton", r"triton.*(attn|attention)"),
    Rule("convolution", "conv", r"conv|implicit_convolve|winograd|dgrad|wgrad|fprop|_cudnn_|scudnn|hcudnn"),
    Rule("normalization", "group_norm", r"group_?norm|rowwisemoments|computefusedparams|groupnorm"),
    Rule("normalization", "layer_norm", r"layer_?norm|layernorm"),
    Rule("normalization", "rms_norm", r"rms_?norm"),
    Rule("normalization", "batch_norm", r"batch_?norm|bn_fw|bn_bw|batchnorm"),
    Rule("softmax", "softmax", r"softmax"),
    Rule(
        "gemm",
        "gemm",
        r"gemm|gemv|cublas|cutlass|cijk_|xmma|wgmma|matmul|magma|splitkreduce|dot_kernel|nvjet|"
        r"[hs](884|1688|16816)|wmma|hmma",
    ),
    Rule("triton", "template", r"^triton_tem_"),
    Rule("triton", "compiled", r"^triton_|triton"),
    Rule("reduction", "reduction", r"reduce|reduction|argmax|argmin|topk|sort|scan|cub::|radix"),
    Rule(
        "elementwise",
        "elementwise",
        r"elementwise|vectorized|unrolled|pointwise|copy|fill|functor|index|gather|scatter|cat_?array|"
        r"upsample|transpose|permute|where|clamp|gelu|silu|relu|sigmoid|tanh|dropout|distribution|"
        r"embedding|pad|interpolat|multi_tensor_apply",
    ),
)

#: Names that say the kernel runs on tensor cores (NVIDIA MMA, AMD MFMA tiles).
TENSOR_CORE_PATTERN = (
    r"[hsi](884|1688|16816)|hmma|imma|wgmma|tensorop|xmma|_mma|mma_|tensor_?core|sm8\d_|sm9\d_|sm1\d\d_|"
    r"flash|fmha|cutlassf|_mi\d+x\d+x\d+|nvjet"
)
#: Names that say the opposite, checked first: FP32 FMA (SIMT) GEMMs that carry an ``xmma``/``sm80`` tile name,
#: cuBLAS ``nvjet_sss`` (FP32), the FP32 memory-efficient attention kernel, Inductor's pointwise/reduction kernels.
NO_TENSOR_CORE_PATTERN = r"_ffma|simt|nvjet_(sm\d+_)?sss|fmha_cutlassf_f32|^triton_(poi|red|per)_"

#: Precision guesses, tried in order.
PRECISION_RULES: tuple[tuple[str, str], ...] = (
    ("fp8", r"e4m3|e5m2|fp8|f8f8"),
    ("int8", r"int8|imma|i8i8|s8s8|u8s8|_i8_"),
    ("bf16", r"bf16|bfloat16|bfloat|_hb_|nvjet_(sm\d+_)?b[bs]b"),
    ("fp16", r"fp16|half|__half|f16|h884|h1688|h16816|hgemm|hmma|_hh_|hcudnn|nvjet_(sm\d+_)?h[hs]h"),
    ("tf32", r"tf32|s1688|s16816|_xf32|nvjet_(sm\d+_)?tst"),
    ("fp32", r"sgemm|float|fp32|f32|scudnn|_sb_|_ss_|<float|nvjet_(sm\d+_)?sss"),
)

#: CUDA/HIP runtime and driver API calls, by what they do to the host thread. ``sync`` calls block
#: the host until the GPU catches up; ``memcpy_sync``/``memset_sync`` are the blocking copy/set calls
#: (an ``...Async`` copy from pageable memory blocks too: that is read from the copy itself).
RUNTIME_API_RULES: tuple[Rule, ...] = (
    Rule("launch", "kernel", r"^(cuda|cu|hip|hipExt|hipModule)LaunchKernel|LaunchCooperativeKernel|^cuLaunch(Grid)?$"),
    Rule("launch", "graph", r"^(cuda|cu|hip)GraphLaunch"),
    Rule("sync", "sync", r"^(cuda|cu|hip)(Device|Stream|Event|Ctx)Synchroni[sz]e"),
    Rule("memcpy_async", "memcpy", r"^(cuda|cu|hip)Memcpy.*Async"),
    Rule("memset_async", "memset", r"^(cuda|cu|hip)Memset.*Async"),
    Rule("memcpy_sync", "memcpy", r"^(cuda|cu|hip)Memcpy"),
    Rule("memset_sync", "memset", r"^(cuda|cu|hip)Memset"),
)

#: OS runtime calls (Nsight Systems' OSRT_API), which stand in for CPU operators in nsys captures.
OSRT_RULES: tuple[Rule, ...] = (
    Rule(
        "os: file I/O",
        "io",
        r"^(read|write|pread|pwrite|open|close|fread|fwrite|fopen|fclose|lseek|stat|fstat|"
        r"readv|writev|fsync|openat|lstat|access|getdents)",
    ),
    Rule("os: memory", "memory", r"^(mmap|munmap|mprotect|mremap|madvise|brk|sbrk|shm)"),
    Rule(
        "os: wait/sync",
        "sync",
        r"^(pthread_|sem_|futex|sched_yield|nanosleep|usleep|sleep|poll|ppoll|select|"
        r"pselect|epoll|waitpid|wait)",
    ),
    Rule("os: process", "process", r"^(fork|clone|exec|pthread_create|posix_spawn|kill|ioctl)"),
    Rule("os: other", "other", r"."),
)

CPU_OP_RULES: tuple[Rule, ...] = (
    Rule("attention", "sdpa", r"scaled_dot_product|flash_attention|efficient_attention|sdpa|attention"),
    Rule("convolution", "conv", r"conv|mkldnn_convolution"),
    Rule("gemm", "gemm", r"aten::(mm|addmm|bmm|baddbmm|matmul|linear|addbmm|_addmm_activation)$|mkldnn_linear"),
    Rule("normalization", "norm", r"group_norm|layer_norm|batch_norm|rms_norm"),
    Rule("softmax", "softmax", r"softmax"),
    Rule("reduction", "reduction", r"aten::(sum|mean|max|min|amax|amin|argmax|argmin|norm|var|std|prod)"),
    Rule(
        "layout",
        "view",
        r"aten::(empty|empty_like|empty_strided|view|reshape|_reshape_alias|permute|transpose|t|expand|"
        r"slice|select|as_strided|unsqueeze|squeeze|flatten|chunk|split|split_with_sizes|narrow|detach|"
        r"alias|resize_|unflatten|unbind|lift_fresh|_unsafe_view|view_as)$",
    ),
    Rule("memcpy", "copy", r"aten::(copy_|to|_to_copy|clone|contiguous|cat|stack)$"),
    # ``.item()`` and friends: a device-to-host read that waits for the GPU (a host sync), not elementwise work
    Rule("sync", "item", r"aten::(_local_scalar_dense|item)$"),
    Rule("elementwise", "elementwise", r"aten::"),
)


# Matching is case-insensitive: names are lower-cased once and the patterns (all lower case, no
# upper-case escapes) are compiled without re.IGNORECASE, which is several times slower on long
# templated kernel names.


def _compile(rules: tuple[Rule, ...]) -> list[tuple[re.Pattern[str], Rule]]:
    return [(re.compile(rule.pattern), rule) for rule in rules]


_KERNEL_COMPILED = _compile(KERNEL_RULES)
_CPU_COMPILED = _compile(CPU_OP_RULES)
_OSRT_COMPILED = _compile(OSRT_RULES)
_API_COMPILED = [(re.compile(rule.pattern), rule) for rule in RUNTIME_API_RULES]
_TENSOR_CORE = re.compile(TENSOR_CORE_PATTERN)
_NO_TENSOR_CORE = re.compile(NO_TENSOR_CORE_PATTERN)
_PRECISION = [(label, re.compile(pattern)) for label, pattern in PRECISION_RULES]


def classify_kernel(name: str) -> tuple[str, str]:
    name = name.lower()
    for pattern, rule in _KERNEL_COMPILED:
        if pattern.search(name):
            return rule.category, rule.subcategory
    return "other", "other"


def classify_cpu_op(name: str) -> tuple[str, str]:
    name = name.lower()
    for pattern, rule in _CPU_COMPILED:
        if pattern.search(name):
            return rule.category, rule.subcategory
    return "other", "other"


def classify_osrt(name: str) -> tuple[str, str]:
    name = name.lower()
    for pattern, rule in _OSRT_COMPILED:
        if pattern.search(name):
            return rule.category, rule.subcategory
    return "os: other", "other"


def classify_runtime_api(name: str) -> str:
    for pattern, rule in _API_COMPILED:
        if pattern.search(name):
            return rule.category
    return "other"


def uses_tensor_cores(name: str) -> bool:
    name = name.lower()
    return not _NO_TENSOR_CORE.search(name) and bool(_TENSOR_CORE.search(name))


def guess_precision(name: str) -> str:
    name = name.lower()
    for label, pattern in _PRECISION:
        if pattern.search(name):
            return label
    return "unknown"


@functools.lru_cache(maxsize=65536)
def _kernel_class(name: str) -> tuple[str, str, bool, str]:
    category, subcategory = classify_kernel(name)
    return category, subcategory, uses_tensor_cores(name), guess_precision(name)


def _per_unique(names: np.ndarray, classify, columns: list[str]) -> Table:
    """Apply ``classify`` once per unique name and spread the result back over ``names``."""
    codes, uniques = factorize(names)
    # a missing name is classified as "" (the last row, code -1)
    results = [*(classify(str(name)) for name in uniques), classify("")]
    table = Table(length=len(names))
    for index, column in enumerate(columns):
        values = np.empty(len(results), dtype=bool if column == "tensor_core" else object)
        values[:] = [result[index] for result in results]
        table[column] = values[codes]
    return table


def kernel_classes(names: np.ndarray) -> Table:
    """category, subcategory, tensor_core, precision for each name (classified once per unique name)."""
    return _per_unique(names, _kernel_class, ["category", "subcategory", "tensor_core", "precision"])


def cpu_op_classes(names: np.ndarray, cats: np.ndarray | None = None) -> Table:
    """Categories of CPU operators; rows whose ``cat`` is ``osrt`` (nsys OS runtime calls) use :data:`OSRT_RULES`."""
    classes = _per_unique(names, classify_cpu_op, ["category", "subcategory"])
    if cats is not None and len(classes):
        osrt = cats == "osrt"
        if osrt.any():
            os_classes = _per_unique(names[osrt], classify_osrt, ["category", "subcategory"])
            for column in ("category", "subcategory"):
                classes[column][osrt] = os_classes[column]
    return classes


def runtime_api_classes(names: np.ndarray) -> np.ndarray:
    """The :data:`RUNTIME_API_RULES` category of each API call name."""
    return _per_unique(names, lambda name: (classify_runtime_api(name),), ["kind"])["kind"]
