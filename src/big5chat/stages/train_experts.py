"""The train_experts stage: the expert generators of one trait (the paper, §2.2), SFT'd from the base LM.

Records in the study's format (``experts.data``): instruction ``Help me complete the sentence with certain Big Five
Personality: {Trait} - {high|low}``, input = the first 5 words of a post, output = the rest; loss on the output only.
``design: per_level`` trains one adapter per level on that level's records (DExperts' expert and anti-expert),
``single`` (the study's) one expert on both levels. Each training is a run file (``training_run.train_expert``) run
in this process or under the configured launcher. Writes data/models/experts/<trait>/, the loss curves, the
metrics and the run record.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from big5chat import paths, storage, training
from big5chat import runtime as rt
from big5chat.config import to_dict
from big5chat.experts.data import build_expert_records, to_chat
from big5chat.training_run import launch_training
from big5chat.traits import LEVELS, normalize_trait

BASE = "expert_base"  # below paths.MODELS


@dataclass(frozen=True)
class TrainExpertsResult:
    trait: str
    counts: dict[str, int]  # posts, records, and why the others were dropped
    records: pd.DataFrame  # the training records: level, input (the first 5 words), output (the rest)
    curve: pd.DataFrame  # the loss per step of each expert (column ``expert``: high, low or all)
    metrics: dict[str, Any]
    outputs: dict[str, Path]


def expert_runs(records: list[dict[str, Any]], design: str) -> dict[str | None, list[dict[str, Any]]]:
    """One run per expert: the trait's single expert on every record (key None), or one per level on its records."""
    if design == "single":
        return {None: records}
    return {lvl: [r for r in records if r["level"] == lvl] for lvl in LEVELS}


def expert_key(level: str | None) -> str:
    """An expert's name in the curves, metrics and run record: its level, or ``all`` for the single expert."""
    return level or "all"


def expert_name(trait: str, level: str | None) -> str:
    """An expert's name in the scratch folders and trainer runs: ``openness`` or ``openness_high``."""
    return trait if level is None else f"{trait}_{level}"


def curve_metrics(curve: pd.DataFrame, result: dict[str, Any]) -> dict[str, Any]:
    """Steps, the first loss, the mean of the last 5 logged losses and the trainer's mean train loss."""
    loss = curve["loss"].astype(float)
    return {"steps": result["steps"], "loss_first": round(float(loss.iloc[0]), 4), "loss_last": round(float(loss.tail(min(5, len(loss))).mean()), 4),
            "train_loss": round(float(result["train"].get("train_loss", float("nan"))), 4)}  # fmt: skip


def experts_metrics(design: str, counts: dict[str, int], curves: dict[str, pd.DataFrame], results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The stage's metrics: the design, the record counts and each expert's curve metrics (the single expert's at the top)."""
    if design == "single":
        per_expert = curve_metrics(curves["all"], results["all"])
    else:
        per_expert = {lvl: curve_metrics(curves[lvl], results[lvl]) for lvl in LEVELS}
    return {"design": design, "records": counts, **per_expert, "world_size": max(r["world_size"] for r in results.values())}


def train_one(
    trait: str, level: str | None, records: list[dict[str, Any]], out_dir: Path, e: Any, compute: Any, record: dict[str, Any]
) -> tuple[dict[str, Any], pd.DataFrame]:
    """One expert (``level`` None: the single expert in ``out_dir``; else the level's in ``out_dir/level``)."""
    name, key = expert_name(trait, level), expert_key(level)
    work = paths.SCRATCH / "train_experts" / name
    result, curve = launch_training(
        "expert", work, model_dir=paths.MODELS / BASE, out_dir=out_dir if level is None else out_dir / level, train=[to_chat(r) for r in records],
        evals=[], curve_file=paths.SCRATCH / "train_experts" / f"{name}_curve.csv", params=e, run_name=f"expert_{name}", compute=compute,
        record=record, timer=f"train_{key}_s",
    )  # fmt: skip
    return result, curve.assign(expert=key)


def run(cfg: dict[str, Any]) -> TrainExpertsResult:
    """The stage: ``cfg`` holds the ``train_experts``, ``compute`` and ``runtime`` sections (``config.stage_config``)
    and ``item``, the trait (dvc.yaml's foreach)."""
    trait = normalize_trait(cfg.get("item") or "openness")
    e = cfg["train_experts"]
    env = rt.setup(cfg["runtime"].threads, seed=e.seed)
    posts = pd.read_csv(paths.PROCESSED / "posts.csv", keep_default_na=False, dtype={"message_id": str})
    built = build_expert_records(posts, trait, split="train", min_abs_z=e.min_abs_z, max_records=e.max_records, seed=e.seed)
    print(trait, e.design, built.counts)
    record: dict[str, Any] = {}
    out_dir = paths.MODELS / "experts" / trait
    shutil.rmtree(out_dir, ignore_errors=True)  # a design switch must not leave the other design's experts behind
    results, curves = {}, {}
    for level, records in expert_runs(built.records, e.design).items():
        results[expert_key(level)], curves[expert_key(level)] = train_one(trait, level, records, out_dir, e, cfg["compute"], record)
    record["train_s"] = round(sum(v for k, v in record.items() if k.startswith("train_") and k.endswith("_s")), 2)
    world_size = max(r["world_size"] for r in results.values())
    training.save_run_config(out_dir, {"trait": trait, "design": e.design, "base": str(paths.relative(paths.MODELS / BASE)),
                                       **to_dict(e), "counts": built.counts, "world_size": world_size})  # fmt: skip
    curve = pd.concat(list(curves.values()), ignore_index=True)
    curve_file = storage.write_csv(paths.REPORTS / "plots" / "train_experts" / f"{trait}.csv", curve)
    for key, c in curves.items():
        print(f"{key}: {results[key]['steps']} steps; loss {c['loss'].iloc[0]:.3f} -> {c['loss'].tail(3).mean():.3f}")
    print(f"{record['train_s']} s in all")
    metrics = experts_metrics(e.design, built.counts, curves, results)
    metrics_file = storage.write_json(paths.METRICS / "train_experts" / f"{trait}.json", metrics)
    samples_per_s = {k: r["train"].get("train_samples_per_second") for k, r in results.items()}
    run_record = rt.write_run_record(f"train_experts@{trait}", record | {"train_samples_per_second": samples_per_s}, env)
    records_table = pd.DataFrame(built.records, columns=["message_id", "level", "instruction", "input", "output"])[["level", "input", "output"]]
    return TrainExpertsResult(trait, built.counts, records_table, curve, metrics, {
        "experts": out_dir, "curve": curve_file, "metrics": metrics_file, "run_record": run_record})  # fmt: skip
