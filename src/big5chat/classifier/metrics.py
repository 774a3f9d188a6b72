"""Pure metrics of trait predictions: accuracy at 0.5, MAE, Pearson r, calibration bins."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.stats import norm


def cdf_targets(z: np.ndarray) -> np.ndarray:
    """The study's regression targets: norm.cdf(z) in [0, 1] (NaN stays NaN)."""
    return norm.cdf(np.asarray(z, dtype=float))


def binary_accuracy(pred: np.ndarray, target: np.ndarray, threshold: float = 0.5) -> float:
    """Share of rows where prediction and target fall on the same side of the threshold (NaN targets skipped)."""
    pred, target = np.asarray(pred, float), np.asarray(target, float)
    keep = ~np.isnan(target)
    if not keep.any():
        return float("nan")
    return float(np.mean((pred[keep] > threshold) == (target[keep] > threshold)))


def pearson_r(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    keep = ~(np.isnan(a) | np.isnan(b))
    a, b = a[keep], b[keep]
    if len(a) < 2 or a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def binary_auc(pred: np.ndarray, target: np.ndarray, threshold: float = 0.5) -> float:
    """ROC AUC of the prediction for the target's side of the threshold (NaN targets skipped; NaN with one class)."""
    from sklearn.metrics import roc_auc_score

    pred, target = np.asarray(pred, float), np.asarray(target, float)
    keep = ~np.isnan(target)
    y = target[keep] > threshold
    if y.all() or not y.any():
        return float("nan")
    return float(roc_auc_score(y, pred[keep]))


def mean_of(per_trait: dict[str, dict[str, float]], key: str) -> float:
    """The mean of one metric over the traits that have it (NaN when none has)."""
    values = [v[key] for v in per_trait.values() if v.get(key) is not None and not np.isnan(v[key])]
    return round(float(np.mean(values)), 4) if values else float("nan")


def trait_metrics(pred: np.ndarray, target: np.ndarray, traits: list[str] | tuple[str, ...]) -> dict[str, dict[str, float]]:
    """Per trait, over the rows labelled for it: accuracy at 0.5, ROC AUC, MAE, Pearson r and n (columns of
    pred/target in ``traits`` order)."""
    out: dict[str, dict[str, float]] = {}
    for j, t in enumerate(traits):
        p, y = pred[:, j], target[:, j]
        keep = ~np.isnan(y)
        out[t] = {
            "accuracy": round(binary_accuracy(p, y), 4),
            "auc": round(binary_auc(p, y), 4),
            "mae": round(float(np.mean(np.abs(p[keep] - y[keep]))), 4) if keep.any() else float("nan"),
            "pearson_r": round(pearson_r(p, y), 4),
            "n": int(keep.sum()),
        }
    return out


def calibration_bins(pred: np.ndarray, target: np.ndarray, bins: int = 10) -> list[dict[str, Any]]:
    """Equal-width bins of the prediction: mean prediction, mean target, count (empty bins left out)."""
    pred, target = np.asarray(pred, float), np.asarray(target, float)
    keep = ~np.isnan(target)
    pred, target = pred[keep], target[keep]
    edges = np.linspace(0.0, 1.0, bins + 1)
    idx = np.clip(np.digitize(np.clip(pred, 0, 1), edges[1:-1]), 0, bins - 1)
    out = []
    for b in range(bins):
        m = idx == b
        if m.any():
            out.append({"bin": b, "pred": float(pred[m].mean()), "target": float(target[m].mean()), "n": int(m.sum())})
    return out
