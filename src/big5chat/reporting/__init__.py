"""Figures and tables from metrics."""
