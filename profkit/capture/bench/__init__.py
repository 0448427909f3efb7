"""Benchmark trials: the interleaved runner (``runner``) and the background utilization sampler (``sampler``).
Their result is the typed :class:`profkit.model.bench.BenchResult`; statistics live in ``profkit.analysis.bench``."""
