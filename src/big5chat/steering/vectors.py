"""Trait vectors: the mean difference of residual activations between high- and low-level texts of a trait.

For each trait, ``n_pairs`` texts labelled high and as many labelled low (seeded draw) go through the base model;
each text's activation at a layer is the mean over its tokens (the first token left out: it is the attention sink,
with a norm far above the rest) of that layer's output. The trait's direction at the layer is the unit vector of
mean(high) - mean(low). Steering adds ``multiplier x norm x direction``, where ``norm`` is the typical per-token
residual norm at the layer over all source texts, so a multiplier is a fraction of the residual stream's own size
and means the same on a 135M and a 70B model; ``+`` for the high level, ``-`` for the low one.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from big5chat.steering.hooks import StopForward, reading
from big5chat.storage import atomic_file

LEVEL_SIGN = {"high": 1.0, "low": -1.0}


@dataclass
class TraitVectors:
    layers: list[int]
    directions: dict[str, torch.Tensor]  # trait -> [len(layers), hidden], unit rows
    norms: torch.Tensor  # [len(layers)]: mean per-token residual norm at each layer
    meta: dict[str, Any] = field(default_factory=dict)

    def deltas(self, trait: str, level: str, multiplier: float) -> dict[int, torch.Tensor]:
        """What ``steered`` adds at each layer for one trait and level."""
        if trait not in self.directions:
            raise KeyError(f"no steering vector for trait {trait!r} (have: {', '.join(self.directions)})")
        scale = LEVEL_SIGN[level] * float(multiplier)
        return {layer: scale * self.norms[i] * self.directions[trait][i] for i, layer in enumerate(self.layers)}

    def row_deltas(self, rows: list[tuple[str, str]], multiplier: float) -> dict[int, torch.Tensor]:
        """Per-row deltas ``[len(rows), hidden]`` for a batch whose rows steer toward different (trait, level)s."""
        per_row = [self.deltas(t, lvl, multiplier) for t, lvl in rows]
        return {layer: torch.stack([d[layer] for d in per_row]) for layer in self.layers}

    def save(self, path: Path) -> None:
        from safetensors.torch import save_file

        tensors = {f"direction.{t}": v.contiguous().float() for t, v in self.directions.items()} | {"norms": self.norms.float()}
        with atomic_file(path) as tmp:
            save_file(tensors, str(tmp), metadata={"layers": json.dumps(self.layers), "meta": json.dumps(self.meta)})

    @classmethod
    def load(cls, path: Path) -> TraitVectors:
        from safetensors import safe_open

        if not Path(path).is_file():
            raise FileNotFoundError(f"no steering vectors at {path}: run the learn_steering stage (dvc repro learn_steering)")
        with safe_open(str(path), framework="pt") as f:
            md = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is not a mapping)
        if "layers" not in md or "norms" not in tensors:
            raise ValueError(f"{path} is not a trait-vector file (needs 'layers' metadata and a 'norms' tensor)")
        directions = {k.split(".", 1)[1]: v for k, v in tensors.items() if k.startswith("direction.")}
        return cls(json.loads(md["layers"]), directions, tensors["norms"], json.loads(md.get("meta", "{}")))


def source_texts(source: str, traits: list[str], corpus: Callable[[], pd.DataFrame], dialogues: Callable[[], pd.DataFrame]) -> pd.DataFrame:
    """The labelled texts of ``steer.source``: ``corpus``, ``dialogues`` or ``both`` (the two concatenated)."""
    parts = [labelled_texts(read(), name, traits) for name, read in (("corpus", corpus), ("dialogues", dialogues)) if source in (name, "both")]
    if not parts:
        raise ValueError(f"unknown steering source {source!r} (corpus | dialogues | both)")
    return pd.concat(parts, ignore_index=True)


def labelled_texts(frame: pd.DataFrame, source: str, traits: list[str], *, split: str | None = "train") -> pd.DataFrame:
    """(trait, level, text) rows from a source: ``corpus`` = the processed trait corpus (a post counts for a trait
    when its ``{trait}_level`` is high or low; only ``split`` rows), ``dialogues`` = the generated dataset's replies."""
    if source == "corpus":
        rows = frame if split is None or "split" not in frame else frame[frame["split"] == split]
        parts = []
        for t in traits:
            col = f"{t}_level"
            if col not in rows:
                raise KeyError(f"the corpus has no {col!r} column (columns: {', '.join(rows.columns)})")
            sel = rows[rows[col].isin(["high", "low"])]
            parts.append(pd.DataFrame({"trait": t, "level": sel[col].to_numpy(), "text": sel["message"].astype(str).to_numpy()}))
        return pd.concat(parts, ignore_index=True)
    if source == "dialogues":
        sel = frame[frame["trait"].isin(traits) & frame["level"].isin(["high", "low"])]
        return pd.DataFrame({"trait": sel["trait"].to_numpy(), "level": sel["level"].to_numpy(), "text": sel["train_output"].astype(str).to_numpy()})
    raise ValueError(f"unknown steering source {source!r} (corpus | dialogues)")


def contrastive_sets(texts: pd.DataFrame, traits: list[str], n_pairs: int, seed: int) -> dict[str, tuple[list[str], list[str]]]:
    """Per trait, ``n_pairs`` high and ``n_pairs`` low texts drawn without replacement (seeded; fewer when the source
    has fewer, never fewer than 2 of each)."""
    out = {}
    for k, t in enumerate(traits):
        sides = []
        for level in ("high", "low"):
            pool = texts[(texts["trait"] == t) & (texts["level"] == level)]["text"].drop_duplicates()
            if len(pool) < 2:
                raise ValueError(f"steering needs at least 2 {level}-{t} texts; the source has {len(pool)}")
            rng = np.random.default_rng([seed, k, LEVEL_SIGN[level] > 0])
            sides.append(pool.iloc[rng.permutation(len(pool))[:n_pairs]].tolist())
        out[t] = (sides[0], sides[1])
    return out


@torch.no_grad()
def residual_means(model: Any, tok: Any, texts: list[str], layers: list[int], *, batch_size: int = 16, max_length: int = 128,
                   progress: Any = None) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """(per-text mean activation ``[n, len(layers), hidden]``, per-text mean token norm ``[n, len(layers)]``) in
    float32; right padding, so every text's positions start at 0."""
    side, tok.padding_side = tok.padding_side, "right"
    means, norms = [], []
    try:
        with reading(model, layers, stop=True) as seen:
            for start in range(0, len(texts), batch_size):
                enc = tok(texts[start : start + batch_size], return_tensors="pt", padding=True, truncation=True, max_length=max_length)
                enc = enc.to(next(model.parameters()).device)
                try:  # the layers above the deepest read one are not run
                    model(**enc, use_cache=False)
                except StopForward:
                    pass
                mask = enc["attention_mask"].clone().float()
                mask[:, 0] = 0.0  # the attention sink
                mask = mask / mask.sum(1, keepdim=True).clamp(min=1.0)
                acts = torch.stack([seen[layer].float() for layer in layers], 1)  # [b, L, t, h]
                means.append(torch.einsum("blth,bt->blh", acts, mask).cpu())
                norms.append(torch.einsum("blt,bt->bl", acts.norm(dim=-1), mask).cpu())
                if progress is not None:
                    progress.update(len(enc["input_ids"]))
    finally:
        tok.padding_side = side
    return torch.cat(means), torch.cat(norms)


def learn_vectors(model: Any, tok: Any, sets: dict[str, tuple[list[str], list[str]]], layers: list[int], *, batch_size: int = 16,
                  max_length: int = 128, meta: dict[str, Any] | None = None, progress: Any = None) -> TraitVectors:  # fmt: skip
    """One unit direction per trait and layer (mean high minus mean low) and the layers' typical residual norms."""
    directions, all_norms, separation = {}, [], {}
    for trait, (high, low) in sets.items():
        m, n = residual_means(model, tok, high + low, layers, batch_size=batch_size, max_length=max_length, progress=progress)
        diff = m[: len(high)].mean(0) - m[len(high) :].mean(0)  # [L, h]
        directions[trait] = diff / diff.norm(dim=-1, keepdim=True).clamp(min=1e-12)
        all_norms.append(n)
        proj = torch.einsum("nlh,lh->nl", m, directions[trait])  # how far apart the two sides sit along the direction
        separation[trait] = [round(float((proj[: len(high), i].mean() - proj[len(high) :, i].mean()) / proj[:, i].std().clamp(min=1e-12)), 3)
                             for i in range(len(layers))]  # fmt: skip
    norms = torch.cat(all_norms).mean(0)
    info = {"n_texts": {t: [len(h), len(lo)] for t, (h, lo) in sets.items()}, "separation_sd": separation} | (meta or {})
    return TraitVectors(list(layers), directions, norms, info)
