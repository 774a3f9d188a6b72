"""evaluate_reasoning resumable and data-parallel: the grid's units (a cell's task), each kept as one JSON file once
done, and N processes that each take every N-th unit.

``ReasoningRun.from_config`` fixes the grid, the task files and the unit store (a folder named by a hash of every
setting, input and module that decides a unit's result), the same in the stage's process and in every worker
(``python -m big5chat reason-shard``). A single process reads the units already stored and runs the rest, so a
stopped run resumes by unit. With ``evaluate_reasoning.processes: N`` (started by ``compute.launcher``) each
process takes units ``rank, rank + N, ...`` of the grid in order (a process loads a model only when it reaches a
method whose units it runs); the stage then reads every unit from the store, in grid order, into the same tables a
single process writes, and names a unit that no process wrote. lm-eval's own data parallelism (requests split
inside one ``simple_evaluate`` under accelerate) would need every process to hold its own copy of the model on one
GPU in lock step; whole units need no communication at all, and a process that stops loses only its current unit.

On GPUs each process keeps to its own block of V // N GPUs (``CUDA_VISIBLE_DEVICES``, set before CUDA starts), so
a model larger than one GPU is spread over that block as in a single process.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from big5chat.reasoning.run import Cell, cells, evaluate

# The modules whose code decides a unit's result: a change to any of them starts a new store.
REASONING_MODULES = ("big5chat.reasoning.run", "big5chat.reasoning.prefix_lm", "big5chat.reasoning.tasks", "big5chat.generation.backends",
                     "big5chat.generation.growing_cache", "big5chat.methods", "big5chat.prompts", "big5chat.steering.hooks",
                     "big5chat.models.loading")  # fmt: skip
LAYOUT_PARAMS = ("processes",)  # split the work only: not part of the store's key


@dataclass(frozen=True)
class UnitStore:
    """One JSON file per finished unit, written atomically (a kill never leaves half a unit)."""

    folder: Path

    def path(self, key: str) -> Path:
        return self.folder / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        p = self.path(key)
        return json.loads(p.read_text(encoding="utf-8")) if p.is_file() else None

    def put(self, key: str, unit: dict[str, Any]) -> None:
        from big5chat import storage

        storage.write_json(self.path(key), unit)

    def count(self) -> int:
        return len(list(self.folder.glob("*.json"))) if self.folder.is_dir() else 0


@dataclass
class ReasoningRun:
    """The evaluate_reasoning stage's run: its grid, the arguments of ``run.evaluate`` and its unit store."""

    grid: list[Cell]
    tasks: list[str]
    store: UnitStore
    kwargs: dict[str, Any] = field(default_factory=dict)
    written: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_config(cls, e: Any, traits: list[str], benchmarks: Any, steer: Any, *, models: Path | None = None,
                    scratch: Path | None = None, write_tasks: bool = True) -> ReasoningRun:  # fmt: skip
        """``write_tasks``: write lm-eval's task files (the stage does, before any worker starts; workers read them)."""
        from big5chat import paths
        from big5chat.config import to_dict
        from big5chat.experts.layout import fingerprint
        from big5chat.methods import adapter_methods
        from big5chat.reasoning import tasks as rt
        from big5chat.steering.vectors import TraitVectors
        from big5chat.storage import sha256_file

        models, scratch = models or paths.MODELS, scratch or paths.SCRATCH
        conds = [(c.trait, c.level) for c in e.conditions] if e.conditions else [(t, lvl) for t in traits for lvl in ("high", "low")]
        grid = cells(list(e.methods), conds)
        task_dir = scratch / "lm_eval_tasks"
        written = rt.write_tasks({t: benchmarks[t] for t in e.tasks}, task_dir) if write_tasks else {}
        unwritten = [t for t in e.tasks if not rt.task_yaml_file(t, task_dir).is_file()]
        if unwritten:
            raise FileNotFoundError(f"no lm-eval task file for {', '.join(unwritten)} in {task_dir}: the evaluate_reasoning stage "
                                    "writes them before it launches its processes")  # fmt: skip
        vec_file = models / "steering" / "vectors.safetensors"
        steered = "steer" in e.methods
        adapters = {m: models / m for m in adapter_methods() if m in e.methods}
        settings = {
            "params": {k: v for k, v in to_dict(e).items() if k not in LAYOUT_PARAMS},
            "traits": traits,
            "tasks": {f.name: sha256_file(f) for t in e.tasks for f in rt.task_files(t, task_dir)},
            "base": json.loads((models / "base" / "card.json").read_text(encoding="utf-8"))["files"],
            "adapters": {m: fingerprint(d) for m, d in adapters.items()},
            "steer": {"vectors": sha256_file(vec_file), "multiplier": steer.multiplier} if steered else None,
            "code": {m: sha256_file(importlib.import_module(m).__file__) for m in REASONING_MODULES},
            "versions": _versions(),
        }
        kwargs = {
            "base_dir": models / "base", "adapters": adapters, "task_manager": rt.task_manager(task_dir),
            "limits": {t: e.limits.get(t, e.limit) for t in e.tasks}, "apply_chat_template": e.apply_chat_template,
            "fewshot_as_multiturn": e.fewshot_as_multiturn, "max_gen_toks": e.max_gen_toks, "batch_size": e.batch_size,
            "dtype": e.dtype, "backend": e.backend, "vectors": TraitVectors.load(vec_file) if steered else None,
            "multiplier": steer.multiplier,
        }  # fmt: skip
        key = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]
        store = UnitStore(scratch / "evaluate_reasoning" / key)
        return cls(grid, list(e.tasks), store, kwargs, written)

    @property
    def units(self) -> int:
        return len(self.grid) * len(self.tasks)

    def run(self, share: tuple[int, int] = (0, 1), on_cell: Any = None) -> tuple[Any, list[dict[str, Any]], dict[str, Any]]:
        """This process's units (all of them for one process), stored as they finish; stored ones are read."""
        return evaluate(self.grid, self.tasks, store=self.store, share=share, on_cell=on_cell, **self.kwargs)

    def merged(self) -> tuple[Any, list[dict[str, Any]], dict[str, Any]]:
        """Every unit from the store, in grid order (after a data-parallel launch); a missing unit is an error."""
        return evaluate(self.grid, self.tasks, store=self.store, run_missing=False, **self.kwargs)


def _versions() -> dict[str, str]:
    import lm_eval
    import torch
    import transformers

    return {"lm_eval": lm_eval.__version__, "torch": torch.__version__, "transformers": transformers.__version__}


def gpu_block(local_rank: int, local_world: int, visible: list[str]) -> list[str]:
    """The GPUs (ids as CUDA_VISIBLE_DEVICES names them) of the ``local_rank``-th of ``local_world`` processes."""
    per = len(visible) // local_world
    if per < 1:
        raise ValueError(f"{local_world} processes on this node but {len(visible)} GPU(s): evaluate_reasoning.processes at most one per GPU")
    return visible[local_rank * per : (local_rank + 1) * per]


def keep_to_own_gpus(local_rank: int, local_world: int) -> None:
    """Before CUDA starts: this process sees only its block of the node's GPUs (none on a CPU machine)."""
    import torch

    if "CUDA_VISIBLE_DEVICES" in os.environ:
        visible = [d for d in os.environ["CUDA_VISIBLE_DEVICES"].split(",") if d]
    else:
        visible = [str(i) for i in range(torch.cuda.device_count())]  # NVML's count: CUDA itself is not started
    if visible:
        block = gpu_block(local_rank, local_world, visible)
        os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(block)


LAUNCH_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK", "GROUP_WORLD_SIZE", "ROLE_RANK", "ROLE_WORLD_SIZE",
              "ROLE_NAME", "MASTER_ADDR", "MASTER_PORT")  # fmt: skip


def detach_from_launch() -> tuple[int, int, int, int]:
    """(rank, processes, local rank, local processes) of this launch; then the launcher's variables are removed
    from the environment, so that lm-eval (through accelerate) sees one plain process and runs every request of
    a unit itself, instead of splitting it with processes that are running other units."""
    got = (int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("LOCAL_RANK", "0")),
           int(os.environ.get("LOCAL_WORLD_SIZE", "1")))  # fmt: skip
    for k in [k for k in os.environ if k in LAUNCH_ENV or k.startswith(("TORCHELASTIC_", "ACCELERATE_"))]:
        del os.environ[k]
    return got


def worker_main() -> int:
    """One process of a launch (``RANK`` of ``WORLD_SIZE`` from torchrun or accelerate): its units of the
    evaluate_reasoning grid, settings from params.yaml. No process group: the units need no communication, and
    the process detaches from the launch's environment (``detach_from_launch``)."""
    import sys

    rank, processes, local_rank, local_processes = detach_from_launch()
    keep_to_own_gpus(local_rank, local_processes)
    from big5chat import config
    from big5chat import runtime as rt

    params = config.load_params()
    rt.setup(params.runtime.threads)
    share = (rank, processes)
    run = ReasoningRun.from_config(params.evaluate_reasoning, list(params.traits), params.data.benchmarks, params.steer, write_tasks=False)
    results, _, _ = run.run(share)
    print(f"[big5chat] reason-shard {share[0]}/{share[1]}: {len(results)} units", file=sys.stderr)
    return 0


def launch(compute: Any) -> None:
    """``python -m big5chat reason-shard`` under ``compute.launcher`` with ``compute.num_processes`` processes."""
    import subprocess

    from big5chat import paths
    from big5chat.launchers import launcher_command

    cmd = launcher_command(compute, ["-m", "big5chat", "reason-shard"])
    print("launching:", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=paths.ROOT)
