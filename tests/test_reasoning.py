"""Reasoning benchmarks: every project task loads offline and scores a tiny model; domain aggregation; the
project tasks equal lm-eval's built-in tasks on the same real items."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from big5chat.config import DataSource
from big5chat.reasoning.domains import aggregate, reasoning_table
from big5chat.reasoning.run import Cell, cells, quiet_harness
from big5chat.reasoning.tasks import PROJECT_TASK, SPECS, task_manager, write_tasks


def test_domain_aggregation_known_case() -> None:
    scores = {"social_iqa": 0.4, "gsm8k": 0.1, "mathqa": 0.3, "truthfulqa_mc": 0.5, "commonsense_qa": 0.2, "piqa": 0.6, "mmlu": 0.25, "gpqa": 0.35}
    d = aggregate(scores)
    assert d == pytest.approx({"Social": 0.4, "Math": 0.2, "Hallucination": 0.5, "Commonsense": 0.4, "General": 0.3})
    assert math.isnan(aggregate({"gsm8k": 0.1})["Math"]), "a domain with a missing task is NaN, not a partial mean"


def test_reasoning_table_layout() -> None:
    rows = [{"method": "direct", "trait": "", "level": "", "task": "piqa", "score": 50.0}]
    rows += [{"method": "sft", "trait": t, "level": lvl, "task": "piqa", "score": s}
             for t, lvl, s in [("openness", "high", 60.0), ("openness", "low", 40.0), ("neuroticism", "high", 30.0), ("neuroticism", "low", 70.0)]]  # fmt: skip
    t = reasoning_table(pd.DataFrame(rows)).iloc[0]
    assert (t["Direct"], t["O+"], t["O-"], t["N+"], t["N-"], t["Avg+"], t["Avg-"]) == (50.0, 60.0, 40.0, 30.0, 70.0, 45.0, 55.0)


def test_cells_and_system_instructions() -> None:
    grid = cells(["direct", "prompt_inst", "dpo"], [("openness", "high")])
    assert grid == [Cell("direct"), Cell("prompt_inst", "openness", "high"), Cell("dpo", "openness", "high")]
    assert grid[0].system_instruction is None
    assert grid[1].system_instruction == "You are a person with high openness."
    assert grid[2].system_instruction.endswith("Openness - high")


def test_every_project_task_loads_offline_and_scores_a_tiny_model(
    tiny_models: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import lm_eval
    from lm_eval.models.huggingface import HFLM

    written = write_tasks({t: DataSource(path=f"data/sample/benchmarks/{t}.jsonl") for t in SPECS}, tmp_path / "tasks")
    lm = HFLM(pretrained=str(tiny_models["base"]), device="cpu", batch_size=4, dtype="float32")
    names = [written[t]["task"] for t in SPECS]
    messages: dict[str, int] = {}
    capsys.readouterr()
    with quiet_harness(messages):
        res = lm_eval.simple_evaluate(model=lm, tasks=names, task_manager=task_manager(tmp_path / "tasks"), limit=3, apply_chat_template=True,
                                      system_instruction="You are a person with high openness.", fewshot_as_multiturn=False,
                                      gen_kwargs={"max_gen_toks": 8}, bootstrap_iters=10)  # fmt: skip
    err = capsys.readouterr().err
    assert "%|" not in err and "specified through cli" not in err, err[-500:]  # the harness's bars and warnings stay quiet
    assert any("specified through cli" in m for m in messages), messages  # ... and its warnings are kept, counted
    for task, spec in SPECS.items():
        r = res["results"][PROJECT_TASK.format(task=task)]
        key = spec.metric if "," in spec.metric else f"{spec.metric},none"
        docs = {s["doc_id"] for s in res["samples"][PROJECT_TASK.format(task=task)]}
        assert 0.0 <= r[key] <= 1.0 and len(docs) == 3, task
    doc = res["samples"]["b5c_gsm8k"][0]
    assert doc["arguments"][0][0].count("Question:") >= 5, "GSM8K keeps its 5 few-shot examples"


@pytest.mark.slow
@pytest.mark.shared
def test_project_tasks_equal_builtin_tasks_on_real_items(shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The built-in commonsense_qa and piqa tasks, their hub datasets replaced by the same shared items, give the
    same per-item predictions and accuracy as the project tasks, with the embedded model."""
    import datasets
    import lm_eval
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    from big5chat.config import ModelSpec
    from big5chat.data.loaders import load_benchmark
    from big5chat.models.materialize import materialize

    materialize(ModelSpec("embedded", "smollm2-135m-instruct"), tmp_path / "base", "base")
    files = {"commonsense_qa": shared_data / "benchmarks/commonsenseqa/dev_rand_split.jsonl", "piqa": shared_data / "benchmarks/piqa/valid.jsonl"}
    hub = {"tau/commonsense_qa": "commonsense_qa", "baber/piqa": "piqa"}
    original = datasets.load_dataset

    def fake_load_dataset(path: str, *args, **kwargs):  # type: ignore[no-untyped-def]
        if path in hub:
            rows = [dict(r) for r in load_benchmark(hub[path], files[hub[path]]).rows]
            return datasets.DatasetDict({"validation": datasets.Dataset.from_list(rows), "train": datasets.Dataset.from_list(rows[:10])})
        return original(path, *args, **kwargs)

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    write_tasks({t: DataSource(path=str(f)) for t, f in files.items()}, tmp_path / "tasks")
    lm = HFLM(pretrained=str(tmp_path / "base"), device="cpu", batch_size=8, dtype="float32")
    kw = dict(limit=40, apply_chat_template=True, fewshot_as_multiturn=False, bootstrap_iters=10)
    ours = lm_eval.simple_evaluate(model=lm, tasks=["b5c_commonsense_qa", "b5c_piqa"], task_manager=task_manager(tmp_path / "tasks"), **kw)
    builtin = lm_eval.simple_evaluate(model=lm, tasks=["commonsense_qa", "piqa"], task_manager=TaskManager(), **kw)
    for task in ("commonsense_qa", "piqa"):
        mine, theirs = ours["samples"][f"b5c_{task}"], builtin["samples"][task]
        assert [s["doc_id"] for s in mine] == [s["doc_id"] for s in theirs]
        assert [s["acc"] for s in mine] == [s["acc"] for s in theirs]
        assert ours["results"][f"b5c_{task}"]["acc,none"] == builtin["results"][task]["acc,none"]


def test_lm_evals_environment_report_is_collected_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import lm_eval.evaluator as evaluator

    from big5chat.reasoning.run import collect_env_info_once

    calls = []

    def slow_report(storage: dict) -> None:
        calls.append(1)
        storage.update({"pretty_env_info": "torch ...", "transformers_version": "x"})

    monkeypatch.setattr(evaluator, "add_env_info", slow_report)
    collect_env_info_once()
    collect_env_info_once()  # idempotent: not wrapped twice
    first, second = {"results": 1}, {}
    evaluator.add_env_info(first)
    evaluator.add_env_info(second)
    assert len(calls) == 1 and first["pretty_env_info"] == second["pretty_env_info"] == "torch ..." and first["results"] == 1
