"""Training loop of the trait classifier: AdamW, linear warmup and decay, best epoch by validation loss."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from big5chat.classifier.model import TraitClassifier, freeze_lower_layers, masked_mse
from big5chat.classifier.scoring import predict_with


@dataclass
class Examples:
    texts: list[str]
    targets: np.ndarray  # (n, n_traits), NaN where a trait is unlabelled

    def __post_init__(self) -> None:
        if len(self.texts) != len(self.targets):
            raise ValueError(f"{len(self.texts)} texts but {len(self.targets)} target rows")
        if len(self.texts) == 0:
            raise ValueError("no examples")


@dataclass
class TrainResult:
    model: TraitClassifier
    tokenizer: Any
    history: list[dict[str, float]]  # one row per optimizer step
    epochs: list[dict[str, float]]  # one row per epoch (train and validation loss)
    best_epoch: int


def _param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim < 2 or "LayerNorm" in name or "layer_norm" in name else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _loss_on(model: TraitClassifier, tok: Any, data: Examples, max_length: int, batch_size: int) -> float:
    pred = torch.from_numpy(predict_with(model, tok, data.texts, max_length, batch_size))
    return float(masked_mse(pred, torch.from_numpy(data.targets.astype(np.float32))))


def train(
    encoder_dir: str | Path,
    train_data: Examples,
    val_data: Examples | None,
    *,
    traits: tuple[str, ...],
    pooling: str,
    dropout: float,
    max_length: int,
    batch_size: int,
    epochs: int,
    learning_rate: float,
    weight_decay: float,
    warmup_ratio: float,
    seed: int,
    max_steps: int | None = None,
    on_step: Callable[[dict[str, float]], None] | None = None,
    group_by_length: bool = False,
    frozen_layers: int = 0,
) -> TrainResult:
    """Train encoder + heads on (texts, cdf targets); keeps the epoch with the lowest validation loss.

    ``group_by_length`` batches posts of similar length together (transformers' ``LengthGroupedSampler``: seeded
    mega-batches sorted by length), so that short posts are not padded to the longest one in a random batch.
    """
    from transformers import get_linear_schedule_with_warmup
    from transformers.trainer_pt_utils import LengthGroupedSampler

    from big5chat.models.loading import load_encoder, load_tokenizer, model_device
    from big5chat.progress import progress

    torch.manual_seed(seed)
    tok = load_tokenizer(encoder_dir)
    model = TraitClassifier(load_encoder(encoder_dir), traits, pooling, dropout)  # type: ignore[arg-type]
    freeze_lower_layers(model.encoder, frozen_layers)
    device = model_device(model.encoder)
    model.to(device).train()
    enc = tok(train_data.texts, truncation=True, max_length=max_length)
    targets = torch.from_numpy(train_data.targets.astype(np.float32))
    n = len(train_data.texts)
    steps_per_epoch = math.ceil(n / batch_size)
    total = steps_per_epoch * epochs if max_steps is None else min(max_steps, steps_per_epoch * epochs)
    opt = torch.optim.AdamW(_param_groups(model, weight_decay), lr=learning_rate)
    sched = get_linear_schedule_with_warmup(opt, int(round(warmup_ratio * total)), total)
    gen = torch.Generator().manual_seed(seed)
    history: list[dict[str, float]] = []
    epoch_rows: list[dict[str, float]] = []
    best: tuple[float, int, dict[str, torch.Tensor]] | None = None
    step = 0
    bar = progress(total=total, desc="train_classifier")
    for epoch in range(1, epochs + 1):
        if group_by_length:
            perm = list(LengthGroupedSampler(batch_size, lengths=[len(x) for x in enc["input_ids"]], generator=gen))
        else:
            perm = torch.randperm(n, generator=gen).tolist()
        losses = []
        for start in range(0, n, batch_size):
            if step >= total:
                break
            idx = perm[start : start + batch_size]
            batch = tok.pad({k: [enc[k][i] for i in idx] for k in ("input_ids", "attention_mask")}, return_tensors="pt")
            pred = model(batch["input_ids"].to(device), batch["attention_mask"].to(device))
            loss = masked_mse(pred, targets[idx].to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            step += 1
            value = loss.item()
            losses.append(value)
            row = {"step": step, "epoch": epoch, "loss": round(value, 6), "lr": sched.get_last_lr()[0]}
            history.append(row)
            if on_step:
                on_step(row)
            bar.update(1)
        row = {"epoch": epoch, "train_loss": round(float(np.mean(losses)), 6) if losses else float("nan")}
        if val_data is not None:
            row["val_loss"] = round(_loss_on(model, tok, val_data, max_length, 2 * batch_size), 6)
            if best is None or row["val_loss"] < best[0]:
                best = (row["val_loss"], epoch, copy.deepcopy(model.state_dict()))
        epoch_rows.append(row)
        if step >= total:
            break
    bar.close()
    best_epoch = epoch_rows[-1]["epoch"]
    if best is not None:
        model.load_state_dict(best[2])
        best_epoch = best[1]
    model.eval()
    return TrainResult(model, tok, history, epoch_rows, int(best_epoch))
