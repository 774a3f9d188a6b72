"""The trait classifier: an encoder with five separate regression heads (docs/paper.md §2.3).

The study put five ``RobertaClassificationHead`` regression heads (dense, tanh, dropout, one output) on
roberta-large's first token and trained them on ``norm.cdf(z)`` with the mean of the five MSEs. Here the
encoder is any ``AutoModel`` encoder; pooling is the first token (the study's) or the attention-masked mean
(what sentence encoders such as all-MiniLM-L6-v2 were trained for).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from big5chat.traits import TRAITS

Pooling = Literal["cls", "mean"]
HEADS_FILE = "heads.safetensors"
CONFIG_FILE = "classifier.json"


class RegressionHead(nn.Module):
    """dropout -> dense -> tanh -> dropout -> one output, as RobertaClassificationHead with num_labels=1."""

    def __init__(self, hidden: int, dropout: float):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.dense = nn.Linear(hidden, hidden)
        self.out_proj = nn.Linear(hidden, 1)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        x = self.dropout(pooled)
        x = torch.tanh(self.dense(x))
        x = self.dropout(x)
        return self.out_proj(x).squeeze(-1)


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, how: Pooling) -> torch.Tensor:
    if how == "cls":
        return hidden[:, 0]
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)


class TraitClassifier(nn.Module):
    """encoder + one regression head per trait; forward returns predictions of shape (batch, n_traits)."""

    def __init__(self, encoder: nn.Module, traits: tuple[str, ...] = TRAITS, pooling: Pooling = "mean", dropout: float = 0.1):
        super().__init__()
        self.encoder = encoder
        self.traits = tuple(traits)
        self.pooling: Pooling = pooling
        hidden = encoder.config.hidden_size
        self.heads = nn.ModuleDict({t: RegressionHead(hidden, dropout) for t in self.traits})

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        out = self.encoder(input_ids=input_ids, attention_mask=attention_mask)
        pooled = pool(out.last_hidden_state, attention_mask, self.pooling)
        return torch.stack([self.heads[t](pooled) for t in self.traits], dim=-1)


def freeze_lower_layers(encoder: nn.Module, n: int) -> None:
    """Freeze the embeddings and the first ``n`` transformer layers of a BERT-style encoder (``embeddings``,
    ``encoder.layer``); 0 freezes nothing. Backward then stops at layer ``n``: less compute per step."""
    if n <= 0:
        return
    layers = getattr(getattr(encoder, "encoder", None), "layer", None)
    if layers is None or not hasattr(encoder, "embeddings"):
        raise ValueError(f"frozen_layers = {n}: {type(encoder).__name__} has no embeddings / encoder.layer to freeze")
    if n > len(layers):
        raise ValueError(f"frozen_layers = {n}, but the encoder has {len(layers)} layers")
    for module in (encoder.embeddings, *layers[:n]):
        module.requires_grad_(False)


def masked_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over traits of each trait's MSE; NaN targets (an unlabelled trait) are left out.

    With every target present this is exactly the study's loss, mean of the five MSEs.
    """
    mask = ~torch.isnan(target)
    sq = torch.where(mask, (pred - torch.nan_to_num(target)) ** 2, torch.zeros_like(pred))
    per_trait = sq.sum(0) / mask.sum(0).clamp(min=1)
    present = mask.any(0)
    return per_trait[present].mean()


def save(model: TraitClassifier, tokenizer: Any, folder: Path, extra: dict[str, Any]) -> None:
    """Encoder (safetensors) + heads (safetensors) + classifier.json + tokenizer in one folder."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    model.encoder.save_pretrained(str(folder), safe_serialization=True)
    tokenizer.save_pretrained(str(folder))
    heads = {k: v.detach().cpu().contiguous() for k, v in model.heads.state_dict().items()}
    save_file(heads, str(folder / HEADS_FILE))
    meta = {"traits": list(model.traits), "pooling": model.pooling, **extra}
    (folder / CONFIG_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


def load(folder: str | Path) -> tuple[TraitClassifier, Any, dict[str, Any]]:
    """(classifier in eval mode, tokenizer, its classifier.json) through the loading policy."""
    from safetensors.torch import load_file

    from big5chat.models.loading import ModelLoadError, load_encoder, load_tokenizer, model_device

    folder = Path(folder)
    meta_file = folder / CONFIG_FILE
    if not meta_file.is_file() or not (folder / HEADS_FILE).is_file():
        raise ModelLoadError(f"{folder}: not a trait classifier (needs {CONFIG_FILE} and {HEADS_FILE}; run train_classifier)")
    meta = json.loads(meta_file.read_text(encoding="utf-8"))
    model = TraitClassifier(load_encoder(folder), tuple(meta["traits"]), meta["pooling"])
    model.heads.load_state_dict(load_file(str(folder / HEADS_FILE)))
    model.heads.to(model_device(model.encoder))
    return model.eval(), load_tokenizer(folder), meta
