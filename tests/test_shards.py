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


_TP_WORKER = """
import json, sys
from pathlib import Path
from big5chat.config import GenerateDialoguesConfig
from big5chat.generation.dataset import DatasetRun, process_group
from big5chat.generation.shards import Shard

root = Path(sys.argv[1])
g = GenerateDialoguesConfig(n_scenarios=None, max_new_tokens=6, turn0_max_new_tokens=5, batch_size=2, dtype="float32", warmup=1,
                            processes=4, tensor_parallel=2)
run = DatasetRun.from_config(g, ["openness", "neuroticism"], processed=root / "processed", models=root / "models", scratch=root / "scratch")
shard = Shard.from_env(g.tensor_parallel)
barrier, close = process_group(shard)
out = run.run(shard, barrier, poll_s=0.2)
close()
(root / "outs").mkdir(exist_ok=True)
(root / "outs" / f"{shard.rank}-{shard.tp_rank}.json").write_text(json.dumps(out))
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


@pytest.mark.slow
def test_tensor_parallel_shards_write_the_rows_of_one_process(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    """processes 4, tensor_parallel 2: two torchrun launches of two gloo processes, as ``dataset.launches`` lays them
    out (``BIG5CHAT_SHARD`` 0 and 1). Each pair splits the base (transformers' tensor-parallel plan: half of its
    weights per process) and runs one shard; only the first of each pair writes, and the shards wait for each
    other's turn 0 through their files. The merged rows equal one process's (float32, greedy), and a relaunch with
    everything done loads no model."""
    import os

    from big5chat.config import ComputeConfig, GenerateDialoguesConfig
    from big5chat.generation.dataset import DatasetRun, launches

    root = _project(tmp_path, tiny_models)
    kw = {"processed": root / "processed", "models": root / "models", "scratch": root / "scratch"}
    g = GenerateDialoguesConfig(n_scenarios=None, max_new_tokens=6, turn0_max_new_tokens=5, batch_size=2, dtype="float32", warmup=1)
    single = DatasetRun.from_config(g, ["openness", "neuroticism"], **kw)
    single.run()
    one = single.rows(1)
    (root / "worker.py").write_text(_TP_WORKER)
    g4 = GenerateDialoguesConfig(**{**g.__dict__, "processes": 4, "tensor_parallel": 2})
    plan = launches(ComputeConfig(launcher="accelerate", num_processes=4), g4, tail=[str(root / "worker.py"), str(root)])
    assert [x.env for x in plan] == [{"BIG5CHAT_SHARD": "0", "BIG5CHAT_SHARDS": "2"}, {"BIG5CHAT_SHARD": "1", "BIG5CHAT_SHARDS": "2"}]
    assert all("torch.distributed.run" in x.command and x.command[x.command.index("--nproc_per_node") + 1] == "2" for x in plan)

    def launch() -> list[dict]:
        shutil.rmtree(root / "outs", ignore_errors=True)
        procs = [subprocess.Popen(x.command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE", **x.env}) for x in plan]  # fmt: skip
        for p in procs:
            _, stderr = p.communicate(timeout=900)
            assert p.returncode == 0, "\n".join(line for line in stderr.splitlines() if "Loading weights" not in line)[-4000:]
        return [json.loads(f.read_text()) for f in sorted((root / "outs").glob("*.json"))]

    outs = launch()
    assert sorted((o["rank"], o["world"], o["tp_rank"]) for o in outs) == [(0, 2, 0), (0, 2, 1), (1, 2, 0), (1, 2, 1)]
    assert {o["base_share"] for o in outs} == {0.5}  # every process holds half of the base
    run = DatasetRun.from_config(g4, ["openness", "neuroticism"], **kw)
    assert run.shard_count == 2 and run.checkpoint == single.checkpoint  # the layout is not part of the checkpoint key
    two = run.rows(2)
    assert {k: v["text"] for k, v in two.items()} == {k: v["text"] for k, v in one.items()}
    for r in range(2):  # one writer per pair: every row once in its shard's file
        lines = shards.Shard(r, 2).path(run.checkpoint).read_text().splitlines()
        assert len(lines) == len({json.loads(line)["key"] for line in lines}) > 0
    assert all(o["base_share"] is None and o["resumed"] == o["rows"] for o in launch())  # all done: nothing loaded


def test_tensor_parallel_layout_from_the_environment_and_the_launches(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from big5chat.config import ComputeConfig, GenerateDialoguesConfig
    from big5chat.generation.dataset import launches

    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert shards.Shard.from_env() == shards.Shard(1, 4)  # without tensor parallelism every process is a shard
    with pytest.raises(shards.ShardError, match="tensor_parallel=2 but this launch has 4 processes"):
        shards.Shard.from_env(2)
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert shards.Shard.from_env(2) == shards.Shard(0, 1, 1, 2)  # BIG5CHAT_SHARD unset: shard 0 of 1
    monkeypatch.setenv("BIG5CHAT_SHARD", "3")
    monkeypatch.setenv("BIG5CHAT_SHARDS", "4")
    s = shards.Shard.from_env(2)
    assert (s.rank, s.world, s.tp_rank, s.writer) == (3, 4, 1, False) and s.path(tmp_path / "k.jsonl").name == "k.shard3of4.jsonl"
    with pytest.raises(shards.ShardError, match="tensor-parallel rank 2 of 2"):
        shards.Shard(0, 1, 2, 2)
    g = GenerateDialoguesConfig(processes=8, tensor_parallel=4)
    runs = launches(ComputeConfig(launcher="accelerate", num_processes=8), g, gpus=8)
    assert [r.env["CUDA_VISIBLE_DEVICES"] for r in runs] == ["0,1,2,3", "4,5,6,7"]
    with pytest.raises(shards.ShardError, match="needs that many GPUs"):
        launches(ComputeConfig(launcher="torchrun", num_processes=8), g, gpus=4)
    one = launches(ComputeConfig(launcher="torchrun", num_processes=2), GenerateDialoguesConfig(processes=2))
    assert len(one) == 1 and one[0].env == {} and one[0].command[-2:] == ["big5chat", "generate-shard"]


def test_a_base_whose_heads_do_not_split_is_refused(tiny_models: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    from big5chat.models.loading import ModelLoadError, load_causal_lm

    monkeypatch.setenv("WORLD_SIZE", "3")
    with pytest.raises(ModelLoadError, match="num_attention_heads=4, num_key_value_heads=2 cannot be split over 3"):
        load_causal_lm(tiny_models["base"], tensor_parallel=3)
    monkeypatch.setenv("WORLD_SIZE", "1")
    with pytest.raises(ModelLoadError, match="needs a launch of exactly 2 processes, this one has 1"):
        load_causal_lm(tiny_models["base"], tensor_parallel=2)


def test_a_shard_waits_for_turn0_from_other_launches_and_gives_up_with_a_reason(tmp_path: Path) -> None:
    turn0, _ = _batches()
    jobs0 = [j for b in turn0 for j in b]
    base = tmp_path / "k.jsonl"
    dlg.Checkpoint(shards.Shard(0, 2).path(base)).append([{"key": jobs0[0].key, "text": "x"}])
    assert shards.turn0_missing(base, 2, jobs0) == [j.key for j in jobs0[1:]]  # shard 1 has no file yet: holds none
    with pytest.raises(shards.ShardError, match=f"turn 0 of {len(jobs0) - 1} scenarios .* is every shard running"):
        shards.wait_for_turn0(base, 2, jobs0, poll_s=0.01, timeout_s=0.05)
    dlg.Checkpoint(shards.Shard(1, 2).path(base)).append([{"key": j.key, "text": "y"} for j in jobs0[1:]])
    shards.wait_for_turn0(base, 2, jobs0, poll_s=0.01, timeout_s=0.05)  # all there: returns at once
