"""Figures inline in the executed notebooks: a stage saves a PNG and shows it, so `reports/notebooks/` reads alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def show(saved: Any) -> Any:
    """Display each PNG among ``saved`` (a path or a list of paths, as ``storage.save_figure`` and
    ``reporting.figures.save_both`` return them) inline when running in a notebook kernel; return ``saved``."""
    paths = saved if isinstance(saved, (list, tuple)) else [saved]
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with the notebook stack
        return saved
    if get_ipython() is None:
        return saved
    from IPython.display import Image, display

    for p in paths:
        if Path(p).suffix == ".png":
            display(Image(filename=str(p)))
    return saved
