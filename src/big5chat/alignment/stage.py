"""What the train_sft and train_dpo stages share: the dialogue records, the training run, the metrics and the record.

Both read the BIG5-CHAT dialogues of the study's traits, build SFT records or DPO pairs (``alignment.data``), take a
seeded subset balanced over trait x level, and train a LoRA adapter of the base model through a run file
(``training_run``: in this process, or under ``accelerate launch``/``torchrun`` when ``compute.launcher`` says so).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from big5chat import paths, storage
from big5chat import runtime as rt
from big5chat.alignment.data import Built, dpo_pairs, sft_records, subsample
from big5chat.training_run import SECTION, launch_training

Kind = Literal["sft", "dpo"]
DIALOGUES = ("generated", "big5chat.csv")  # below paths.DATA
NOUN = {"sft": "records", "dpo": "pairs"}  # what one training example is called in the messages and the metrics


@dataclass(frozen=True)
class Trained:
    """One SFT or DPO training: the records, the run's result and loss curve, the wall times so far."""

    kind: Kind
    built: Built  # every record (train and eval split) and the counts of what was dropped
    train: list[dict[str, Any]]  # the subset trained on
    result: dict[str, Any]  # steps, trainer metrics (train, eval), world size
    curve: pd.DataFrame  # the logged loss per step
    record: dict[str, Any]  # wall times (the run record)
    env: dict[str, Any]  # what runtime.setup set


def read_dialogues(traits: list[str]) -> pd.DataFrame:
    """The dialogue dataset's rows of ``traits`` (generate_dialogues' output)."""
    dialogues = pd.read_csv(paths.DATA.joinpath(*DIALOGUES), keep_default_na=False)
    return dialogues[dialogues["trait"].isin(traits)]


def build_records(kind: Kind, dialogues: pd.DataFrame, p: Any) -> tuple[Built, list[dict[str, Any]]]:
    """SFT records or DPO pairs of the dialogues, and the seeded subset of ``p.max_records`` that is trained on."""
    build = sft_records if kind == "sft" else dpo_pairs
    built = build(dialogues, placement=p.placement, val_size=p.val_size, seed=p.seed)
    return built, subsample(built.train, p.max_records, p.seed)


def preview(kind: Kind, train: list[dict[str, Any]], n: int = 3) -> pd.DataFrame:
    """The first ``n`` training examples, shortened: the prompt's last turn and the reply (SFT) or both replies (DPO)."""
    if kind == "sft":
        return pd.DataFrame([{"prompt": r["prompt"][-1]["content"][:160], "reply": r["completion"][0]["content"][:120]} for r in train[:n]])
    return pd.DataFrame([{"prompt": r["prompt"][-1]["content"][:120], "chosen": r["chosen"][0]["content"][:80],
                          "rejected": r["rejected"][0]["content"][:80]} for r in train[:n]])  # fmt: skip


def summary(kind: Kind, result: dict[str, Any], curve: pd.DataFrame, train_s: float) -> str:
    """Steps, wall time, the loss at the start and over the last 5 steps, and the eval numbers of the kind."""
    ev = result["eval"]
    line = f"{result['steps']} steps in {train_s} s; loss {curve['loss'].iloc[0]:.3f} -> {curve['loss'].tail(5).mean():.3f}; "
    if kind == "sft":
        return line + f"eval loss {ev.get('eval_loss')}"
    return line + f"eval reward accuracy {ev.get('eval_rewards/accuracies')}, margin {ev.get('eval_rewards/margins')}"


def alignment_metrics(kind: Kind, counts: dict[str, int], used: int, result: dict[str, Any]) -> dict[str, Any]:
    """The stage's metrics: the record counts, steps, final train loss, eval loss (DPO: reward accuracy and margin)."""
    ev, nan = result["eval"], float("nan")
    metrics = {NOUN[kind]: counts | {"used": used}, "steps": result["steps"], "train_loss": round(result["train"].get("train_loss", nan), 4),
               "eval_loss": round(ev.get("eval_loss", nan), 4)}  # fmt: skip
    if kind == "dpo":
        metrics |= {
            "eval_reward_accuracy": round(ev.get("eval_rewards/accuracies", nan), 4),
            "eval_reward_margin": round(ev.get("eval_rewards/margins", nan), 4),
        }
    return metrics | {"world_size": result["world_size"]}


def train(kind: Kind, cfg: dict[str, Any]) -> Trained:
    """Seeds, records, the training run (the adapter in data/models/<kind>, the loss curve in reports/plots/)."""
    section = SECTION[kind]
    p, traits = cfg[section], list(cfg["traits"])
    env = rt.setup(cfg["runtime"].threads, seed=p.seed)
    built, train_set = build_records(kind, read_dialogues(traits), p)
    print(built.counts, f"-> {len(train_set)} training {NOUN[kind]}")
    record: dict[str, Any] = {}
    result, curve = launch_training(
        kind, paths.SCRATCH / section, model_dir=paths.MODELS / "base", out_dir=paths.MODELS / kind, train=train_set, evals=built.eval,
        curve_file=paths.REPORTS / "plots" / section / "loss.csv", params=p, run_name=kind, compute=cfg["compute"], record=record, timer="train_s",
    )  # fmt: skip
    print(summary(kind, result, curve, record["train_s"]))
    return Trained(kind, built, train_set, result, curve, record, env)


def finish(trained: Trained) -> tuple[dict[str, Any], dict[str, Path]]:
    """Write the metrics and the run record; returns the metrics and the files written."""
    section = SECTION[trained.kind]
    metrics = alignment_metrics(trained.kind, trained.built.counts, len(trained.train), trained.result)
    metrics_file = storage.write_json(paths.METRICS / f"{section}.json", metrics)
    samples_per_s = trained.result["train"].get("train_samples_per_second")
    run_record = rt.write_run_record(section, trained.record | {"train_samples_per_second": samples_per_s}, trained.env)
    return metrics, {"adapter": paths.MODELS / trained.kind, "curve": paths.REPORTS / "plots" / section / "loss.csv",
                     "metrics": metrics_file, "run_record": run_record}  # fmt: skip
