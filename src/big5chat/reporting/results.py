"""The committed ``results/`` folder: the default run's metrics, report page, figures and loss curves, in git.

Every stage's outputs are DVC-cached and ignored by git, so a fresh clone holds no result. ``make_figures`` (the cheap
last stage) copies them here: its ``cache: false`` outputs in dvc.yaml, committed like source, so that a fresh clone's
``dvc metrics show`` prints the default run's metrics, ``dvc metrics diff HEAD~1`` and ``dvc plots diff`` compare
commits, and the forge shows the page. The expensive stages keep their cached outputs (and DVC's run cache).

The layout mirrors ``reports/``, so the page's relative figure links resolve and a metric keeps its file name:

- ``metrics/<stage>.json`` (and ``metrics/train_experts/<trait>.json``): every stage's metrics, as written;
- ``figures/paper/*.png``: the figures make_figures drew (the PDFs stay in ``reports/figures/paper``);
- ``plots/<stage>/*.csv``: the training loss curves;
- ``report.md``: ``reports/README.md``, the page that shows the figures and checks the paper's findings.

``README.md`` beside them is written by hand and explains this.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from big5chat import paths, storage

METRICS = "metrics"
FIGURES = "figures"
PLOTS = "plots"
PAGE = "report.md"


def folder() -> Path:
    """``results/`` in the project root."""
    return paths.ROOT / "results"


def _mirror(files: list[Path], src: Path, dest: Path) -> list[Path]:
    """Replace the folder ``dest`` by copies of ``files`` (below ``src``, kept at the same relative paths)."""

    def write(tmp: Path) -> None:
        for f in files:
            target = tmp / f.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, target)

    storage.write_dir(dest, write)
    return [dest / f.relative_to(src) for f in files]


def collect(reports: Path, results: Path, pngs: list[Path]) -> list[Path]:
    """Copy the run's metrics, ``pngs`` (figures below ``reports/figures``), loss curves and page from ``reports``
    into ``results`` (each folder replaced whole, so a figure or stage that is gone leaves no stale file); the files
    written, byte for byte the originals."""
    copied = _mirror(sorted((reports / "metrics").rglob("*.json")), reports / "metrics", results / METRICS)
    copied += _mirror(list(pngs), reports / "figures", results / FIGURES)
    copied += _mirror(sorted((reports / "plots").rglob("*.csv")), reports / "plots", results / PLOTS)
    with storage.atomic_file(results / PAGE) as tmp:
        shutil.copyfile(reports / "README.md", tmp)
    return [*copied, results / PAGE]


def read_metrics(results: Path) -> dict[str, dict[str, Any]]:
    """The committed metrics by stage (the file's stem; ``train_experts/<trait>.json`` as ``train_experts/<trait>``)."""
    root = results / METRICS
    return {f.relative_to(root).with_suffix("").as_posix(): json.loads(f.read_text(encoding="utf-8")) for f in sorted(root.rglob("*.json"))}
