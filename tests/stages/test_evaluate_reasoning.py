"""The evaluate_reasoning stage: the speed, percent and domain tables, the metrics, the launch settings, and run() on
a tiny model (written files, the figure, and a second run that reads every unit back from the store)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from big5chat import paths, storage
from big5chat.config import ComputeConfig, DataSource, EvaluateReasoningConfig, RuntimeConfig, SteerConfig
from big5chat.reasoning import run as rr
from big5chat.stages import evaluate_reasoning as stage

TASKS = ["commonsense_qa", "piqa"]


def _results() -> pd.DataFrame:
    rows = [("direct", "", "", "commonsense_qa", 0.5, 4, 2.0), ("direct", "", "", "piqa", 0.25, 4, 1.0),
            ("sft", "openness", "high", "commonsense_qa", 0.75, 4, 4.0), ("sft", "openness", "high", "piqa", 0.5, 2, 1.0),
            ("sft", "openness", "low", "commonsense_qa", 0.25, 4, 2.0), ("sft", "openness", "low", "piqa", 0.123456, 4, 2.0)]  # fmt: skip
    return pd.DataFrame(rows, columns=["method", "trait", "level", "task", "score", "n", "seconds"])


def test_speed_sums_items_and_seconds_per_task() -> None:
    speed = stage.speed_table(_results())
    assert speed.loc["commonsense_qa"].tolist() == [12, 8.0, 1.5] and speed.loc["piqa"].tolist() == [10, 4.0, 2.5]


def test_percent_table_is_the_study_layout_in_percent() -> None:
    row = stage.percent_table(_results()).set_index("benchmark").loc["piqa"]
    assert (row["method"], row["Direct"], row["O+"], row["O-"]) == ("sft", 25.0, 50.0, pytest.approx(12.3456))


def test_domains_per_cell_and_the_metrics() -> None:
    results = _results()
    by_cell = stage.domains_by_cell(results)
    assert list(by_cell) == ["direct:none:none", "sft:openness:high", "sft:openness:low"]
    assert by_cell["sft:openness:low"]["Commonsense"] == round((0.25 + 0.123456) / 2, 4)
    assert all(pd.isna(by_cell["direct:none:none"][d]) for d in ("Social", "Math", "Hallucination", "General"))  # tasks not run
    assert stage.direct_scores(results) == {"commonsense_qa": 0.5, "piqa": 0.25}
    metrics = stage.reasoning_metrics(results, by_cell, {"backend": "hf"})
    assert list(metrics) == ["direct", "direct_domains", "domains", "items", "settings"]
    assert metrics["direct_domains"]["Commonsense"] == 0.375 and metrics["items"] == {"commonsense_qa": 4, "piqa": 4}


def test_the_launch_takes_the_stages_own_process_count() -> None:
    cfg = {"compute": ComputeConfig(launcher="torchrun", num_processes=8), "evaluate_reasoning": EvaluateReasoningConfig(processes=2)}
    c = stage.compute_for(cfg)
    assert (c.launcher, c.accelerate_config, c.num_processes) == ("torchrun", "configs/accelerate/ddp.yaml", 2)


def test_several_processes_launch_then_read_back(monkeypatch: pytest.MonkeyPatch) -> None:
    launched = []
    monkeypatch.setattr(stage, "launch", launched.append)
    run = SimpleNamespace(merged=lambda: ("merged", [], {}), run=lambda **k: pytest.fail("the stage's process ran units itself"))
    compute = ComputeConfig(num_processes=2)
    assert stage.evaluate(run, 2, compute) == ("merged", [], {}) and launched == [compute]  # type: ignore[arg-type]


@pytest.fixture
def project(tiny_models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name, sub in {"MODELS": "data/models", "SCRATCH": ".scratch", "REPORTS": "reports", "METRICS": "reports/metrics",
                      "FIGURES": "reports/figures"}.items():  # fmt: skip
        monkeypatch.setattr(paths, name, tmp_path / sub)
    shutil.copytree(tiny_models["base"], tmp_path / "data/models/base")
    return tmp_path


def _cfg() -> dict:
    e = EvaluateReasoningConfig(methods=["direct", "prompt_inst"], conditions=None, tasks=TASKS, limit=2, max_gen_toks=4, batch_size=2,
                                dtype="float32", backend="hf")  # fmt: skip
    data = SimpleNamespace(benchmarks={t: DataSource(path=f"data/sample/benchmarks/{t}.jsonl") for t in TASKS})
    return {"traits": ["openness"], "data": data, "evaluate_reasoning": e, "steer": SteerConfig(), "compute": ComputeConfig(),
            "runtime": RuntimeConfig(threads=1)}  # fmt: skip


def test_run_writes_the_tables_the_figure_and_the_metrics_then_resumes_from_the_store(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = stage.run(_cfg())
    out = project / "reports/evaluate_reasoning"
    assert list(result.written.index) == TASKS and len(result.results) == 6  # Direct + Prompt-Inst at openness high, low
    assert result.outputs["results"] == out / "results.csv" and (out / "samples.jsonl").is_file()
    assert pd.read_csv(out / "table.csv").shape == result.table.shape and list(result.table["method"]) == ["prompt_inst"] * 2
    assert result.figures == [project / "reports/figures/evaluate_reasoning/reasoning_table.png"] and result.figures[0].stat().st_size > 0
    metrics_file = project / "reports/metrics/evaluate_reasoning.json"
    assert storage.write_json(project / "metrics.json", result.metrics).read_bytes() == metrics_file.read_bytes()
    assert set(result.direct) == {"direct", "direct_domains"} and list(result.domains.index) == list(result.metrics["domains"])
    assert "items_per_s" in json.loads((project / "reports/runs/evaluate_reasoning.json").read_text())
    assert set(result.paper_table["benchmark"]) >= set(TASKS)
    files = {p: p.read_bytes() for p in (out / "results.csv", out / "samples.jsonl", out / "table.csv", metrics_file)}
    monkeypatch.setattr(rr, "make_lm", lambda *a, **k: pytest.fail("a stored unit was rerun"))
    again = stage.run(_cfg())  # every unit is read back from the store: the same tables, samples and metrics
    assert again.results.equals(result.results) and all(p.read_bytes() == b for p, b in files.items())
