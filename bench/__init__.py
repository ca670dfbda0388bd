"""Benchmarks, run on demand: each script prints its figures and the ratios against its baselines."""
