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


def exp_show(cwd: Path | None = None) -> Any:
    """``dvc exp show --json``: the params and metrics of every commit and experiment."""
    return json.loads(subprocess.run(["dvc", "exp", "show", "--json"], capture_output=True, text=True, check=True, cwd=cwd).stdout)


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

    rows = sorted({(r["param"], r["metric"]) for r in collect(exp_show(), param, metric, metrics_file)})
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


STEER_METRICS = {"assess": "reports/metrics/assess_personality.json", "dialogues": "reports/metrics/eval_dialogues.json",
                 "reasoning": "reports/metrics/evaluate_reasoning.json"}  # fmt: skip


def _mean(values: list[Any]) -> float:
    vals = [v for v in values if isinstance(v, (int, float))]
    return sum(vals) / len(vals) if vals else float("nan")


def steer_sweep_rows(exp_show: Any) -> list[dict[str, Any]]:
    """One row per experiment that ran method steer: its multiplier and layers, the steer questionnaire gap and its
    trait-specific part and common shift (mean over traits, per questionnaire), the judged accuracy and fluency of
    steered replies (prompting's beside), and the steer cells' mean reasoning accuracy."""
    rows = []
    for run in _runs(exp_show):
        params = run.get("params", {}).get("params.yaml", {}).get("data", {})
        mult = _get(params, "steer.multiplier")
        met = {k: run.get("metrics", {}).get(f, {}).get("data", {}) for k, f in STEER_METRICS.items()}
        if mult is None or not any(met.values()):
            continue
        row: dict[str, Any] = {"name": run["name"], "multiplier": float(mult), "layers": str(_get(params, "steer.layers"))}
        for q, per_t in (_get(met["assess"], "acquiescence.steer") or {}).items():
            for part in ("gap", "specific", "common"):
                row[f"{q}_{part}"] = _mean([v.get(part) for v in per_t.values()])
        st = _get(met["dialogues"], "steer") or {}
        row |= {"reply_accuracy": _get(st, "accuracy.overall"), "distinct_2": st.get("distinct_2"), "degenerate_rate": st.get("degenerate_rate"),
                "prompting_accuracy": _get(met["dialogues"], "prompting.accuracy.overall")}  # fmt: skip
        doms = _get(met["reasoning"], "domains") or {}
        row["reasoning"] = _mean([v for k, d in doms.items() if k.startswith("steer:") for v in d.values()])
        row["reasoning_direct"] = _mean(list((_get(met["reasoning"], "direct_domains") or {}).values()))
        rows.append(row)
    return sorted(rows, key=lambda r: (r["layers"], r["multiplier"]))


def steer_sweep_figure(rows: list[dict[str, Any]]) -> Any:
    """Against the multiplier (one line per layer set): the questionnaire gap and its trait-specific part, the judged
    accuracy of steered replies, their fluency, and the reasoning accuracy: what steering buys and what it costs."""
    import matplotlib.pyplot as plt
    import pandas as pd

    t = pd.DataFrame(rows)
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.3))
    for layers, g in t.groupby("layers", sort=False):
        g = g.sort_values("multiplier").drop_duplicates("multiplier", keep="last")
        x, tag = g["multiplier"], f" (layers {layers})" if t["layers"].nunique() > 1 else ""
        questionnaires = [c.removesuffix("_gap") for c in t.columns if c.endswith("_gap")]
        for q, style in zip(questionnaires, ("-", "--", ":", "-.")):
            if f"{q}_specific" in g:
                axes[0].plot(x, g[f"{q}_gap"], style, marker="o", ms=3, color="tab:blue", label=f"{q} gap{tag}")
                axes[0].plot(x, g[f"{q}_specific"], style, marker="s", ms=3, color="tab:red", label=f"{q} trait-specific{tag}")
        axes[1].plot(x, g["reply_accuracy"], marker="o", ms=3, label=f"steered replies{tag}")
        axes[2].plot(x, g["distinct_2"], marker="o", ms=3, label=f"distinct-2{tag}")
        axes[2].plot(x, g["degenerate_rate"], marker="x", ms=4, label=f"degenerate share{tag}")
        axes[3].plot(x, g["reasoning"], marker="o", ms=3, label=f"steer cells{tag}")
    if t["prompting_accuracy"].notna().any():
        axes[1].axhline(float(t["prompting_accuracy"].dropna().iloc[0]), color="tab:green", ls="--", lw=1, label="prompting (same scenarios)")
    if t["reasoning_direct"].notna().any():
        axes[3].axhline(float(t["reasoning_direct"].dropna().iloc[0]), color="0.4", ls="--", lw=1, label="direct")
    axes[1].axhline(0.5, color="0.6", ls=":", lw=1)
    axes[0].axhline(0, color="0.6", lw=0.8)
    titles = ("Questionnaire gap, high - low (mean over traits)", "Target level of steered replies (classifier)",
              "Fluency of steered replies", "Reasoning accuracy (default grid)")  # fmt: skip
    for ax, title in zip(axes, titles):
        ax.set_xlabel("multiplier (x residual norm)")
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=6)
    axes[1].set_ylim(0, 1)
    axes[2].set_ylim(0, 1)
    fig.tight_layout()
    return fig
