"""Benchmark scripts. Each runs as ``python benchmarks/NAME.py`` and writes JSON (most into
``benchmarks/results/``); the tests import the arithmetic they check as ``benchmarks.NAME``."""
