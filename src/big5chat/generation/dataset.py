"""The generate_dialogues stage's run: what it generates, where it checkpoints, and how the work is split.

``DatasetRun.from_config`` fixes the jobs, their batches and the checkpoint (named by a hash of every setting, input
and generation module that affects the rows), the same in the stage's process and in every worker process, so that a
single process, N local processes (``compute.launcher: torchrun|accelerate``, ``compute.num_processes: N``) and a
multi-node launch of ``python -m big5chat generate-shard`` all write and read the same files
(``generation.shards``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from big5chat.generation import dialogues as dlg
from big5chat.generation import shards

# The modules whose code decides the rows: a change to any of them starts a new checkpoint.
GENERATION_MODULES = ("dialogues", "dexperts", "dialogue_prompts", "prefix_cache", "growing_cache")


@dataclass
class DatasetRun:
    g: Any  # the generate_dialogues section
    traits: list[str]
    scenarios: list[dict[str, Any]]
    checkpoint: Path  # the single-process checkpoint; shards sit beside it
    turn0: list[list[dlg.Job]]
    turn1: list[list[dlg.Job]]
    models: Path

    @classmethod
    def from_config(cls, g: Any, traits: list[str], *, processed: Path | None = None, models: Path | None = None,
                    scratch: Path | None = None) -> DatasetRun:  # fmt: skip
        import importlib

        from big5chat import paths
        from big5chat.experts.layout import fingerprint
        from big5chat.models.loading import resolve_alias
        from big5chat.storage import sha256_file
        from big5chat.strict import to_dict

        processed, models, scratch = processed or paths.PROCESSED, models or paths.MODELS, scratch or paths.SCRATCH
        scen_file = processed / "scenarios.jsonl"
        scenarios = [json.loads(line) for line in scen_file.read_text(encoding="utf-8").splitlines()]
        scenarios = scenarios[: g.n_scenarios] if g.n_scenarios else scenarios
        code = {}
        for name in GENERATION_MODULES:
            module = importlib.import_module(f"big5chat.generation.{name}")
            code[module.__name__] = sha256_file(module.__file__)
        # processes only splits the work (the rows do not depend on it): left out of the key
        settings = {"params": {k: v for k, v in to_dict(g).items() if k != "processes"}, "traits": traits, "scenarios": sha256_file(scen_file), "code": code,
                    "base": json.loads((models / "base" / "card.json").read_text())["files"],
                    "expert_base": json.loads((resolve_alias(models / "expert_base") / "card.json").read_text())["files"],
                    "experts": {t: fingerprint(models / "experts" / t) for t in traits}}  # fmt: skip
        expert_dirs = {t: models / "experts" / t for t in traits}
        turn0 = shards.batches([dlg.Job(int(s["original_index"])) for s in scenarios], g.batch_size)
        turn1 = shards.turn1_batches(dlg.turn1_jobs(scenarios, traits), expert_dirs, g.batch_size)
        ckpt = scratch / "generate_dialogues" / f"{dlg.checkpoint_key(settings)}.jsonl"
        return cls(g, traits, scenarios, ckpt, turn0, turn1, models)

    @property
    def jobs(self) -> list[dlg.Job]:
        return [j for b in self.turn0 + self.turn1 for j in b]

    def generator(self) -> dlg.DialogueGenerator:
        from big5chat.generation.dexperts import Sampling, Steering

        g = self.g
        return dlg.DialogueGenerator(
            self.models / "base", {t: self.models / "experts" / t for t in self.traits}, self.scenarios, dtype=g.dtype,
            steering=Steering(g.rule, g.alpha, g.warmup), sampling=Sampling(g.do_sample, g.temperature, g.top_p),
            max_new_tokens=g.max_new_tokens, turn0_max_new_tokens=g.turn0_max_new_tokens, seed=g.seed, mixed_adapters=g.mixed_adapters,
            expert_base_dir=self.models / "expert_base", prefix_reuse=g.prefix_reuse, prefix_cache_mb=g.prefix_cache_mb,
        )  # fmt: skip

    def run(self, shard: shards.Shard | None = None, barrier: Callable[[], None] = lambda: None,
            on_batch: Callable[[int], None] | None = None, before_load: Callable[[], None] | None = None) -> dict[str, Any]:  # fmt: skip
        """This process's share of the work (all of it for one process); see ``shards.run_shard``. ``before_load``
        runs before the models load, only when there is work left (a worker picks its GPU there)."""
        shard = shard or shards.Shard()
        stats: dict[str, Any] = {}

        def make() -> dlg.DialogueGenerator:
            if before_load is not None:
                before_load()
            stats["generator"] = self.generator()
            return stats["generator"]

        out = shards.run_shard(shard, self.checkpoint, self.turn0, self.turn1, make, barrier, on_batch)
        gen = stats.get("generator")
        return out | {"prefix_reuse": gen.prefix_stats() if gen is not None else None}

    def finished(self, world: int) -> int:
        """Rows already in the checkpoint (in the ``world`` shards' checkpoints): what a rerun resumes from."""
        files = {shards.Shard(r, world).path(self.checkpoint) for r in range(world)}
        return sum(len(dlg.Checkpoint(p).load()) for p in files if p.is_file())

    def rows(self, world: int) -> dict[str, dict[str, Any]]:
        """Every job's finished row: the single checkpoint, or the ``world`` shards merged (checked complete)."""
        return shards.merged(self.checkpoint, world, self.jobs)


def stats_path(checkpoint: Path, shard: shards.Shard) -> Path:
    return checkpoint.with_name(f"{checkpoint.stem}.stats{shard.rank}of{shard.world}.json")


def shard_stats(checkpoint: Path, world: int) -> dict[str, Any]:
    """The last launch's statistics summed over its shards (tokens generated, prefix-cache counters)."""
    total: dict[str, Any] = {"generated_tokens": 0, "prefix_reuse": None}
    for r in range(world):
        f = stats_path(checkpoint, shards.Shard(r, world))
        if not f.is_file():
            continue
        one = json.loads(f.read_text(encoding="utf-8"))
        total["generated_tokens"] += one.get("generated_tokens", 0)
        if one.get("prefix_reuse"):
            pr = total["prefix_reuse"] = total["prefix_reuse"] or {}
            for k, v in one["prefix_reuse"].items():
                pr[k] = pr.get(k, 0) + v
    return total


def worker_command(compute: Any) -> list[str]:
    """``python -m big5chat generate-shard`` under the configured launcher, ``compute.num_processes`` processes."""
    from big5chat.launchers import launcher_command

    return launcher_command(compute, ["-m", "big5chat", "generate-shard"])


def launch(compute: Any) -> None:
    """The workers of this machine, as one launch (non-zero exit raises); the stage merges their shards after."""
    from big5chat import paths

    cmd = worker_command(compute)
    print("launching:", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=paths.ROOT)


def worker_main() -> int:
    """One process of a launch (``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` from torchrun or accelerate): its share of
    generate_dialogues, settings from params.yaml, then wait for the others. With several processes they meet at a
    gloo barrier (on GPUs each process takes the GPU of its local rank)."""
    import datetime
    import os

    import torch

    from big5chat import config
    from big5chat import runtime as rt

    params = config.load_params()
    shard = shards.Shard.from_env()
    rt.setup(params.runtime.threads, seed=params.generate_dialogues.seed)

    def pick_gpu() -> None:  # the first GPU of this process's block (models.placement); only a process with work needs one
        if torch.cuda.is_available():
            from big5chat.models.placement import process_gpus

            local = (int(os.environ.get("LOCAL_RANK", "0")), int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
            torch.cuda.set_device(process_gpus(*local, torch.cuda.device_count())[0])

    import torch.distributed as dist

    barrier: Callable[[], None] = lambda: None  # noqa: E731
    if shard.world > 1:
        dist.init_process_group("gloo", timeout=datetime.timedelta(days=7))  # a barrier may wait for hours of generation
        barrier = dist.barrier
    run = DatasetRun.from_config(params.generate_dialogues, list(params.traits))
    out = run.run(shard, barrier, before_load=pick_gpu)
    stats_path(run.checkpoint, shard).write_text(json.dumps(out, default=str), encoding="utf-8")  # this launch's work
    print(f"[big5chat] generate-shard {shard.rank}/{shard.world}: {out['rows']} rows in its checkpoint", file=sys.stderr)
    if shard.world > 1:
        dist.destroy_process_group()
    return 0
