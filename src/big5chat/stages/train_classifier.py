"""The train_classifier stage: the trait classifier (the judge, the paper's §2.3) trained and tested.

An encoder with five regression heads is trained on ``norm.cdf(z)`` (z-labelled corpora) or on 1/0 for high/low
(level-labelled ones) with the mean of the five MSEs, a post counting only for the traits it is labelled for (a
masked loss; ``classifier.experiment``). It is tested on prepare_data's test split, then on posts it never saw in any
form: the out-of-topic held-out set (``data.heldout_posts``) and, when the file exists, a real labelled corpus
(``train_classifier.reference_posts``); when posts carry authors it is trained again with authors kept apart. Writes
the judge to ``data/models/classifier/`` (every later stage scores text with it), the loss curve, the figure, the
metrics and the run record.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from big5chat import paths, storage
from big5chat import runtime as rt
from big5chat.classifier import metrics as cm
from big5chat.classifier.experiment import Corpus, author_split, fit_and_test, judge_on
from big5chat.classifier.model import save
from big5chat.paper import findings

ENCODER = "encoder"  # below paths.MODELS
CLASSIFIER = "classifier"
FIGURE = ("train_classifier", "accuracy_calibration.png")  # below paths.FIGURES
CURVE = ("plots", "train_classifier", "loss.csv")  # below paths.REPORTS
CALIBRATION_BINS = 8
TABLE_NAMES = {"heldout": "out-of-topic held-out posts", "reference": "real reference posts"}  # the figure's legend


@dataclass(frozen=True)
class TrainClassifierResult:
    label_kind: str  # "z" or "level"
    test: pd.DataFrame  # per trait: accuracy, AUC, MAE, Pearson r and n on the test split
    epochs: pd.DataFrame  # the training's epochs (train and validation loss)
    external: pd.DataFrame  # per table the judge never saw: n, mean accuracy, mean AUC
    curve: pd.DataFrame  # the loss per logged step
    metrics: dict[str, Any]
    figures: list[Path]
    outputs: dict[str, Path]

    @property
    def mean_accuracy(self) -> dict[str, float]:
        """The mean accuracy over the traits on the test split and on each table the judge never saw."""
        return {"test": self.metrics["test"]["mean_accuracy"], **{k: self.metrics[k]["mean_accuracy"] for k in self.external.index}}


def read_prepared(processed: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """prepare_data's posts (ids kept as strings, empty cells as '') and its manifest."""
    posts = pd.read_csv(processed / "posts.csv", keep_default_na=False, dtype={"message_id": str, "author_id": str})
    return posts, json.loads((processed / "manifest.json").read_text())


def split_masks(posts: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The train and test masks of prepare_data's split."""
    return (posts["split"] == "train").to_numpy(), (posts["split"] == "test").to_numpy()


def classifier_card(c: Any, label_kind: str, encoder_name: str) -> dict[str, Any]:
    """What classifier.json records beside the traits and the pooling: how texts are cut, the labels, the encoder,
    the target and the threshold."""
    return {"max_length": c.max_length, "long_texts": c.long_texts, "labels": label_kind, "encoder": encoder_name,
            "target": "norm.cdf(z)" if label_kind == "z" else "1 = high, 0 = low", "threshold": 0.5}  # fmt: skip


def has_authors(posts: pd.DataFrame) -> bool:
    """Whether every post carries an ``author_id``."""
    return bool("author_id" in posts and (posts["author_id"] != "").all())


def external_table(external: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """One row per table the judge never saw: n, mean accuracy, mean AUC."""
    return pd.DataFrame({k: {"n": v["n"], "mean_accuracy": v["mean_accuracy"], "mean_auc": v["mean_auc"]} for k, v in external.items()}).T


def accuracy_bars(test: dict[str, Any], external: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per-trait metrics by the figure's name of each table: the test posts first, then the tables never seen."""
    return {"test posts": test["traits"]} | {TABLE_NAMES[k]: v["traits"] for k, v in external.items()}


def calibration(pred: np.ndarray, y: np.ndarray, traits: tuple[str, ...], bins: int = CALIBRATION_BINS) -> dict[str, list[dict[str, Any]]]:
    """Per trait: the test split's predictions binned against the targets (``classifier.metrics.calibration_bins``)."""
    return {t: cm.calibration_bins(pred[:, j], y[:, j], bins=bins) for j, t in enumerate(traits)}


def classifier_metrics(
    label_kind: str, c: Any, test: dict[str, Any], external: dict[str, dict[str, Any]], by_author: dict[str, Any] | None
) -> dict[str, Any]:
    """The labels, how long texts are scored, the test split's summary, each external table's, and the split by
    author's when it ran."""
    metrics = {"labels": label_kind, "long_texts": c.long_texts, "test": test, **external}
    if by_author is not None:
        metrics["test_by_author"] = by_author
    return metrics


def judge_external(main: dict[str, Any], heldout_posts: Any, c: Any, traits: tuple[str, ...], record: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The judge on the out-of-topic held-out posts (when configured) and on the reference corpus (when its file exists)."""
    external = {}
    with rt.timed(record, "external_s"):
        if heldout_posts is not None:
            external["heldout"] = judge_on(main["result"], heldout_posts, heldout_posts.describe(), traits, c)
        if c.reference_posts and paths.resolve(c.reference_posts).is_file():
            external["reference"] = judge_on(main["result"], c.reference_posts, c.reference_posts, traits, c)
        else:
            print(f"no reference corpus: {c.reference_posts or 'train_classifier.reference_posts is null'} not found")
    return external


def compare_by_author(corpus: Corpus, posts: pd.DataFrame, manifest: dict[str, Any], main: dict[str, Any], c: Any,
                      record: dict[str, Any]) -> dict[str, Any] | None:  # fmt: skip
    """The judge trained again on a split by author (when asked, the posts carry authors and prepare_data split by
    post): its test summary, else None."""
    authors = has_authors(posts)
    if not (c.compare_author_split and authors and not manifest["split"]["by_author"]):
        print("no by-author comparison:", "posts carry no author_id" if not authors else "disabled or already split by author")
        return None
    tr_m, te_m = author_split(posts, manifest["split"]["test_size"], c.seed)
    with rt.timed(record, "train_by_author_s"):
        summary = fit_and_test(corpus, tr_m, te_m, "by_author", c, paths.MODELS / ENCODER)["summary"]
    print("by author:", summary["mean_accuracy"], "by post:", main["summary"]["mean_accuracy"])
    return summary


def draw_judge(main: dict[str, Any], external: dict[str, dict[str, Any]], traits: tuple[str, ...], label_kind: str) -> Path:
    """The accuracy and calibration figure (``reporting.data_figures.judge_accuracy_calibration``), saved as a PNG;
    the paper's accuracy from ``big5chat.paper.findings`` (data/paper/findings.csv)."""
    import matplotlib

    matplotlib.use("Agg")  # the figure is saved as a PNG (and shown from it), not drawn by the kernel's backend
    import matplotlib.pyplot as plt

    from big5chat.reporting.data_figures import judge_accuracy_calibration

    bins = calibration(main["pred"], main["y"], traits)
    fig = judge_accuracy_calibration(accuracy_bars(main["summary"], external), bins, traits, label_kind, findings()["classifier_accuracy"])
    figure = storage.save_figure(fig, paths.FIGURES.joinpath(*FIGURE))
    plt.close(fig)
    return figure


def run(cfg: dict[str, Any]) -> TrainClassifierResult:
    """The stage: ``cfg`` holds the ``traits``, ``train_classifier`` and ``runtime`` sections (``config.stage_config``)
    and the key ``data.heldout_posts`` (``config.stage_value``)."""
    c, traits = cfg["train_classifier"], tuple(cfg["traits"])
    env = rt.setup(cfg["runtime"].threads, seed=c.seed)
    posts, manifest = read_prepared(paths.PROCESSED)
    label_kind = manifest["split"].get("labels", "z")
    # Targets: norm.cdf(z) or 1/0 for high/low levels; NaN where a post is not labelled for the trait (masked in the loss).
    corpus = Corpus.from_posts(posts, traits, label_kind)
    print(f"{len(posts)} posts ({label_kind} labels); labelled per trait:", corpus.labelled_counts())
    record: dict[str, Any] = {}
    curve: list[dict[str, Any]] = []
    with rt.timed(record, "train_s"):
        main = fit_and_test(
            corpus, *split_masks(posts), "by_author" if manifest["split"]["by_author"] else "by_post", c, paths.MODELS / ENCODER, curve
        )
    encoder_name = json.loads((paths.MODELS / ENCODER / "card.json").read_text())["name"]
    save(main["result"].model, main["result"].tokenizer, paths.MODELS / CLASSIFIER, classifier_card(c, label_kind, encoder_name))
    external = judge_external(main, cfg["data.heldout_posts"], c, traits, record)
    by_author = compare_by_author(corpus, posts, manifest, main, c, record)
    figure = draw_judge(main, external, traits, label_kind)
    loss_csv = storage.write_csv(paths.REPORTS.joinpath(*CURVE), pd.DataFrame(curve))
    metrics = classifier_metrics(label_kind, c, main["summary"], external, by_author)
    metrics_file = storage.write_json(paths.METRICS / "train_classifier.json", metrics)
    run_record = rt.write_run_record("train_classifier", record, env)
    outputs = {"classifier": paths.MODELS / CLASSIFIER, "loss": loss_csv, "metrics": metrics_file, "run_record": run_record, "figure": figure}
    return TrainClassifierResult(label_kind, pd.DataFrame(main["summary"]["traits"]).T, pd.DataFrame(main["result"].epochs), external_table(external),
                                 pd.DataFrame(curve), metrics, [figure], outputs)  # fmt: skip
