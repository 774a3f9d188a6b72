"""A metric against a param across DVC experiments (`dvc exp show --json`), e.g. accuracy against alpha."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def _get(data: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(data, dict) or part not in data:
            return None
        data = data[part]
    return data


def _runs(node: Any) -> Iterator[dict[str, Any]]:
    """Every experiment or commit entry holding 'params' and 'metrics' in the exp-show JSON tree."""
    if isinstance(node, dict):
        data = node.get("data")
        if isinstance(data, dict) and "params" in data:
            yield {"name": node.get("name") or node.get("rev"), **data}
        for v in node.values():
            yield from _runs(v)
    elif isinstance(node, list):
        for v in node:
            yield from _runs(v)


def collect(exp_show: Any, param: str, metric: str, metrics_file: str = "reports/metrics/eval_dialogues.json") -> list[dict[str, Any]]:
    """(name, param value, metric value) for every run that has both."""
    rows = []
    for run in _runs(exp_show):
        p = _get(run.get("params", {}).get("params.yaml", {}).get("data", {}), param)
        m = _get(run.get("metrics", {}).get(metrics_file, {}).get("data", {}), metric)
        if p is not None and m is not None:
            rows.append({"name": run["name"], "param": p, "metric": m})
    return rows


def sweep_figure(param: str, metric: str, out: Path, metrics_file: str = "reports/metrics/eval_dialogues.json") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from big5chat import storage

    shown = json.loads(subprocess.run(["dvc", "exp", "show", "--json"], capture_output=True, text=True, check=True).stdout)
    rows = sorted({(r["param"], r["metric"]) for r in collect(shown, param, metric, metrics_file)})
    if not rows:
        raise SystemExit(f"no experiment has both {param} and {metric} (in {metrics_file}); run the sweep first")
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    ax.plot([r[0] for r in rows], [r[1] for r in rows], marker="o")
    ax.axhline(0.5, color="0.6", ls=":", lw=1)
    ax.set_xlabel(param)
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} across {len(rows)} runs")
    fig.tight_layout()
    return storage.save_figure(fig, out)
