"""Benchmark statistics (``stats``: percentiles, median CI, Mann-Whitney) and the summary of a bench result
(``summary``: per configuration, throughput sweep, cost, baseline changes). Pure: documents in, documents out."""
