"""Metrics of generated text (pure functions)."""
