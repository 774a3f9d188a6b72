"""Reasoning benchmarks through lm-evaluation-harness (PAPER.md 2.10)."""
