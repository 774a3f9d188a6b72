"""Schemas, loaders and the pure transformations of the study's data."""
