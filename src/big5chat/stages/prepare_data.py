"""The prepare_data stage: the trait corpus split high/low per trait, the SODA scenarios, the instruments checked.

The corpus's posts are labelled high/low per trait (the median or terciles of their z-scores, the paper's §2.1, or the
corpus's own levels) and split train/test (seeded, by post or by author: ``data.corpus.label_corpus``); a seeded sample
of SODA scenarios is drawn (§2.4); the questionnaire instruments and the benchmark sets are validated (later stages
read them from their sources). Writes ``data/processed/`` (posts.csv, scenarios.jsonl and manifest.json with every
input's sha256 and row count), the labels figure, the metrics and the run record.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from big5chat import paths, storage
from big5chat import runtime as rt
from big5chat.data import corpus, loaders
from big5chat.data.manifest import describe_input
from big5chat.traits import LEVELS

SPLITS = ("train", "test")
FIGURE = ("prepare_data", "labels.png")  # below paths.FIGURES
SCENARIO_COLUMNS = ["original_index", "relation", "PersonX", "PersonY", "narrative"]  # what the notebook shows


@dataclass(frozen=True)
class PrepareDataResult:
    counts: pd.DataFrame  # per trait: posts per split and level, labelled, missing, dropped (and the thresholds of z labels)
    scenarios: pd.DataFrame  # the sampled SODA scenarios
    instruments: dict[str, dict[str, int]]  # per questionnaire: items and reverse-keyed items
    benchmarks: dict[str, int]  # rows per benchmark set
    inputs: pd.DataFrame  # the manifest's inputs: source, sha256, rows
    metrics: dict[str, Any]
    figures: list[Path]
    outputs: dict[str, Path]

    @property
    def scenario_preview(self) -> pd.DataFrame:
        """The first three sampled scenarios: who talks to whom, and the narrative."""
        return self.scenarios[SCENARIO_COLUMNS].head(3)


def subsample(posts: pd.DataFrame, max_posts: int | None, seed: int) -> pd.DataFrame:
    """``max_posts`` posts drawn with ``seed`` (every post when None or not fewer than the corpus holds)."""
    if max_posts is not None and max_posts < len(posts):
        return posts.sample(n=max_posts, random_state=seed).reset_index(drop=True)
    return posts


def level_counts(trait_summary: dict[str, Any]) -> dict[str, int]:
    """``train_high``, ``train_low``, ``test_high``, ``test_low``: a trait's posts per split and level."""
    return {f"{s}_{lvl}": trait_summary["counts"][s][lvl] for s in SPLITS for lvl in LEVELS}


def split_counts(split_summary: dict[str, Any]) -> pd.DataFrame:
    """One row per trait: its posts per split and level, labelled, missing and dropped (median), and for z labels
    the thresholds (``low_max``, ``high_min``)."""
    return pd.DataFrame(
        {
            t: level_counts(s_)
            | {"labelled": s_["labelled"], "missing": s_["missing"], "dropped_middle": s_["dropped_middle"]}
            | ({"low_max": s_["low_max"], "high_min": s_["high_min"]} if "low_max" in s_ else {})
            for t, s_ in split_summary["traits"].items()
        }
    ).T


def split_metrics(split_summary: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per trait: the split's summary (without the nested counts) and its posts per split and level."""
    return {t: {k: v for k, v in s_.items() if k != "counts"} | level_counts(s_) for t, s_ in split_summary["traits"].items()}


def instrument_summary(questionnaires: dict[str, dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Per questionnaire: its items and how many are reverse-keyed."""
    return {name: {"items": len(q["items"]), "reverse": sum(r["reverse"] for r in q["items"].rows)} for name, q in questionnaires.items()}


def manifest_inputs(
    d: Any, posts_rows: int, scenario_rows: int, bench_counts: dict[str, int], questionnaires: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    """Every input the stage read (``d``: the data section): the posts, the scenarios, the benchmark sets and the
    instruments' item files, with source, sha256 and rows."""
    inputs = [describe_input("posts", d.posts, posts_rows), describe_input("scenarios", d.scenarios, scenario_rows)]
    inputs += [describe_input(f"benchmarks.{t}", src, bench_counts[t]) for t, src in d.benchmarks.items()]
    inputs += [
        describe_input(f"instruments.{n}", paths.resolve(d.instruments_dir) / q["items_file"], len(q["items"])) for n, q in questionnaires.items()
    ]
    return inputs


def prepare_data_metrics(n_loaded: int, labelled: pd.DataFrame, split_summary: dict[str, Any], scenarios: int, available: int,
                         instruments: dict[str, dict[str, int]], bench_counts: dict[str, int], seed: int) -> dict[str, Any]:  # fmt: skip
    """The posts loaded, used and in test, the split per trait, the scenarios, the instruments and the benchmark sets."""
    return {
        "posts": {"loaded": n_loaded, "used": len(labelled), "test": split_summary["n_test"], "labels": split_summary["labels"],
                  "unlabelled_dropped": split_summary["unlabelled_dropped"]},
        "split": split_metrics(split_summary),
        "scenarios": {"sampled": scenarios, "available": available},
        "instruments": instruments,
        "benchmarks": bench_counts,
        "seed": seed,
    }  # fmt: skip


def label_posts(d: Any, p: Any, traits: list[str], record: dict[str, Any]) -> tuple[Any, int, pd.DataFrame, dict[str, Any]]:
    """(the posts table, posts loaded, the labelled and split posts, the split's summary)."""
    with rt.timed(record, "posts_s"):
        posts_table = loaders.load_posts(d.posts)
        posts = posts_table.to_frame()
        n_loaded = len(posts)
        posts = subsample(posts, p.max_posts, p.seed)
        labelled, split_summary = corpus.label_corpus(
            posts, method=p.split_method, test_size=p.test_size, seed=p.seed, by_author=p.by_author, traits=traits
        )
    print(f"{n_loaded} posts loaded from {posts_table.source} ({split_summary['labels']} labels); {len(labelled)} used, "
          f"{split_summary['unlabelled_dropped']} labelled for no trait dropped; {split_summary['n_test']} in test")  # fmt: skip
    return posts_table, n_loaded, labelled, split_summary


def sample_scenarios(d: Any, p: Any, record: dict[str, Any]) -> tuple[Any, pd.DataFrame]:
    """(the scenarios table, the seeded sample of ``p.n_scenarios``)."""
    with rt.timed(record, "scenarios_s"):
        scen_table = loaders.load_scenarios(d.scenarios)
        scenarios = corpus.sample_scenarios(scen_table.to_frame(), p.n_scenarios, p.scenario_seed)
    relations = scenarios["relation"].value_counts().to_dict()
    print(f"{len(scenarios)} of {len(scen_table)} scenarios sampled (seed {p.scenario_seed}); relations: {relations}")
    return scen_table, scenarios


def validate_sets(d: Any, record: dict[str, Any]) -> tuple[dict[str, dict[str, Any]], dict[str, int]]:
    """(the questionnaires, rows per benchmark set): read and validated; later stages read them from their sources."""
    with rt.timed(record, "validate_s"):
        questionnaires = loaders.load_questionnaires(d.instruments_dir)
        bench_counts = {task: len(loaders.load_benchmark(task, src)) for task, src in d.benchmarks.items()}
    return questionnaires, bench_counts


def draw_labels(labelled: pd.DataFrame, split_summary: dict[str, Any], traits: list[str]) -> Path:
    """The labels figure (``reporting.data_figures.label_split``), saved as a PNG."""
    import matplotlib

    matplotlib.use("Agg")  # the figure is saved as a PNG (and shown from it), not drawn by the kernel's backend
    import matplotlib.pyplot as plt

    from big5chat.reporting.data_figures import label_split

    fig = label_split(labelled, split_summary, traits)
    figure = storage.save_figure(fig, paths.FIGURES.joinpath(*FIGURE))
    plt.close(fig)
    return figure


def run(cfg: dict[str, Any]) -> PrepareDataResult:
    """The stage: ``cfg`` holds the ``traits``, ``data``, ``prepare_data`` and ``runtime`` sections (``config.stage_config``)."""
    p, d, traits = cfg["prepare_data"], cfg["data"], cfg["traits"]
    env = rt.setup(cfg["runtime"].threads, seed=p.seed)
    record: dict[str, Any] = {}
    posts_table, n_loaded, labelled, split_summary = label_posts(d, p, traits, record)
    figure = draw_labels(labelled, split_summary, traits)
    scen_table, scenarios = sample_scenarios(d, p, record)
    questionnaires, bench_counts = validate_sets(d, record)
    instruments = instrument_summary(questionnaires)
    out_posts = storage.write_csv(paths.PROCESSED / "posts.csv", labelled)
    out_scen = storage.write_jsonl(paths.PROCESSED / "scenarios.jsonl", scenarios.to_dict(orient="records"))
    inputs = manifest_inputs(d, len(posts_table), len(scen_table), bench_counts, questionnaires)
    manifest = storage.write_json(paths.PROCESSED / "manifest.json", {"inputs": inputs, "split": split_summary, "scenario_seed": p.scenario_seed})
    metrics = prepare_data_metrics(n_loaded, labelled, split_summary, len(scenarios), len(scen_table), instruments, bench_counts, p.seed)
    metrics_file = storage.write_json(paths.METRICS / "prepare_data.json", metrics)
    run_record = rt.write_run_record("prepare_data", record, env)
    outputs = {"posts": out_posts, "scenarios": out_scen, "manifest": manifest, "metrics": metrics_file, "run_record": run_record, "figure": figure}
    return PrepareDataResult(split_counts(split_summary), scenarios, instruments, bench_counts, pd.DataFrame(inputs), metrics, [figure], outputs)
