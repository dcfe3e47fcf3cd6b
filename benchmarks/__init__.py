"""Benchmarks: the plain baselines ``unigrid bench`` compares unigrid against.

- :mod:`benchmarks.generic`: read the eight exports and clean them the way a competent team
  without Chinese-specific knowledge would (the baselines' shared input).
- :mod:`benchmarks.splink_baseline`: a plain Splink 5 dedupe of those records.
- :mod:`benchmarks.recordlinkage_baseline`: recordlinkage 0.16 on a subset it can handle.

The harness that runs them, times them and prints the table is :mod:`unigrid.bench`.
"""
