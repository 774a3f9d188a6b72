"""The train_classifier stage's experiment: fit the judge on one split of the corpus and test it there, and judge
tables it never trained on. The stage (``big5chat.stages.train_classifier``) calls these; the science is here, with tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from big5chat.classifier import metrics as cm
from big5chat.classifier.scoring import predict_with
from big5chat.classifier.train import Examples, TrainResult, train
from big5chat.traits import Z_COLUMN


@dataclass
class Corpus:
    """The processed posts with their training targets: ``targets`` norm.cdf(z) (z labels) or 1/0 for high/low
    (level labels), NaN where a post is not labelled for the trait (masked in the loss); ``z`` the z-scores of a
    z-labelled corpus (None for levels)."""

    posts: pd.DataFrame
    traits: tuple[str, ...]
    targets: np.ndarray
    z: np.ndarray | None

    @classmethod
    def from_posts(cls, posts: pd.DataFrame, traits: tuple[str, ...], label_kind: str) -> Corpus:
        targets = np.column_stack([pd.to_numeric(posts[f"{t}_target"], errors="coerce").to_numpy(float) for t in traits])
        z = np.column_stack([pd.to_numeric(posts[Z_COLUMN[t]], errors="coerce").to_numpy(float) for t in traits]) if label_kind == "z" else None
        return cls(posts, traits, targets, z)

    def examples(self, mask: np.ndarray) -> Examples:
        return Examples(self.posts.loc[mask, "message"].tolist(), self.targets[mask])

    def labelled_counts(self) -> dict[str, int]:
        return dict(zip(self.traits, (~np.isnan(self.targets)).sum(0).tolist()))


def predict(res: TrainResult, texts: list[str], c: Any) -> np.ndarray:
    """Scores of a trained judge (``c``: the train_classifier section) on texts, long ones as ``c.long_texts`` says."""
    return predict_with(res.model, res.tokenizer, texts, c.max_length, long_texts=c.long_texts)


def train_val_masks(train_mask: np.ndarray, val_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The training split's posts divided into train and validation (for the best epoch), seeded."""
    from sklearn.model_selection import train_test_split

    idx = np.flatnonzero(train_mask)
    tr_idx, va_idx = train_test_split(idx, test_size=val_size, random_state=seed, shuffle=True)
    tr, va = np.zeros(len(train_mask), bool), np.zeros(len(train_mask), bool)
    tr[tr_idx], va[va_idx] = True, True
    return tr, va


def author_split(posts: pd.DataFrame, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train and test masks that keep each author's posts on one side (``author_id``), seeded."""
    from sklearn.model_selection import GroupShuffleSplit

    gss = GroupShuffleSplit(n_splits=1, test_size=test_size, random_state=seed)
    tr_i, te_i = next(gss.split(posts, groups=posts["author_id"]))
    tr, te = np.zeros(len(posts), bool), np.zeros(len(posts), bool)
    tr[tr_i], te[te_i] = True, True
    return tr, te


def fit_and_test(corpus: Corpus, train_mask: np.ndarray, test_mask: np.ndarray, label: str, c: Any, encoder_dir: Path,
                 curve: list[dict[str, Any]] | None = None) -> dict[str, Any]:  # fmt: skip
    """Train the judge from ``encoder_dir`` on ``train_mask`` (``c.val_size`` of it held for picking the epoch) and
    test it on ``test_mask``: {"summary": the split's metrics, "result": the trained judge, "pred", "y"}. A
    z-labelled corpus also reports accuracy on the test posts with |z| >= ``c.strong_abs_z``."""
    tr, va = train_val_masks(train_mask, c.val_size, c.seed)
    res = train(encoder_dir, corpus.examples(tr), corpus.examples(va), traits=corpus.traits, pooling=c.pooling, dropout=c.dropout,
                max_length=c.max_length, batch_size=c.batch_size, epochs=c.epochs, learning_rate=c.learning_rate,
                weight_decay=c.weight_decay, warmup_ratio=c.warmup_ratio, seed=c.seed, group_by_length=c.group_by_length, frozen_layers=c.frozen_layers,
                on_step=(curve.append if curve is not None else None))  # fmt: skip
    pred = predict(res, corpus.posts.loc[test_mask, "message"].tolist(), c)
    y = corpus.targets[test_mask]
    per_trait = cm.trait_metrics(pred, y, corpus.traits)
    if corpus.z is not None:  # z-labelled corpora: also the posts that express a trait clearly
        strong = np.abs(np.nan_to_num(corpus.z[test_mask])) >= c.strong_abs_z
        for j, t in enumerate(corpus.traits):
            per_trait[t]["accuracy_strong"] = round(cm.binary_accuracy(pred[strong[:, j], j], y[strong[:, j], j]), 4)
            per_trait[t]["n_strong"] = int(strong[:, j].sum())
    summary = {
        "split": label,
        "n_train": int(tr.sum()), "n_val": int(va.sum()), "n_test": int(test_mask.sum()),
        "best_epoch": res.best_epoch,
        "val_loss": min((e["val_loss"] for e in res.epochs), default=None),
        "mean_accuracy": cm.mean_of(per_trait, "accuracy"),
        "mean_auc": cm.mean_of(per_trait, "auc"),
        **({"mean_accuracy_strong": cm.mean_of(per_trait, "accuracy_strong")} if corpus.z is not None else {}),
        "traits": per_trait,
    }  # fmt: skip
    return {"summary": summary, "result": res, "pred": pred, "y": y}


def judge_on(res: TrainResult, source: Any, what: str, traits: tuple[str, ...], c: Any) -> dict[str, Any]:
    """The trained judge on a labelled table it never trained on (``source``: a path or a data source the posts
    loader reads): per-trait metrics over the rows labelled for at least one trait."""
    from big5chat.data import corpus, loaders

    frame = loaders.load_posts(source).to_frame()
    y = np.column_stack([corpus.trait_labels(frame, t)[1] for t in traits])
    keep = ~np.isnan(y).all(1)
    frame, y = frame[keep].reset_index(drop=True), y[keep]
    pred = predict(res, frame["message"].tolist(), c)
    per_trait = cm.trait_metrics(pred, y, traits)
    return {"source": what, "n": int(len(frame)), "mean_accuracy": cm.mean_of(per_trait, "accuracy"),
            "mean_auc": cm.mean_of(per_trait, "auc"), "traits": per_trait}  # fmt: skip
