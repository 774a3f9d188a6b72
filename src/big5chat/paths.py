"""Canonical project locations. Every path in the project is derived from here, never from `../`."""

from __future__ import annotations

import os
from pathlib import Path


def _find_root() -> Path:
    env = os.environ.get("BIG5CHAT_ROOT")
    if env:
        return Path(env).resolve()
    # The working directory wins when it is a project checkout (dvc runs stages from the root,
    # tests run copies of the project from temporary folders).
    for start in (Path.cwd(), Path(__file__).resolve().parent):
        for candidate in (start, *start.parents):
            if (candidate / "dvc.yaml").is_file() and (candidate / "src" / "big5chat").is_dir():
                return candidate
    return Path(__file__).resolve().parents[2]


ROOT = _find_root()
PARAMS_FILE = ROOT / "params.yaml"
DVC_FILE = ROOT / "dvc.yaml"
CONFIGS = ROOT / "configs"
NOTEBOOKS = ROOT / "notebooks"
DATA = ROOT / "data"
SAMPLE = DATA / "sample"
INSTRUMENTS = DATA / "instruments"
MODELS = DATA / "models"
PROCESSED = DATA / "processed"
REPORTS = ROOT / "reports"
REPORT_NOTEBOOKS = REPORTS / "notebooks"
METRICS = REPORTS / "metrics"
FIGURES = REPORTS / "figures"
# Scratch space for caches (datasets, hub) and trainer checkpoints: never a DVC output.
SCRATCH = ROOT / ".scratch"
SHARED_DATA = ROOT.parent / "shared" / "data"


def resolve(path: str | os.PathLike[str]) -> Path:
    """A project-relative path (as written in params.yaml) as an absolute path."""
    p = Path(path)
    return p if p.is_absolute() else ROOT / p


def relative(path: str | os.PathLike[str]) -> str:
    """The path relative to the project root when it lies inside it (for messages and records)."""
    p = Path(path).resolve()
    try:
        return p.relative_to(ROOT).as_posix()
    except ValueError:
        return str(p)
