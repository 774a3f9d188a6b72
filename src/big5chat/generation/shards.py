"""Data-parallel generation of the dialogue dataset: the batches one process would run, dealt to N processes.

Every process forms the same batches as a single process does (turn 0: scenarios in order; turn 1: grouped by trait
and level, then in order) and takes every N-th one (``Shard.take``): batch composition and each batch's seed (from
its first job) do not depend on N, so the rows are the same, greedy decoding byte for byte. Each process appends its
finished batches to its own checkpoint, ``<key>.shard<r>of<N>.jsonl`` beside the single-process ``<key>.jsonl``;
after turn 0 the processes wait for each other (every turn-1 prompt needs its scenario's turn 0, which another
process may have written) and read every shard's turn-0 rows. The stage then merges the shards
(``merged``): every job exactly once, else an error naming the missing or duplicated shard.

With tensor parallelism (``generate_dialogues.tensor_parallel: T``) a shard is a launch of its own: T processes that
split one base model between them (transformers' tensor-parallel plan over the launch's process group,
``models.loading.load_causal_lm(tensor_parallel=T)``) and run the shard together: they take the same batches, compute
the same logits and draw the same tokens; the first of them writes the shard's checkpoint, the others only read it
(``Shard.writer``). The launch learns which shard it is from ``BIG5CHAT_SHARD`` and ``BIG5CHAT_SHARDS``
(``generation.dataset.launch`` starts processes / T such launches, each on its own block of GPUs). Shards in
different launches cannot meet at a process-group barrier, so every shard waits for the others' turn 0 by reading
their checkpoint files (``wait_for_turn0``), which works the same for shards of one launch, of several launches and
of several nodes sharing the folder.

A killed process resumes alone: run the same launch again and each process skips the batches its checkpoint holds
(a process with nothing left loads no model). Several nodes share one checkpoint folder (a shared filesystem).

This split lives inside the stage rather than as a DVC ``foreach`` over shards plus a merge stage: the shard count is
a property of the machine, not of the study, so it must not change the DAG, the outputs or their hashes; and turn 1
needs every shard's turn 0, a barrier a DAG of independent stages would need two more stages for.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from big5chat.generation.dialogues import Checkpoint, Job, batches, run_batches, turn1_groups


class ShardError(RuntimeError):
    pass


@dataclass(frozen=True)
class Shard:
    """This process's share: shard ``rank`` of ``world`` shards, and its place ``tp_rank`` among the ``tp`` processes
    that run that shard together (tensor parallel; 1 process per shard without)."""

    rank: int = 0
    world: int = 1
    tp_rank: int = 0
    tp: int = 1

    def __post_init__(self) -> None:
        if self.world < 1 or not 0 <= self.rank < self.world:
            raise ShardError(f"rank {self.rank} of {self.world} processes: need 0 <= rank < world")
        if self.tp < 1 or not 0 <= self.tp_rank < self.tp:
            raise ShardError(f"tensor-parallel rank {self.tp_rank} of {self.tp}: need 0 <= tp_rank < tp")

    @property
    def writer(self) -> bool:
        """Whether this process writes the shard's checkpoint (the first of its tensor-parallel group)."""
        return self.tp_rank == 0

    @classmethod
    def from_env(cls, tensor_parallel: int = 1) -> Shard:
        """From the launcher's environment (torchrun and accelerate set RANK and WORLD_SIZE; one process without).
        Without tensor parallelism each process is a shard; with it the launch is one shard (its processes are the
        tensor-parallel group) and ``BIG5CHAT_SHARD`` / ``BIG5CHAT_SHARDS`` say which of how many (0 of 1 unset)."""
        rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
        if tensor_parallel == 1:
            return cls(rank, world)
        if world != tensor_parallel:
            raise ShardError(f"generate_dialogues.tensor_parallel={tensor_parallel} but this launch has {world} processes: a launch is one "
                             f"shard of {tensor_parallel} processes (generation.dataset.launch starts one per shard)")  # fmt: skip
        shard, shards = int(os.environ.get("BIG5CHAT_SHARD", "0")), int(os.environ.get("BIG5CHAT_SHARDS", "1"))
        return cls(shard, shards, rank, tensor_parallel)

    def path(self, base: Path) -> Path:
        """This shard's checkpoint: ``base`` itself for a single process."""
        return base if self.world == 1 else base.with_name(f"{base.stem}.shard{self.rank}of{self.world}{base.suffix}")

    def take(self, batches: list[list[Job]]) -> list[list[Job]]:
        return batches[self.rank :: self.world]


def turn1_batches(jobs: list[Job], expert_dirs: dict[str, Path], size: int) -> list[list[Job]]:
    """Turn 1's batches: one trait (and level, for per-level experts) per batch, as a single process runs them."""
    return [b for group in turn1_groups(jobs, expert_dirs) for b in batches(group, size)]


def load_shards(base: Path, world: int) -> dict[str, dict[str, Any]]:
    """Every shard's finished rows, keyed by job. A missing shard file, or a job two shards both hold, is an error
    naming the files (a leftover of an earlier launch with another process count is ignored: its name says N)."""
    done: dict[str, dict[str, Any]] = {}
    owner: dict[str, Path] = {}
    for rank in range(world):
        path = Shard(rank, world).path(base)
        if not path.is_file():
            raise ShardError(f"shard {rank} of {world} is missing: {path} (run the launch again; finished shards are skipped)")
        for key, rec in Checkpoint(path).load().items():
            if key in owner:
                raise ShardError(f"job {key!r} is in two shards, {owner[key].name} and {path.name}: shard files of different launches "
                                 f"were mixed; delete {base.parent} to regenerate")  # fmt: skip
            owner[key] = path
            done[key] = rec
    return done


def merged(base: Path, world: int, jobs: list[Job]) -> dict[str, dict[str, Any]]:
    """The shards' rows of ``jobs``, checked complete: each job exactly once across the shards."""
    done = load_shards(base, world)
    missing = [j.key for j in jobs if j.key not in done]
    if missing:
        raise ShardError(f"{len(missing)} of {len(jobs)} jobs are in no shard of {base.name} ({world} processes), e.g. {missing[0]!r}: "
                         "a process stopped early; run the launch again to finish them")  # fmt: skip
    return done


def turn0_missing(base: Path, world: int, jobs0: list[Job]) -> list[str]:
    """Turn-0 jobs that no shard's checkpoint holds yet (a shard file not written yet holds none)."""
    done: set[str] = set()
    for rank in range(world):
        path = Shard(rank, world).path(base)
        if path.is_file():
            done |= Checkpoint(path).load().keys()
    return [j.key for j in jobs0 if j.key not in done]


def wait_for_turn0(base: Path, world: int, jobs0: list[Job], poll_s: float = 10.0, timeout_s: float = 7 * 24 * 3600.0) -> None:
    """Block until every turn-0 job is in some shard's checkpoint: turn 1 needs its scenario's turn 0, which another
    shard (in this launch or another) may be writing. Says every 10 minutes what it waits for."""
    import sys
    import time

    start = last = time.monotonic()
    while missing := turn0_missing(base, world, jobs0):
        now = time.monotonic()
        if now - start > timeout_s:
            raise ShardError(f"waited {timeout_s:.0f} s for turn 0 of {len(missing)} scenarios (e.g. {missing[0]!r}) from the other shards of "
                             f"{base.name}: is every shard running?")  # fmt: skip
        if now - last > 600:
            print(f"[big5chat] shard waits for turn 0 of {len(missing)} scenarios from the other shards", file=sys.stderr, flush=True)
            last = now
        time.sleep(poll_s)


def remaining(shard: Shard, done: dict[str, Any], batch_lists: list[list[list[Job]]]) -> int:
    """Jobs of this shard's batches not in ``done`` (its checkpoint's rows) yet: 0 = nothing to load a model for."""
    return sum(1 for bl in batch_lists for b in shard.take(bl) for j in b if j.key not in done)


class ReadOnlyCheckpoint(Checkpoint):
    """The shard's checkpoint as a tensor-parallel process other than the writer sees it: read, never written."""

    def append(self, records: Any) -> None:
        pass


def run_shard(
    shard: Shard,
    base: Path,
    turn0: list[list[Job]],
    turn1: list[list[Job]],
    make_generator: Callable[[], Any],
    barrier: Callable[[], None] = lambda: None,
    on_batch: Callable[[int], None] | None = None,
    poll_s: float = 10.0,
) -> dict[str, Any]:
    """This process's share of both turns (``make_generator()``: a ``DialogueGenerator``, built only when there is
    work left; ``barrier``: the processes of this launch). Returns counts and the generator's statistics."""
    ckpt = (Checkpoint if shard.writer else ReadOnlyCheckpoint)(shard.path(base))
    if shard.writer:
        ckpt.path.touch()  # a shard with no batch still shows that it ran (the merge tells a missing shard from an empty one)
    barrier()  # a tensor-parallel group reads its checkpoint before its writer appends to it
    done = ckpt.load()
    resumed = len(done)
    gen = make_generator() if remaining(shard, done, [turn0, turn1]) else None
    if gen is not None:
        run_batches(shard.take(turn0), done, gen.turn0_batch, ckpt, on_batch)
    barrier()  # this launch's shards have written their turn 0
    if gen is not None and remaining(shard, done, [turn1]):
        jobs0 = [j for b in turn0 for j in b]
        if shard.tp > 1:  # the other shards are other launches: wait for their turn 0
            wait_for_turn0(base, shard.world, jobs0, poll_s)
        everyone = load_shards(base, shard.world)
        lost = [j.key for j in jobs0 if j.key not in everyone]  # every shard of this launch passed the barrier: lost, not late
        if lost:
            raise ShardError(f"turn 0 of {len(lost)} scenarios is in no shard (e.g. {lost[0]!r}) although every process passed turn 0")
        gen.turn0 = {j.original_index: everyone[j.key]["text"] for j in jobs0}
        run_batches(shard.take(turn1), done, gen.turn1_batch, ckpt, on_batch)
    barrier()  # the merge reads complete shards
    return {"rank": shard.rank, "world": shard.world, "tp_rank": shard.tp_rank, "tp": shard.tp, "resumed": resumed, "rows": len(done),
            "generated_tokens": gen.generated_tokens if gen else 0}  # fmt: skip
