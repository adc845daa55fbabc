"""Benchmarks of payrank at 10k, 100k and 1M accounts: features, training, scoring, and a plot of the results.

Run `make bench` (or each `python -m benchmarks.<name>`); `--quick` is a smoke run on tiny books.
"""
