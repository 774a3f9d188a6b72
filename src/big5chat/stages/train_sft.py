"""The train_sft stage: one LoRA model for all traits, SFT'd on the dialogue dataset (the paper, §2.6).

The trait instruction in the user turn (the study's Alpaca records) or as the system turn, turn 0 as the user
message, the reply as the assistant turn, loss on the reply only (``alignment.data.sft_records``). Writes
data/models/sft, the loss curve, a few greedy replies of the trained model at high and at low
(reports/train_sft/examples.csv), the metrics and the run record (``alignment.stage``, shared with train_dpo).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from big5chat import paths, storage
from big5chat import runtime as rt
from big5chat.alignment import stage
from big5chat.alignment.data import Placement, prompt_messages
from big5chat.prompts import trait_system_prompt
from big5chat.traits import LEVELS

EXAMPLES_CSV = ("train_sft", "examples.csv")  # below paths.REPORTS
EXAMPLE_TOKENS = 48


@dataclass(frozen=True)
class TrainSftResult:
    counts: dict[str, int]  # records built, dropped (and why), train/eval split
    preview: pd.DataFrame  # the first training records, shortened
    curve: pd.DataFrame  # loss per step
    examples: pd.DataFrame  # the trained model's greedy replies: trait, level, turn0, reply
    metrics: dict[str, Any]
    outputs: dict[str, Path]


def example_turn0s(evals: list[dict[str, Any]], placement: Placement, n: int = 1) -> list[str]:
    """The first ``n`` distinct turn 0s of the held-out records (the user turn without the trait instruction)."""
    turn0s = [r["prompt"][-1]["content"].split("\n", 1)[-1] if placement == "user" else r["prompt"][-1]["content"] for r in evals]
    return pd.Series(turn0s).drop_duplicates().head(n).tolist()


def example_jobs(traits: list[str], turn0s: list[str]) -> list[tuple[str, str, str]]:
    """(trait, level, turn 0): every turn 0 at high and at low for each trait."""
    return [(t, lvl, u) for t in traits for u in turn0s for lvl in LEVELS]


def examples_table(jobs: list[tuple[str, str, str]], replies: list[str]) -> pd.DataFrame:
    return pd.DataFrame([{"trait": t, "level": lvl, "turn0": u[:80], "reply": r} for (t, lvl, u), r in zip(jobs, replies)])


def generate_examples(traits: list[str], evals: list[dict[str, Any]], placement: Placement, record: dict[str, Any]) -> pd.DataFrame:
    """The SFT model (the base with the new adapter) answering one held-out turn 0 per trait at high and at low,
    greedily (its wall time in ``record["examples_s"]``)."""
    from big5chat.generation.chat import generate_chat
    from big5chat.models.adapters import load_adapters
    from big5chat.models.loading import load_chat_model

    base, tok = load_chat_model(paths.MODELS / "base")
    model = load_adapters(base, {"sft": paths.MODELS / "sft"})
    jobs = example_jobs(traits, example_turn0s(evals, placement))
    with rt.timed(record, "examples_s"):
        replies = generate_chat(
            model, tok, [prompt_messages(trait_system_prompt(t, lvl), u, placement) for t, lvl, u in jobs], max_new_tokens=EXAMPLE_TOKENS
        )
    return examples_table(jobs, replies)


def run(cfg: dict[str, Any]) -> TrainSftResult:
    """The stage: ``cfg`` holds the ``traits``, ``train_sft``, ``compute`` and ``runtime`` sections (``config.stage_config``)."""
    trained = stage.train("sft", cfg)
    examples = generate_examples(list(cfg["traits"]), trained.built.eval, cfg["train_sft"].placement, trained.record)
    examples_file = storage.write_csv(paths.REPORTS.joinpath(*EXAMPLES_CSV), examples)
    metrics, outputs = stage.finish(trained)
    return TrainSftResult(
        trained.built.counts, stage.preview("sft", trained.train), trained.curve, examples, metrics, outputs | {"examples": examples_file}
    )
