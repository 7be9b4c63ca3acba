"""Benchmarks (not tests): ``moksori bench preprocess``."""
