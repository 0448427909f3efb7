"""The cost of measuring: the built-in pipeline with and without profkit's ranges, and under torch.profiler.

Every round runs the three variants once each, in a rotating order (plain, ranges, profiled; then ranges,
profiled, plain; ...), in one process on one loaded pipeline, so drift of a busy machine hits all of them alike.
Each variant is compared with the plain call of the same round (a paired design); the table shows the median
overhead and a 95% bootstrap confidence interval of it.

    python benchmarks/instrumentation_overhead.py                       # tiny-sd, 64x64, 10 steps, 30 rounds
    python benchmarks/instrumentation_overhead.py --rounds 60 --steps 20 --size 128

Target (issue 16): profkit's ranges (NVTX + record_function) cost under 1% of the end-to-end time on the default
workload. The profiled variant shows how far torch.profiler itself distorts the step times a capture reports.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from collections.abc import Callable, Iterator

import numpy as np

TARGET_OVERHEAD = 0.01


def _variants(pipeline) -> dict[str, Callable[[], contextlib.AbstractContextManager]]:
    import torch

    from profkit.capture.instrument import instrument
    from profkit.capture.native_output import profiler_chatter_dropped

    @contextlib.contextmanager
    def profiled() -> Iterator[None]:
        activities = [torch.profiler.ProfilerActivity.CPU]
        if torch.cuda.is_available():
            activities.append(torch.profiler.ProfilerActivity.CUDA)
        profiler = torch.profiler.profile(activities=activities, record_shapes=True)
        with profiler_chatter_dropped():
            profiler.start()
        try:
            with instrument(pipeline):
                yield
        finally:
            with profiler_chatter_dropped():
                profiler.stop()

    return {
        "plain": contextlib.nullcontext,
        "ranges": lambda: instrument(pipeline),
        "profiled": profiled,
    }


def _bootstrap_ci(values: np.ndarray, seed: int = 0, resamples: int = 5000) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    medians = np.median(rng.choice(values, size=(resamples, values.size), replace=True), axis=1)
    return float(np.percentile(medians, 2.5)), float(np.percentile(medians, 97.5))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny-sd")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    import torch

    from profkit.capture.run import synchronize
    from profkit.pipelines.loading import load_pipeline, resolve_device

    device = resolve_device(args.device)
    pipeline = load_pipeline(args.model, "fp32", device).pipeline
    variants = _variants(pipeline)
    names = list(variants)

    def call() -> float:
        generator = torch.Generator(device="cpu").manual_seed(0)
        synchronize(device)
        started = time.perf_counter()
        pipeline("a lighthouse", num_inference_steps=args.steps, height=args.size, width=args.size, generator=generator)
        synchronize(device)
        return (time.perf_counter() - started) * 1000

    for name in names:  # warm up every variant once (allocator, profiler start-up)
        with variants[name]():
            call()
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(args.rounds):
        order = names[round_index % len(names) :] + names[: round_index % len(names)]
        for name in order:
            with variants[name]():
                times[name].append(call())

    plain = np.asarray(times["plain"])
    print(f"{args.model} {args.size}x{args.size}, {args.steps} steps, {device}, {args.rounds} interleaved rounds")
    print(f"{'variant':<10} {'median ms':>10} {'overhead vs plain (median of paired)':>38} {'95% CI':>20}")
    verdicts = []
    for name in names:
        values = np.asarray(times[name])
        if name == "plain":
            print(f"{name:<10} {statistics.median(values):>10.2f} {'-':>38} {'-':>20}")
            continue
        overhead = values / plain - 1.0
        low, high = _bootstrap_ci(overhead)
        median = float(np.median(overhead))
        print(f"{name:<10} {statistics.median(values):>10.2f} {median:>37.2%} {f'[{low:+.2%}, {high:+.2%}]':>20}")
        if name == "ranges":
            verdicts.append(
                f"profkit ranges: {median:+.2%} (95% CI {low:+.2%} to {high:+.2%}); target < {TARGET_OVERHEAD:.0%}: "
                + ("met" if high < TARGET_OVERHEAD else "not shown at this confidence")
            )
        else:
            interval = f"95% CI {low:+.2%} to {high:+.2%}"
            verdicts.append(f"torch.profiler + ranges distort the call by {median:+.2%} ({interval})")
    print("\n".join(verdicts))


if __name__ == "__main__":
    main()
