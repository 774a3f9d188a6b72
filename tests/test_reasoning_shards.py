"""evaluate_reasoning by units (reasoning.shards): a stopped run resumes by unit, N processes' shares read back in
grid order equal one process's results, and the read-back names a unit no process wrote."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from big5chat.config import DataSource, EvaluateReasoningConfig, SteerConfig
from big5chat.reasoning import run as rr
from big5chat.reasoning import shards as rs

TASKS = ["commonsense_qa", "piqa"]
SCORES = ["method", "trait", "level", "task", "score", "stderr", "n"]  # the columns that are not timings


def _run(models: Path, scratch: Path, write_tasks: bool = True, **change: object) -> rs.ReasoningRun:
    settings = {
        "methods": ["direct", "prompt_inst"],
        "tasks": TASKS,
        "limit": 2,
        "max_gen_toks": 4,
        "batch_size": 2,
        "dtype": "float32",
        "backend": "hf",
    }
    e = EvaluateReasoningConfig(**(settings | change))
    bench = {t: DataSource(path=f"data/sample/benchmarks/{t}.jsonl") for t in TASKS}
    return rs.ReasoningRun.from_config(e, ["openness"], bench, SteerConfig(), models=models, scratch=scratch, write_tasks=write_tasks)


@pytest.fixture()
def models(tiny_models: dict[str, Path], tmp_path: Path) -> Path:
    shutil.copytree(tiny_models["base"], tmp_path / "models" / "base")
    return tmp_path / "models"


def test_units_resume_and_shares_read_back_as_one_process(models: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    one = _run(models, tmp_path / "one")
    assert len(one.grid) == 3 and one.units == 6  # Direct + Prompt-Inst at openness high and low, x 2 tasks
    results, samples, meta = one.run()
    assert one.store.count() == 6 and list(results["task"]) == TASKS * 3
    # a second run reads every unit and loads no model
    monkeypatch.setattr(rr, "make_lm", lambda *a, **k: pytest.fail("a stored unit was rerun"))
    again, again_samples, again_meta = _run(models, tmp_path / "one").run()
    assert again.equals(results) and again_samples == samples and again_meta == meta
    monkeypatch.undo()
    # two processes' shares (every 2nd unit), then the read-back in grid order
    two = _run(models, tmp_path / "two")
    part, _, _ = two.run(share=(1, 2))
    assert [rr.unit_key(rr.Cell(r.method, r.trait, r.level), r.task) for r in part.itertuples()] == [
        rr.unit_key(c, t) for c, t in [(c, t) for c in two.grid for t in TASKS][1::2]
    ]
    with pytest.raises(ValueError, match=r"direct__none__none__commonsense_qa is in no process's results .* run the stage again"):
        two.merged()  # rank 0 has not run: its units are missing
    two.run(share=(0, 2))
    merged, merged_samples, _ = two.merged()
    assert merged[SCORES].equals(results[SCORES]) and merged_samples == samples


_WORKER = """
import os, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from big5chat.reasoning.shards import detach_from_launch
from test_reasoning_shards import _run
rank, processes, _, _ = detach_from_launch()  # as reason-shard's worker_main
assert "WORLD_SIZE" not in os.environ
_run(Path(sys.argv[2]), Path(sys.argv[3]), write_tasks=False).run(share=(rank, processes))  # the stage wrote the task files
"""


@pytest.mark.slow
def test_two_torchrun_processes_write_the_units_of_one_process(models: Path, tmp_path: Path) -> None:
    single, _, _ = _run(models, tmp_path / "one").run()
    two = _run(models, tmp_path / "two")  # writes the task files before any worker starts, as the stage does
    (tmp_path / "worker.py").write_text(_WORKER)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(tmp_path / "worker.py"),
           str(Path(__file__).parent), str(models), str(tmp_path / "two")]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    merged, _, _ = two.merged()
    assert merged[SCORES].equals(single[SCORES])


def test_gpu_blocks_per_process() -> None:
    assert rs.gpu_block(1, 2, ["0", "1", "2", "3"]) == ["2", "3"] and rs.gpu_block(0, 4, ["4", "5", "6", "7"]) == ["4"]
    with pytest.raises(ValueError, match="3 processes on this node but 2 GPU"):
        rs.gpu_block(0, 3, ["0", "1"])


def test_the_store_is_keyed_by_what_decides_a_result_not_by_the_process_count(models: Path, tmp_path: Path) -> None:
    base = _run(models, tmp_path).store.folder
    assert _run(models, tmp_path, processes=4).store.folder == base
    assert _run(models, tmp_path, limit=3).store.folder != base and _run(models, tmp_path, max_gen_toks=5).store.folder != base
    card = json.loads((models / "base" / "card.json").read_text())
    card["files"] = {"model.safetensors": "the sha256 of other weights"}
    (models / "base" / "card.json").write_text(json.dumps(card))
    assert _run(models, tmp_path).store.folder != base


def test_a_worker_without_the_stages_task_files_names_them(models: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"no lm-eval task file for commonsense_qa, piqa in .*lm_eval_tasks: the evaluate_reasoning stage"):
        _run(models, tmp_path, write_tasks=False)
    written = _run(models, tmp_path).store.folder  # the stage writes them; a worker then finds the same store
    assert _run(models, tmp_path, write_tasks=False).store.folder == written
    assert not list((tmp_path / "lm_eval_tasks").glob(".*partial"))
