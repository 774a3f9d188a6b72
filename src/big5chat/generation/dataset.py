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
LAYOUT_PARAMS = ("processes", "tensor_parallel")


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
        from big5chat.config import to_dict
        from big5chat.experts.layout import fingerprint
        from big5chat.models.loading import resolve_alias
        from big5chat.storage import sha256_file

        processed, models, scratch = processed or paths.PROCESSED, models or paths.MODELS, scratch or paths.SCRATCH
        scen_file = processed / "scenarios.jsonl"
        scenarios = [json.loads(line) for line in scen_file.read_text(encoding="utf-8").splitlines()]
        scenarios = scenarios[: g.n_scenarios] if g.n_scenarios else scenarios
        code = {}
        for name in GENERATION_MODULES:
            module = importlib.import_module(f"big5chat.generation.{name}")
            code[module.__name__] = sha256_file(module.__file__)
        # processes and tensor_parallel only lay the work out: left out of the key (a relaunch with another layout
        # resumes; tensor parallelism sums a layer's matmul in another order, so a bf16 greedy token may differ)
        settings = {"params": {k: v for k, v in to_dict(g).items() if k not in LAYOUT_PARAMS}, "traits": traits, "scenarios": sha256_file(scen_file), "code": code,
                    "base": json.loads((models / "base" / "card.json").read_text())["files"],
                    "expert_base": json.loads((resolve_alias(models / "expert_base") / "card.json").read_text())["files"],
                    "experts": {t: fingerprint(models / "experts" / t) for t in traits}}  # fmt: skip
        expert_dirs = {t: models / "experts" / t for t in traits}
        turn0 = shards.batches([dlg.Job(int(s["original_index"])) for s in scenarios], g.batch_size)
        turn1 = shards.turn1_batches(dlg.turn1_jobs(scenarios, traits), expert_dirs, g.batch_size)
        ckpt = scratch / "generate_dialogues" / f"{dlg.checkpoint_key(settings)}.jsonl"
        return cls(g, traits, scenarios, ckpt, turn0, turn1, models)

    @property
    def shard_count(self) -> int:
        """Data-parallel shards: the processes of a launch over the processes that hold one copy of the base."""
        return self.g.processes // self.g.tensor_parallel

    @property
    def jobs(self) -> list[dlg.Job]:
        return [j for b in self.turn0 + self.turn1 for j in b]

    def generator(self) -> dlg.DialogueGenerator:
        """The models of this process (with ``tensor_parallel`` T > 1: its 1/T of the base, whole experts)."""
        from big5chat.generation.dexperts import Sampling, Steering

        g = self.g
        return dlg.DialogueGenerator(
            self.models / "base", {t: self.models / "experts" / t for t in self.traits}, self.scenarios, dtype=g.dtype,
            steering=Steering(g.rule, g.alpha, g.warmup), sampling=Sampling(g.do_sample, g.temperature, g.top_p),
            max_new_tokens=g.max_new_tokens, turn0_max_new_tokens=g.turn0_max_new_tokens, seed=g.seed, mixed_adapters=g.mixed_adapters,
            expert_base_dir=self.models / "expert_base", prefix_reuse=g.prefix_reuse, prefix_cache_mb=g.prefix_cache_mb,
            base_tensor_parallel=g.tensor_parallel,
        )  # fmt: skip

    def run(self, shard: shards.Shard | None = None, barrier: Callable[[], None] = lambda: None,
            on_batch: Callable[[int], None] | None = None, before_load: Callable[[], None] | None = None,
            poll_s: float = 10.0) -> dict[str, Any]:  # fmt: skip
        """This process's share of the work (all of it for one process); see ``shards.run_shard``. ``before_load``
        runs before the models load, only when there is work left (a worker picks its GPU there); ``poll_s``: how
        often a shard looks for the other shards' turn 0."""
        shard = shard or shards.Shard()
        stats: dict[str, Any] = {}

        def make() -> dlg.DialogueGenerator:
            if before_load is not None:
                before_load()
            stats["generator"] = self.generator()
            return stats["generator"]

        out = shards.run_shard(shard, self.checkpoint, self.turn0, self.turn1, make, barrier, on_batch, poll_s)
        gen = stats.get("generator")
        from big5chat.models.loading import held_share

        return out | {"prefix_reuse": gen.prefix_stats() if gen is not None else None,
                      "base_share": round(held_share(gen.base), 4) if gen is not None else None}  # fmt: skip

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


@dataclass(frozen=True)
class Launch:
    """One ``python -m big5chat generate-shard`` launch: its command and what it adds to the environment."""

    command: list[str]
    env: dict[str, str]


def launches(compute: Any, g: Any, tail: list[str] | None = None, gpus: int = 0) -> list[Launch]:
    """The launches of this machine: one of ``g.processes`` processes under ``compute.launcher`` (each a shard);
    with ``tensor_parallel`` T, processes / T torchrun launches of T processes (each a shard, told which by
    ``BIG5CHAT_SHARD``), on disjoint blocks of the ``gpus`` visible GPUs (``CUDA_VISIBLE_DEVICES``). ``tail``: what
    each process runs (default ``-m big5chat generate-shard``)."""
    from dataclasses import replace

    from big5chat.launchers import launcher_command

    tail = tail or ["-m", "big5chat", "generate-shard"]
    if g.tensor_parallel == 1:
        return [Launch(launcher_command(compute, tail), {})]
    n = g.processes // g.tensor_parallel
    if gpus and gpus < g.processes:
        raise shards.ShardError(f"generate_dialogues.processes={g.processes} needs that many GPUs on this machine, {gpus} visible")
    # a tensor-parallel group only needs its processes started: plain torchrun (accelerate's fixed port would clash)
    one = launcher_command(replace(compute, launcher="torchrun", num_processes=g.tensor_parallel), tail)
    out = []
    for k in range(n):
        env = {"BIG5CHAT_SHARD": str(k), "BIG5CHAT_SHARDS": str(n)}
        if gpus:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in range(k * g.tensor_parallel, (k + 1) * g.tensor_parallel))
        out.append(Launch(one, env))
    return out


def launch(compute: Any, g: Any) -> None:
    """The workers of this machine, as one launch or one per tensor-parallel shard, run to the end (a failure
    raises, naming the shard); the stage merges their shards after."""
    import os

    import torch

    from big5chat import paths

    runs = launches(compute, g, gpus=torch.cuda.device_count() if torch.cuda.is_available() else 0)
    procs = []
    for i, one in enumerate(runs):
        print("launching:", " ".join(f"{k}={v}" for k, v in one.env.items()), " ".join(one.command), flush=True)
        procs.append((i, subprocess.Popen(one.command, cwd=paths.ROOT, env={**os.environ, **one.env})))
    failed = [(i, rc) for i, p in procs if (rc := p.wait())]
    if failed:
        raise RuntimeError(f"generate-shard launch(es) failed: {', '.join(f'shard {i} (exit {rc})' for i, rc in failed)}; "
                           "run the stage again: finished batches are kept")  # fmt: skip


def worker_main() -> int:
    """One process of a launch (``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` from torchrun or accelerate): its share of
    generate_dialogues, settings from params.yaml, then wait for the others of its launch. The processes of a
    launch form a gloo group for the barriers (NCCL too for a tensor-parallel base on GPUs); on GPUs each process
    takes the GPU of its local rank (``models.placement``)."""
    import os

    import torch

    from big5chat import config
    from big5chat import runtime as rt

    params = config.load_params()
    g = params.generate_dialogues
    shard = shards.Shard.from_env(g.tensor_parallel)
    rt.setup(params.runtime.threads, seed=g.seed)

    def pick_gpu() -> None:  # the first GPU of this process's block (models.placement); only a process with work needs one
        if torch.cuda.is_available():
            from big5chat.models.placement import process_gpus

            local = (int(os.environ.get("LOCAL_RANK", "0")), int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
            torch.cuda.set_device(process_gpus(*local, torch.cuda.device_count())[0])

    barrier, close = process_group(shard)
    run = DatasetRun.from_config(g, list(params.traits))
    out = run.run(shard, barrier, before_load=pick_gpu)
    if shard.writer:
        stats_path(run.checkpoint, shard).write_text(json.dumps(out, default=str), encoding="utf-8")  # this launch's work
        print(f"[big5chat] generate-shard {shard.rank}/{shard.world}: {out['rows']} rows in its checkpoint", file=sys.stderr)
    close()
    return 0


def process_group(shard: shards.Shard) -> tuple[Callable[[], None], Callable[[], None]]:
    """(barrier, close) of this launch's processes: a gloo group whose barriers may wait for hours of generation;
    with a tensor-parallel base on GPUs, NCCL carries its tensors (transformers builds the mesh over this group)."""
    import os

    if int(os.environ.get("WORLD_SIZE", "1")) == 1:
        return (lambda: None), (lambda: None)
    import datetime

    import torch
    import torch.distributed as dist

    backend = "cpu:gloo,cuda:nccl" if shard.tp > 1 and torch.cuda.is_available() else "gloo"
    dist.init_process_group(backend, timeout=datetime.timedelta(days=7))
    waits = dist.new_group(backend="gloo", timeout=datetime.timedelta(days=7))
    return (lambda: dist.barrier(group=waits)), dist.destroy_process_group
