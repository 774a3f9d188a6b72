"""Score any text's Big Five traits with the trained classifier: ``score_traits(texts)``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from big5chat import paths
from big5chat.models.loading import model_device

DEFAULT_DIR = paths.MODELS / "classifier"


@torch.no_grad()
def predict_with(model: Any, tokenizer: Any, texts: list[str], max_length: int, batch_size: int = 64) -> np.ndarray:
    """(n, n_traits) predictions of a TraitClassifier; texts batched by length for speed, order preserved."""
    was_training = model.training
    model.eval()
    texts = [t if isinstance(t, str) else "" for t in texts]
    order = np.argsort([len(t) for t in texts], kind="stable")
    out = np.zeros((len(texts), len(model.traits)), dtype=np.float32)
    device = model_device(model)
    for start in range(0, len(texts), batch_size):
        idx = order[start : start + batch_size]
        enc = tokenizer([texts[i] for i in idx], padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        out[idx] = model(enc["input_ids"].to(device), enc["attention_mask"].to(device)).float().cpu().numpy()
    model.train(was_training)
    return out


class TraitScorer:
    """A loaded classifier; call ``scorer(texts)`` for a DataFrame of predicted cdf(z), one column per trait."""

    def __init__(self, folder: str | Path = DEFAULT_DIR, batch_size: int = 64):
        from big5chat.classifier.model import load

        self.model, self.tokenizer, self.meta = load(folder)
        self.max_length = int(self.meta.get("max_length", 128))
        self.batch_size = batch_size
        self.traits = list(self.model.traits)

    def predict(self, texts: list[str]) -> np.ndarray:
        """(n, n_traits) predictions, in the order of ``texts``."""
        return predict_with(self.model, self.tokenizer, texts, self.max_length, self.batch_size)

    def __call__(self, texts: list[str]) -> pd.DataFrame:
        return pd.DataFrame(self.predict(list(texts)), columns=self.traits)

    def levels(self, texts: list[str], threshold: float = 0.5) -> pd.DataFrame:
        """'high' / 'low' per trait: the prediction above or below the threshold (the study's 0.5)."""
        scores = self(texts)
        return scores.apply(lambda col: np.where(col > threshold, "high", "low"))


_CACHE: dict[str, TraitScorer] = {}


def score_traits(texts: list[str], folder: str | Path = DEFAULT_DIR) -> pd.DataFrame:
    """Predicted norm.cdf(z) of each trait for each text (columns: traits), with a cached classifier."""
    key = str(Path(folder).resolve())
    if key not in _CACHE:
        _CACHE[key] = TraitScorer(folder)
    return _CACHE[key](texts)


def reset_cache() -> None:
    _CACHE.clear()


def describe(scorer: Any) -> dict[str, Any]:
    return {"traits": scorer.traits, "max_length": scorer.max_length, **{k: v for k, v in scorer.meta.items() if k != "traits"}}
