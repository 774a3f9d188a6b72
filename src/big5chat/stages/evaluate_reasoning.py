"""The evaluate_reasoning stage: the study's reasoning benchmarks through lm-evaluation-harness (the paper, §2.10).

The grid (methods x trait conditions x tasks) runs by units (a cell's task), each kept in the unit store when done,
in this process or in N processes started by ``compute.launcher`` (``reasoning.shards``). The scores are laid out
as the study's table (percent) beside the paper's, and aggregated into the study's domains. Writes
reports/evaluate_reasoning/ (results.csv, samples.jsonl, table.csv), the figure, the metrics and the run record.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from big5chat import config, paths, storage
from big5chat import runtime as rt
from big5chat.progress import progress
from big5chat.reasoning import domains as rd
from big5chat.reasoning.figures import paper_table, table_figure
from big5chat.reasoning.run import dump_samples
from big5chat.reasoning.shards import ReasoningRun, launch

OUT_DIR = ("evaluate_reasoning",)  # below paths.REPORTS
FIGURE = ("evaluate_reasoning", "reasoning_table.png")  # below paths.FIGURES


@dataclass(frozen=True)
class EvaluateReasoningResult:
    written: pd.DataFrame  # the lm-eval task files the stage wrote, one row per task
    results: pd.DataFrame  # one row per cell x task: score, stderr, n, seconds
    speed: pd.DataFrame  # items, seconds and items per second per task
    table: pd.DataFrame  # ours in the study's layout (percent)
    paper_table: pd.DataFrame  # the paper's LLaMA-3-70B table in the same layout
    domains: pd.DataFrame  # the study's domains per cell (method:trait:level)
    metrics: dict[str, Any]
    figures: list[Path]
    outputs: dict[str, Path]

    @property
    def direct(self) -> dict[str, Any]:
        """Direct's task scores and domains (the metrics' headline)."""
        return {k: self.metrics[k] for k in ("direct", "direct_domains")}


def compute_for(cfg: dict[str, Any]) -> config.ComputeConfig:
    """The launch settings: ``compute``'s launcher and accelerate config, the stage's own process count."""
    c = cfg["compute"]
    return config.ComputeConfig(c.launcher, c.accelerate_config, cfg["evaluate_reasoning"].processes)


def evaluate(run: ReasoningRun, processes: int, compute: config.ComputeConfig) -> tuple[pd.DataFrame, list[dict[str, Any]], dict[str, Any]]:
    """Every unit of the grid: in this process (units already stored are read, not rerun), or by ``processes``
    processes on this node (``compute.launcher``), each every N-th unit, then read back in grid order."""
    if processes == 1:
        bar = progress(total=run.units, desc="evaluate_reasoning")
        results, samples, meta = run.run(on_cell=lambda c, s: bar.update(1))
        bar.close()
        return results, samples, meta
    launch(compute)
    return run.merged()


def speed_table(results: pd.DataFrame) -> pd.DataFrame:
    """Per task: items and seconds summed over the cells, and items per second."""
    speed = results.groupby("task").agg(items=("n", "sum"), seconds=("seconds", "sum"))
    speed["items_per_s"] = (speed["items"] / speed["seconds"]).round(2)
    return speed


def percent_table(results: pd.DataFrame) -> pd.DataFrame:
    """Our scores in the study's table layout, in percent."""
    return rd.reasoning_table(results.assign(score=100 * results["score"]))


def direct_scores(results: pd.DataFrame) -> dict[str, float]:
    """Direct's score per task."""
    return results[results["method"] == "direct"].set_index("task")["score"].to_dict()


def domains_by_cell(results: pd.DataFrame) -> dict[str, dict[str, float]]:
    """{``method:trait:level`` ('none' where empty): the study's domains, rounded to 4 digits}."""
    by_cell = {}
    for (m, t, lvl), g in results.groupby(["method", "trait", "level"], sort=False):
        by_cell[f"{m}:{t or 'none'}:{lvl or 'none'}"] = {k: round(v, 4) for k, v in rd.aggregate(dict(zip(g["task"], g["score"]))).items()}
    return by_cell


def reasoning_metrics(results: pd.DataFrame, by_cell: dict[str, dict[str, float]], meta: dict[str, Any]) -> dict[str, Any]:
    """The stage's metrics file: Direct's scores and domains, every cell's domains, items per task, the settings."""
    direct = direct_scores(results)
    return {
        "direct": {k: round(v, 4) for k, v in direct.items()},
        "direct_domains": {k: round(v, 4) for k, v in rd.aggregate(direct).items()},
        "domains": by_cell,
        "items": {t: int(v) for t, v in results.groupby("task")["n"].max().items()},
        "settings": meta,
    }


def run(cfg: dict[str, Any]) -> EvaluateReasoningResult:
    """The stage: ``cfg`` holds the ``traits``, ``data``, ``evaluate_reasoning``, ``steer``, ``compute`` (launcher
    and accelerate config) and ``runtime`` sections (``config.stage_config``)."""
    import matplotlib

    matplotlib.use("Agg")  # the figure is saved and shown as a PNG, never drawn by the notebook's backend
    import matplotlib.pyplot as plt

    e, trait_list = cfg["evaluate_reasoning"], list(cfg["traits"])
    compute = compute_for(cfg)
    env = rt.setup(cfg["runtime"].threads)
    reasoning = ReasoningRun.from_config(e, trait_list, cfg["data"].benchmarks, cfg["steer"])  # grid, task files, unit store
    print(f"{len(reasoning.grid)} cells x {len(e.tasks)} tasks; items per task: {reasoning.kwargs['limits']}; "
          f"{reasoning.store.count()} of {reasoning.units} units already done ({paths.relative(reasoning.store.folder)})")  # fmt: skip
    record: dict[str, Any] = {}
    with rt.timed(record, "evaluate_s"):
        results, samples, meta = evaluate(reasoning, e.processes, compute)
    out_dir = paths.REPORTS.joinpath(*OUT_DIR)
    results_csv = storage.write_csv(out_dir / "results.csv", results)
    dump_samples(samples, out_dir / "samples.jsonl")
    speed = speed_table(results)
    ours = percent_table(results)
    table_csv = storage.write_csv(out_dir / "table.csv", ours)
    paper = paper_table()
    by_cell = domains_by_cell(results)
    fig = table_figure(ours, paper)
    figure = storage.save_figure(fig, paths.FIGURES.joinpath(*FIGURE))
    plt.close(fig)
    metrics = reasoning_metrics(results, by_cell, meta)
    metrics_file = storage.write_json(paths.METRICS / "evaluate_reasoning.json", metrics)
    run_record = rt.write_run_record("evaluate_reasoning", record | {"items_per_s": speed["items_per_s"].to_dict()}, env)
    outputs = {"results": results_csv, "samples": out_dir / "samples.jsonl", "table": table_csv, "figure": figure, "metrics": metrics_file,
               "run_record": run_record}  # fmt: skip
    return EvaluateReasoningResult(
        pd.DataFrame(reasoning.written).T, results, speed, ours, paper, pd.DataFrame(by_cell).T, metrics, [figure], outputs
    )
