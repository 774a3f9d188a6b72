"""One training run from a JSON run file: SFT, DPO or an expert generator, in this process or under a launcher.

    python -m big5chat train-sft --config .scratch/train_sft/run.json
    python -m big5chat train-expert --config .scratch/train_experts/openness_high/run.json
    accelerate launch --config_file configs/accelerate/ddp.yaml -m big5chat train-dpo --config run.json
    torchrun --standalone --nproc_per_node 2 -m big5chat train-sft --config run.json   # 2 CPU processes (gloo)

A stage writes the records (JSONL) and a run file naming the model, the output folder and the stage's params section
(``launch_training``); the same code runs a notebook's in-process training on one CPU and a multi-GPU launch. The
params become TRL's own ``SFTConfig``/``DPOConfig`` (``training.trl_config``). The main process writes the weights
(atomically), the exact config beside them, the loss curve and a result JSON.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, ValidationError

from big5chat import runtime as rt
from big5chat import storage, training
from big5chat.config import ConfigError, stage_config, to_dict

Kind = Literal["sft", "dpo", "expert"]
SECTION = {"sft": "train_sft", "dpo": "train_dpo", "expert": "train_experts"}  # each kind's params.yaml section


class RunFile(BaseModel):
    """What one training run needs: written by the stage, read by ``python -m big5chat train-{kind}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Kind
    model_dir: str
    out_dir: str
    train_file: str  # JSONL records (prompt/completion chats; prompt/chosen/rejected pairs for DPO)
    eval_file: str  # JSONL records evaluated once at the end (empty: no evaluation)
    curve_file: str
    result_file: str
    params: dict[str, Any]  # the kind's params section, validated as that section when the run starts
    run_name: str = "align"


def write_run_file(path: str | Path, run: RunFile) -> Path:
    return storage.write_json(path, run.model_dump())


def read_run_file(path: str | Path) -> RunFile:
    """The run file at ``path``, or a ConfigError naming each bad key."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError([f"cannot read the run file: {exc}"], source=str(path)) from None
    try:
        return RunFile.model_validate(data)
    except ValidationError as exc:
        raise ConfigError([_problem(e) for e in exc.errors()], source=str(path)) from None


def _problem(error: Any) -> str:
    """One pydantic error as ``key: what is wrong``."""
    key = ".".join(str(part) for part in error["loc"]) or "<top level>"
    if error["type"] == "extra_forbidden":
        return f"{key}: unknown key (known: {', '.join(RunFile.model_fields)})"
    if error["type"] == "missing":
        return f"{key}: missing key"
    return f"{key}: {error['msg']}, got {error['input']!r}"


def section_params(run: RunFile, source: str | Path) -> Any:
    """The run's params as its kind's section (config.TrainSftConfig, TrainDpoConfig or TrainExpertsConfig)."""
    name = SECTION[run.kind]
    try:
        return stage_config(**{name: run.params})[name]
    except ConfigError as exc:
        raise ConfigError(exc.problems, source=f"{source}: params") from None


def records(run: RunFile) -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None]:
    """The run's training records and its eval records (None when there are none: no evaluation)."""
    return storage.read_jsonl(run.train_file), storage.read_jsonl(run.eval_file) or None


def train_sft(run: RunFile, p: Any) -> dict[str, Any]:
    """SFT on the dialogue records (the paper, §2.6): a LoRA adapter on prompt/completion chats."""
    args = training.trl_config("sft", p, run.run_name)
    train, evals = records(run)
    return training.sft_train(run.model_dir, train, run.out_dir, args, lora=p.lora, eval_chats=evals)


def train_dpo(run: RunFile, p: Any) -> dict[str, Any]:
    """DPO on the dialogue pairs (the paper, §2.7): a LoRA adapter, the reference being the base without it."""
    args = training.trl_config("dpo", p, run.run_name)
    train, evals = records(run)
    return training.dpo_train(run.model_dir, train, run.out_dir, args, lora=p.lora, eval_pairs=evals)


def train_expert(run: RunFile, p: Any) -> dict[str, Any]:
    """An expert generator (the paper, §2.2): SFT on "complete the sentence" records, a LoRA adapter or, with
    ``method: full``, the whole model (the study's full fine-tune, e.g. under DeepSpeed ZeRO-3)."""
    args = training.trl_config("sft", p, run.run_name)
    train, evals = records(run)
    return training.sft_train(run.model_dir, train, run.out_dir, args, lora=p.lora if p.method == "lora" else None, eval_chats=evals)


TRAIN: dict[str, Callable[[RunFile, Any], dict[str, Any]]] = {"sft": train_sft, "dpo": train_dpo, "expert": train_expert}


def execute(run_path: str | Path) -> dict[str, Any]:
    """Train as the run file says; returns the result (also written to ``result_file`` by the main process)."""
    run = read_run_file(run_path)
    p = section_params(run, run_path)
    out = TRAIN[run.kind](run, p)
    trainer = out["trainer"]
    result = {"steps": out["steps"], "train": out["metrics"], "eval": out["eval"], "world_size": trainer.args.world_size}
    if trainer.is_world_process_zero():
        out["curve"].write(run.curve_file)
        training.save_run_config(run.out_dir, {"kind": run.kind, "model_dir": run.model_dir, **to_dict(p), "world_size": trainer.args.world_size})
        storage.write_json(run.result_file, result)
    return result


def launch_command(run_path: Path, compute: Any, kind: str) -> list[str]:
    """The command that runs ``train-{kind}`` under the configured launcher (accelerate or torchrun)."""
    from big5chat.launchers import launcher_command

    return launcher_command(compute, ["-m", "big5chat", f"train-{kind}", "--config", str(run_path)])


def launch(run_path: Path, compute: Any, kind: str) -> dict[str, Any]:
    """Run in this process (``compute.launcher == 'none'``) or as a multi-process launch (non-zero exit raises)."""
    import subprocess

    from big5chat import paths

    if compute.launcher == "none":
        return execute(run_path)
    cmd = launch_command(run_path, compute, kind)
    print("launching:", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=paths.ROOT)
    return json.loads(Path(read_run_file(run_path).result_file).read_text(encoding="utf-8"))


def launch_training(
    kind: Kind,
    work: Path,
    *,
    model_dir: Path,
    out_dir: Path,
    train: list[dict[str, Any]],
    evals: list[dict[str, Any]],
    curve_file: Path,
    params: Any,
    run_name: str,
    compute: Any,
    record: dict[str, Any],
    timer: str,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """A stage's training run: the records and the run file written into ``work`` and the run launched (its wall time
    in ``record[timer]``); returns the run's result and its loss curve."""
    storage.write_jsonl(work / "train.jsonl", train)
    storage.write_jsonl(work / "eval.jsonl", evals)
    run_file = write_run_file(work / "run.json", RunFile(
        kind=kind, model_dir=str(model_dir), out_dir=str(out_dir), train_file=str(work / "train.jsonl"), eval_file=str(work / "eval.jsonl"),
        curve_file=str(curve_file), result_file=str(work / "result.json"), params=to_dict(params), run_name=run_name))  # fmt: skip
    with rt.timed(record, timer):  # in this process, or `accelerate launch` / `torchrun` (compute.launcher)
        result = launch(run_file, compute, kind)
    return result, pd.read_csv(curve_file)
