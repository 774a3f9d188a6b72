"""What ``models.loading`` and ``models.placement`` share: the loading policy's error and the dtypes it accepts.

Its own module so that the two point one way (loading imports placement, both import this) instead of at each other.
"""

from __future__ import annotations

from typing import Any

DTYPES = {"float32": "float32", "bfloat16": "bfloat16", "float16": "float16"}


class ModelLoadError(RuntimeError):
    """A model folder that the loading policy refuses, with the reason and the folder."""


def torch_dtype(dtype: str) -> Any:
    """The torch dtype named ``dtype`` (one of ``DTYPES``); ModelLoadError for any other name."""
    import torch

    if dtype not in DTYPES:
        raise ModelLoadError(f"unknown dtype {dtype!r} (use one of {', '.join(DTYPES)})")
    return getattr(torch, DTYPES[dtype])
