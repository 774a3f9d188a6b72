"""Reasoning benchmarks through lm-evaluation-harness (docs/paper.md §2.10)."""
