"""One SFT, DPO or expert training run from a JSON run file, in-process or under ``accelerate launch``.

    python -m big5chat train-sft --config .scratch/train_sft/run.json
    python -m big5chat train-expert --config .scratch/train_experts/openness/run.json
    accelerate launch --config_file configs/accelerate/ddp.yaml -m big5chat train-dpo --config run.json
    torchrun --standalone --nproc_per_node 2 -m big5chat train-sft --config run.json   # 2 CPU processes (gloo)

The run file names the model, the output folder, the JSONL records (written by the stage notebook) and the
stage's params section; the same code runs a notebook's in-process training on one CPU and a multi-GPU launch.
The main process writes the adapter (atomically), the exact config beside it, the loss curve and a result JSON.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from big5chat.storage import read_jsonl
from big5chat.strict import build, to_dict


@dataclass
class RunFile:
    kind: Literal["sft", "dpo", "expert"]
    model_dir: str
    out_dir: str
    train_file: str
    eval_file: str
    curve_file: str
    result_file: str
    params: dict[str, Any]
    run_name: str = "align"


def write_run_file(path: Path, run: RunFile) -> Path:
    from big5chat.storage import write_json

    return write_json(path, to_dict(run))


def execute(run_path: str | Path) -> dict[str, Any]:
    """Train as the run file says; returns the result (also written to ``result_file`` by the main process)."""
    from big5chat import training
    from big5chat.config import TrainDpoConfig, TrainExpertsConfig, TrainSftConfig
    from big5chat.storage import write_json

    run = build(RunFile, json.loads(Path(run_path).read_text(encoding="utf-8")), source=str(run_path))
    cls = {"sft": TrainSftConfig, "dpo": TrainDpoConfig, "expert": TrainExpertsConfig}[run.kind]
    p: Any = build(cls, run.params, source=f"{run_path}: params")
    # Experts: LoRA or a full fine-tune (the study's, under DeepSpeed ZeRO-3) by `method`; SFT/DPO: always LoRA.
    lora = (p.lora if p.method == "lora" else None) if run.kind == "expert" else p.lora
    common = dict(learning_rate=p.learning_rate, epochs=p.epochs, batch_size=p.batch_size, grad_accum=p.grad_accum,
                  max_length=p.max_length, scheduler=p.scheduler, warmup_steps=p.warmup_steps, bf16=p.bf16, seed=p.seed,
                  lora=lora, run_name=run.run_name, max_steps=getattr(p, "max_steps", -1))  # fmt: skip
    train, evals = read_jsonl(run.train_file), read_jsonl(run.eval_file)
    if run.kind in ("sft", "expert"):
        out = training.sft_train(run.model_dir, train, run.out_dir, eval_chats=evals or None, **common)
    else:
        out = training.dpo_train(run.model_dir, train, run.out_dir, eval_pairs=evals or None, beta=p.beta, loss_type=p.loss_type, **common)
    trainer = out["trainer"]
    result = {"steps": out["steps"], "train": out["metrics"], "eval": out["eval"], "world_size": trainer.args.world_size}
    if trainer.is_world_process_zero():
        out["curve"].write(run.curve_file)
        training.save_run_config(run.out_dir, {"kind": run.kind, "model_dir": run.model_dir, **to_dict(p), "world_size": trainer.args.world_size})
        write_json(run.result_file, result)
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
    run = json.loads(Path(run_path).read_text(encoding="utf-8"))
    return json.loads(Path(run["result_file"]).read_text(encoding="utf-8"))
