"""Data-parallel generation (generation.shards, generation.dataset): N processes write the rows one process writes,
a killed shard resumes alone, and the merge refuses a missing or duplicated shard."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from big5chat.generation import dialogues as dlg
from big5chat.generation import shards

SCEN = [{"original_index": i, "head": "h", "relation": "xIntent", "tail": "t", "literal": "l", "narrative": f"Person {i} helps a friend move house.",
         "PersonX": "Ann", "PersonY": "Bo"} for i in range(5)]  # fmt: skip


def _fake(calls: list[str], fail_after: int | None = None):  # type: ignore[no-untyped-def]
    def gen(batch: list[dlg.Job]) -> list[str]:
        if fail_after is not None and len(calls) >= fail_after:
            raise KeyboardInterrupt("killed")
        calls.extend(j.key for j in batch)
        return [f"reply to {j.key} in a batch of {len(batch)} led by {batch[0].key}" for j in batch]

    return gen


class _FakeGenerator:
    def __init__(self, calls: list[str], fail_after: int | None = None):
        self.turn0_batch = self.turn1_batch = _fake(calls, fail_after)
        self.turn0: dict[int, str] = {}
        self.generated_tokens = 1


def _batches(size: int = 3) -> tuple[list[list[dlg.Job]], list[list[dlg.Job]]]:
    dirs = {t: Path("/nonexistent") / t for t in ("openness", "neuroticism")}  # single-design experts: one group per trait
    return shards.batches([dlg.Job(s["original_index"]) for s in SCEN], size), shards.turn1_batches(dlg.turn1_jobs(SCEN, list(dirs)), dirs, size)


def _run_world(base: Path, world: int, fail: dict[int, int] | None = None) -> list[BaseException]:
    """``world`` shards in threads (a threading barrier standing in for the process group's)."""
    turn0, turn1 = _batches()
    barrier = threading.Barrier(world)
    errors: list[BaseException] = []

    def one(rank: int) -> None:
        try:
            shards.run_shard(shards.Shard(rank, world), base, turn0, turn1, lambda: _FakeGenerator([], (fail or {}).get(rank)), barrier.wait)
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=one, args=(r,)) for r in range(world)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def test_shards_take_the_single_process_batches_and_merge_to_its_rows(tmp_path: Path) -> None:
    turn0, turn1 = _batches()
    jobs = [j for b in turn0 + turn1 for j in b]
    single = tmp_path / "one" / "k.jsonl"
    assert not _run_world(single, 1)
    one = dlg.Checkpoint(single).load()
    base = tmp_path / "three" / "k.jsonl"
    assert not _run_world(base, 3)
    assert sorted(p.name for p in base.parent.glob("*.jsonl")) == [f"k.shard{r}of3.jsonl" for r in range(3)]
    merged = shards.merged(base, 3, jobs)
    assert {k: v["text"] for k, v in merged.items()} == {k: v["text"] for k, v in one.items()} and len(one) == len(jobs)
    owned = {r: set(dlg.Checkpoint(shards.Shard(r, 3).path(base)).load()) for r in range(3)}
    for r in range(3):  # every 3rd batch of each turn, starting at its rank
        s = shards.Shard(r, 3)
        assert owned[r] == {j.key for b in s.take(turn0) + s.take(turn1) for j in b}
    assert sum(map(len, owned.values())) == len(jobs)


def test_a_killed_shard_resumes_alone(tmp_path: Path) -> None:
    base = tmp_path / "k.jsonl"
    errors = _run_world(base, 2, fail={1: 4})
    assert any(isinstance(e, KeyboardInterrupt) for e in errors)
    before = dlg.Checkpoint(shards.Shard(0, 2).path(base)).load()
    with pytest.raises(shards.ShardError, match="jobs are in no shard"):
        shards.merged(base, 2, [j for b in sum(_batches(), []) for j in b])
    # the relaunch: shard 0 has nothing left and builds no generator; shard 1 finishes its own batches only
    turn0, turn1 = _batches()
    built: list[int] = []
    barrier = threading.Barrier(2)

    def one(rank: int, calls: list[str]) -> None:
        shards.run_shard(shards.Shard(rank, 2), base, turn0, turn1, lambda: built.append(rank) or _FakeGenerator(calls), barrier.wait)

    calls = {0: [], 1: []}
    threads = [threading.Thread(target=one, args=(r, calls[r])) for r in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert built == [1] and not calls[0] and calls[1]
    assert dlg.Checkpoint(shards.Shard(0, 2).path(base)).load() == before
    assert len(shards.merged(base, 2, [j for b in turn0 + turn1 for j in b])) == 5 + 20


def test_the_merge_refuses_a_missing_or_duplicated_shard(tmp_path: Path) -> None:
    base = tmp_path / "k.jsonl"
    assert not _run_world(base, 2)
    jobs = [j for b in sum(_batches(), []) for j in b]
    shard1 = shards.Shard(1, 2).path(base)
    kept = shard1.read_text()
    shard1.unlink()
    with pytest.raises(shards.ShardError, match=r"shard 1 of 2 is missing: .*k\.shard1of2\.jsonl"):
        shards.merged(base, 2, jobs)
    shard1.write_text(kept + shards.Shard(0, 2).path(base).read_text().splitlines(keepends=True)[0])
    with pytest.raises(shards.ShardError, match=r"in two shards, k\.shard0of2\.jsonl and k\.shard1of2\.jsonl"):
        shards.merged(base, 2, jobs)
    with pytest.raises(shards.ShardError, match="need 0 <= rank < world"):
        shards.Shard(2, 2)


_WORKER = """
import json, os, sys
from pathlib import Path
import torch.distributed as dist
from big5chat.config import GenerateDialoguesConfig
from big5chat.generation.dataset import DatasetRun
from big5chat.generation.shards import Shard

root = Path(sys.argv[1])
g = GenerateDialoguesConfig(n_scenarios=None, max_new_tokens=6, turn0_max_new_tokens=5, batch_size=2, dtype="float32", warmup=1)
run = DatasetRun.from_config(g, ["openness", "neuroticism"], processed=root / "processed", models=root / "models", scratch=root / "scratch")
shard = Shard.from_env()
if shard.world > 1:
    dist.init_process_group("gloo")
out = run.run(shard, dist.barrier if shard.world > 1 else (lambda: None))
if shard.world > 1:
    dist.destroy_process_group()
print(json.dumps(out))
"""


def _project(tmp_path: Path, tiny_models: dict[str, Path]) -> Path:
    from peft import LoraConfig, get_peft_model

    from big5chat.models.loading import load_causal_lm

    root = tmp_path / "proj"
    (root / "processed").mkdir(parents=True)
    (root / "processed" / "scenarios.jsonl").write_text("".join(json.dumps(s) + "\n" for s in SCEN))
    shutil.copytree(tiny_models["base"], root / "models" / "base")
    (root / "models" / "expert_base").mkdir()
    (root / "models" / "expert_base" / "card.json").write_text(json.dumps({"same_as": "base"}))
    import torch

    for i, (t, lvl) in enumerate((t, lvl) for t in ("openness", "neuroticism") for lvl in ("high", "low")):
        torch.manual_seed(i)
        lora = LoraConfig(r=2, target_modules="all-linear", init_lora_weights=False)
        get_peft_model(load_causal_lm(root / "models" / "base"), lora).save_pretrained(str(root / "models" / "experts" / t / lvl))
    return root


@pytest.mark.slow
def test_two_gloo_processes_write_the_rows_of_one_process(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    """The real thing on CPU: DExperts with per-level LoRA experts on the tiny model, greedy, one process in this
    test's process against two torchrun processes meeting at a gloo barrier; the merged rows are byte-identical."""
    from big5chat.config import GenerateDialoguesConfig
    from big5chat.generation.dataset import DatasetRun

    root = _project(tmp_path, tiny_models)
    g = GenerateDialoguesConfig(n_scenarios=None, max_new_tokens=6, turn0_max_new_tokens=5, batch_size=2, dtype="float32", warmup=1)
    kw = {"processed": root / "processed", "models": root / "models", "scratch": root / "scratch"}
    single = DatasetRun.from_config(g, ["openness", "neuroticism"], **kw)
    assert single.run()["rows"] == 25 and len(single.turn1) == 4 * 3  # 4 trait x level groups of 5 scenarios, batches of 2
    one = single.rows(1)
    (root / "worker.py").write_text(_WORKER)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(root / "worker.py"), str(root)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env={**__import__("os").environ, "OMP_WAIT_POLICY": "PASSIVE"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    two = DatasetRun.from_config(g, ["openness", "neuroticism"], **kw).rows(2)
    assert json.dumps(two, sort_keys=True) == json.dumps(one, sort_keys=True)
    assert dlg.official_rows(SCEN, ["openness", "neuroticism"], two) == dlg.official_rows(SCEN, ["openness", "neuroticism"], one)
    assert all(shards.Shard(r, 2).path(single.checkpoint).is_file() for r in range(2))
