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
def predict_with(model: Any, tokenizer: Any, texts: list[str], max_length: int, batch_size: int = 64,
                 long_texts: str = "truncate") -> np.ndarray:  # fmt: skip
    """(n, n_traits) predictions of a TraitClassifier; texts batched by length for speed, order preserved.

    ``long_texts``: ``truncate`` scores a text on its first ``max_length`` tokens; ``chunks`` splits a longer
    text into near-equal chunks that each fit and averages their predictions (a text that fits is scored
    exactly as with ``truncate``).
    """
    texts = [t if isinstance(t, str) else "" for t in texts]
    if long_texts == "chunks":
        chunks, owner = chunk_inputs(tokenizer, texts, max_length)
        pred = _predict_ids(model, tokenizer, chunks, batch_size)
        out = np.zeros((len(texts), pred.shape[1]), dtype=np.float64)
        np.add.at(out, owner, pred)
        return (out / np.bincount(owner, minlength=len(texts))[:, None]).astype(np.float32)
    if long_texts != "truncate":
        raise ValueError(f"long_texts must be 'truncate' or 'chunks', got {long_texts!r}")
    ids = tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]
    return _predict_ids(model, tokenizer, ids, batch_size)


def chunk_inputs(tokenizer: Any, texts: list[str], max_length: int) -> tuple[list[list[int]], np.ndarray]:
    """Each text's tokens in ceil(n / room) near-equal chunks of at most ``room`` tokens (room = max_length less
    the special tokens), each wrapped in the special tokens; returns the chunks and the text each belongs to."""
    prefix, suffix = special_wrapping(tokenizer)
    room = max_length - len(prefix) - len(suffix)
    if room < 1:
        raise ValueError(f"max_length {max_length} leaves no room for text")
    chunks: list[list[int]] = []
    owner: list[int] = []
    for i, ids in enumerate(tokenizer(texts, add_special_tokens=False)["input_ids"]):
        n_chunks = max(1, -(-len(ids) // room))
        bounds = np.linspace(0, len(ids), n_chunks + 1).round().astype(int)
        for a, b in zip(bounds[:-1], bounds[1:]):
            chunks.append(prefix + list(ids[a:b]) + suffix)
            owner.append(i)
    return chunks, np.asarray(owner, dtype=np.int64)


def special_wrapping(tokenizer: Any) -> tuple[list[int], list[int]]:
    """The special tokens the tokenizer puts before and after one sequence ([CLS] / [SEP] for BERT)."""
    full = tokenizer("hello", add_special_tokens=True)["input_ids"]
    bare = tokenizer("hello", add_special_tokens=False)["input_ids"]
    for i in range(len(full) - len(bare) + 1):
        if full[i : i + len(bare)] == bare:
            return list(full[:i]), list(full[i + len(bare) :])
    raise ValueError("cannot tell where the tokenizer puts its special tokens")


@torch.no_grad()
def _predict_ids(model: Any, tokenizer: Any, ids: list[list[int]], batch_size: int) -> np.ndarray:
    was_training = model.training
    model.eval()
    order = np.argsort([len(x) for x in ids], kind="stable")
    out = np.zeros((len(ids), len(model.traits)), dtype=np.float32)
    device = model_device(model)
    for start in range(0, len(ids), batch_size):
        idx = order[start : start + batch_size]
        enc = tokenizer.pad({"input_ids": [ids[i] for i in idx]}, return_tensors="pt")
        out[idx] = model(enc["input_ids"].to(device), enc["attention_mask"].to(device)).float().cpu().numpy()
    model.train(was_training)
    return out


class TraitScorer:
    """A loaded classifier; call ``scorer(texts)`` for a DataFrame of predicted cdf(z), one column per trait."""

    def __init__(self, folder: str | Path = DEFAULT_DIR, batch_size: int = 64):
        from big5chat.classifier.model import load

        self.model, self.tokenizer, self.meta = load(folder)
        self.max_length = int(self.meta.get("max_length", 128))
        self.long_texts = str(self.meta.get("long_texts", "truncate"))
        self.batch_size = batch_size
        self.traits = list(self.model.traits)

    def predict(self, texts: list[str]) -> np.ndarray:
        """(n, n_traits) predictions, in the order of ``texts``."""
        return predict_with(self.model, self.tokenizer, texts, self.max_length, self.batch_size, self.long_texts)

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
