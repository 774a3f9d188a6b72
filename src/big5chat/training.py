"""Shared pieces of the LM training stages (experts, SFT, DPO): LoRA settings, TRL's configs from a params section,
loss curves, TRL SFT and DPO runs."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from transformers import TrainerCallback

from big5chat import paths
from big5chat.models.loading import stage_device
from big5chat.storage import write_dir, write_text

if TYPE_CHECKING:
    from trl import DPOConfig, SFTConfig

CURVE_FIELDS = ("step", "epoch", "loss", "learning_rate", "grad_norm")


def lora_config(p: Any, task_type: str = "CAUSAL_LM", model: Any = None) -> Any:
    """A peft LoraConfig from config.LoraParams. ``p.upper_share`` < 1 adapts only the linear layers of the top
    share of ``model``'s decoder layers, named one by one (PEFT takes no layer range with "all-linear")."""
    import re

    import torch
    from peft import LoraConfig

    targets: Any = "all-linear" if p.target_modules == "all-linear" else [m.strip() for m in p.target_modules.split(",") if m.strip()]
    if getattr(p, "upper_share", 1.0) < 1.0:
        n_layers = getattr(getattr(model, "config", None), "num_hidden_layers", None)
        if not n_layers:
            raise ValueError(f"lora.upper_share = {p.upper_share} needs the model's decoder layer count (config.num_hidden_layers)")
        first, wanted = n_layers - max(1, round(p.upper_share * n_layers)), targets

        def adapted(name: str, module: Any) -> bool:
            layer = re.search(r"\.layers\.(\d+)\.", name)
            kind_ok = wanted == "all-linear" or name.rsplit(".", 1)[-1] in wanted
            return isinstance(module, torch.nn.Linear) and layer is not None and int(layer.group(1)) >= first and kind_ok

        targets = [name for name, module in model.named_modules() if adapted(name, module)]
    return LoraConfig(r=p.r, lora_alpha=p.alpha, lora_dropout=p.dropout, target_modules=targets, task_type=task_type)


class LossCurve(TrainerCallback):
    """Collects the trainer's logged losses; ``write(path)`` saves them as a CSV that `dvc plots` shows."""

    def __init__(self, fields: tuple[str, ...] = CURVE_FIELDS):
        self.fields = fields
        self.rows: list[dict[str, Any]] = []

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if logs and "loss" in logs:
            row = {"step": state.global_step, "epoch": round(float(state.epoch or 0.0), 4)}
            row.update({k: logs.get(k) for k in self.fields if k not in row})
            self.rows.append(row)

    def write(self, path: str | Path) -> Path:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(self.fields), lineterminator="\n", extrasaction="ignore")
        writer.writeheader()
        for row in self.rows:
            writer.writerow({k: (round(v, 6) if isinstance(v, float) else v) for k, v in row.items()})
        return write_text(path, buf.getvalue())


def scratch_dir(name: str) -> Path:
    """Trainer working folders (checkpoints, logs) live outside every DVC output."""
    d = paths.SCRATCH / "trainer" / name
    d.mkdir(parents=True, exist_ok=True)
    return d


# A params section's training fields (config.TrainSftConfig, TrainDpoConfig, TrainExpertsConfig) under the names of
# TRL's SFTConfig/DPOConfig (transformers' TrainingArguments): the one place they are mapped. A section's other fields
# decide the records (placement, val_size, max_records, min_abs_z, design) or the adapter (lora, method).
TRL_FIELDS = {
    "learning_rate": "learning_rate",
    "epochs": "num_train_epochs",
    "max_steps": "max_steps",  # experts have none: TRL's default, -1 (as many steps as the epochs take)
    "batch_size": "per_device_train_batch_size",
    "grad_accum": "gradient_accumulation_steps",
    "max_length": "max_length",
    "scheduler": "lr_scheduler_type",
    "warmup_steps": "warmup_steps",
    "bf16": "bf16",
    "seed": "seed",
    "beta": "beta",  # DPO
    "loss_type": "loss_type",  # DPO (TRL takes a list of losses; one name is a list of one)
}
# What every run sets alike: the loss logged at every step (the curve), no checkpoints, no evaluation during
# training (the stage evaluates once at the end), no reports to trackers, data loading in the main process.
FIXED_ARGS = dict(logging_steps=1, save_strategy="no", report_to=[], gradient_checkpointing=False, dataloader_num_workers=0,
                  disable_tqdm=False, eval_strategy="no")  # fmt: skip


def trl_config(kind: Literal["sft", "dpo"], params: Any, run_name: str, **overrides: Any) -> SFTConfig | DPOConfig:
    """TRL's ``SFTConfig`` (``kind`` sft) or ``DPOConfig`` (dpo) from a params section, as the TRL scripts pass it to
    their trainers: the section's fields under TRL's names (``TRL_FIELDS``), the fixed settings (``FIXED_ARGS``), the
    data order seeded like the rest (``data_seed`` = ``seed``), the trainer's working folder in ``scratch_dir(run_name)``
    and the CPU when the stage runs there. SFT takes the loss on the completion only. ``overrides`` are TRL fields
    (e.g. ``per_device_train_batch_size`` in a benchmark)."""
    from trl import DPOConfig, SFTConfig

    fields = {theirs: getattr(params, ours) for ours, theirs in TRL_FIELDS.items() if hasattr(params, ours)}
    fields |= dict(output_dir=str(scratch_dir(run_name)), data_seed=params.seed, use_cpu=stage_device() == "cpu", **FIXED_ARGS)
    if kind == "sft":
        fields["completion_only_loss"] = True
    return (SFTConfig if kind == "sft" else DPOConfig)(**(fields | overrides))


def sft_train(
    model_dir: str | Path,
    chats: list[dict[str, Any]],
    out_dir: str | Path,
    args: SFTConfig,
    *,
    lora: Any | None = None,
    dtype: str | None = None,  # default: the model card's (models.base.dtype at prepare_models)
    eval_chats: list[dict[str, Any]] | None = None,
    model_loss: bool | None = None,
) -> dict[str, Any]:
    """Supervised fine-tuning on prompt/completion chats (loss on the completion only) with TRL's SFTTrainer and
    ``args``, TRL's ``SFTConfig`` (``trl_config("sft", ...)``).

    ``lora`` (config.LoraParams) trains an adapter, None the full model. The adapter (or model) and the tokenizer
    are saved to ``out_dir`` by the main process; returns the loss curve, trainer metrics and, with
    ``eval_chats``, the eval loss at the end. ``model_loss`` (default: on CPU) takes the loss from the model's own
    forward instead of TRL's fused LM head (``ModelLossSFTTrainer``).
    """
    from datasets import Dataset
    from trl import SFTTrainer

    if model_loss is None:
        model_loss = stage_device() == "cpu"
    trainer_class = model_loss_sft_trainer() if model_loss else SFTTrainer

    from big5chat.models.loading import load_chat_model

    model, tok = load_chat_model(model_dir, dtype=dtype, padding_side="right")
    curve = LossCurve()
    trainer = trainer_class(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(_chat_fields(chats, ("prompt", "completion"))),
        eval_dataset=Dataset.from_list(_chat_fields(eval_chats, ("prompt", "completion"))) if eval_chats else None,
        processing_class=tok,
        peft_config=lora_config(lora, model=model) if lora is not None else None,
        callbacks=[curve],
    )
    return _train_and_save(trainer, tok, out_dir, curve, bool(eval_chats))


def model_loss_sft_trainer() -> type:
    """TRL's SFTTrainer with the loss of the model's own forward (transformers' ``Trainer.compute_loss``).

    TRL computes the SFT loss through a fused, tiled LM head, which saves GPU memory on large vocabularies. Without
    Triton (on CPU) the head scores every position, prompt included, accumulates in float32 and recomputes the
    logits in backward: here a LoRA step of the 135M model is 1.3x slower that way than with the model's own loss,
    at the same loss (``bench/sft_loss.py``; ``tests/test_experts.py``). Only TRL's logged entropy and token accuracy
    are lost; labels, completion masking and the data pipeline are TRL's.
    """
    from transformers import Trainer
    from trl import SFTTrainer

    class ModelLossSFTTrainer(SFTTrainer):  # type: ignore[misc]
        def compute_loss(self, model: Any, inputs: Any, return_outputs: bool = False, num_items_in_batch: Any = None) -> Any:
            return Trainer.compute_loss(self, model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch)

    return ModelLossSFTTrainer


def dpo_train(
    model_dir: str | Path,
    pairs: list[dict[str, Any]],
    out_dir: str | Path,
    args: DPOConfig,
    *,
    lora: Any,
    dtype: str | None = None,  # default: the model card's (models.base.dtype at prepare_models)
    eval_pairs: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """DPO on prompt/chosen/rejected chats with TRL's DPOTrainer, ``args`` (TRL's ``DPOConfig``,
    ``trl_config("dpo", ...)``) and a LoRA adapter; the reference model is the same model with the adapter disabled
    (no second copy in memory)."""
    from datasets import Dataset
    from trl import DPOTrainer

    from big5chat.models.loading import load_chat_model

    model, tok = load_chat_model(model_dir, dtype=dtype, padding_side="right")
    curve = LossCurve(fields=(*CURVE_FIELDS, "rewards/accuracies", "rewards/margins"))
    fields = ("prompt", "chosen", "rejected")
    trainer = DPOTrainer(
        model=model,
        ref_model=None,
        args=args,
        train_dataset=Dataset.from_list(_chat_fields(pairs, fields)),
        eval_dataset=Dataset.from_list(_chat_fields(eval_pairs, fields)) if eval_pairs else None,
        processing_class=tok,
        peft_config=lora_config(lora, model=model),
        callbacks=[curve],
    )
    return _train_and_save(trainer, tok, out_dir, curve, bool(eval_pairs))


def _chat_fields(records: list[dict[str, Any]] | None, fields: tuple[str, ...]) -> list[dict[str, Any]]:
    """Only the conversational fields the trainers read (extra bookkeeping columns stay out)."""
    return [{k: r[k] for k in fields} for r in records or []]


def _train_and_save(trainer: Any, tok: Any, out_dir: str | Path, curve: LossCurve, evaluate: bool) -> dict[str, Any]:
    result = trainer.train()
    eval_metrics = trainer.evaluate() if evaluate else {}
    if trainer.is_world_process_zero():  # written whole or not at all: a crash never leaves a finished-looking folder
        write_dir(out_dir, lambda tmp: (trainer.model.save_pretrained(str(tmp), safe_serialization=True), tok.save_pretrained(str(tmp))))
    return {"curve": curve, "metrics": dict(result.metrics), "eval": dict(eval_metrics), "steps": result.global_step, "trainer": trainer}


def save_run_config(out_dir: str | Path, config: dict[str, Any]) -> Path:
    """The exact settings beside the trained weights (train_config.json)."""
    return write_text(Path(out_dir, "train_config.json"), json.dumps(config, indent=2, default=str) + "\n")
