"""The judge with its encoder's lower layers frozen against every layer trained: training time and accuracy, one run.

    python bench/judge_frozen_layers.py [--frozen 0 2 3]

Trains the train_classifier stage's judge (its params, the processed sample posts' train split) once per setting and
prints the training time, its ratio to the first setting's, and the mean accuracy and AUC on the test split, the
out-of-topic held-out posts and, when ../shared is beside the project, two real labelled corpora: PsychGenerator's
posts_trait_level_1000.json (a dev set: one trait per post) and the stage's reference file (no post in common).
Needs `dvc repro train_classifier` (or make repro) first: it reads data/processed and data/models/encoder.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from big5chat import config, paths  # noqa: E402
from big5chat import runtime as rt  # noqa: E402
from big5chat.classifier import metrics as cm  # noqa: E402
from big5chat.classifier.experiment import Corpus, fit_and_test, judge_on, predict  # noqa: E402

DEV = ROOT.parent / "shared" / "data" / "psychgenerator_samples" / "posts_trait_level_1000.json"


def dev_accuracy(res: object, c: object, traits: tuple[str, ...]) -> tuple[float, float]:
    """Mean accuracy and AUC on the dev corpus: each post labelled high or low for one trait (o/c/e/a/n)."""
    dev = pd.DataFrame(json.loads(DEV.read_text(encoding="utf-8")))
    dev["trait"] = dev["trait"].map({t[0]: t for t in traits})
    pred = predict(res, dev["post"].tolist(), c)  # type: ignore[arg-type]
    acc, auc = [], []
    for j, t in enumerate(traits):
        rows = (dev["trait"] == t).to_numpy()
        y = (dev.loc[rows, "level"] == "high").to_numpy(float)
        acc.append(cm.binary_accuracy(pred[rows, j], y))
        auc.append(cm.binary_auc(pred[rows, j], y))
    return float(np.mean(acc)), float(np.mean(auc))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frozen", type=int, nargs="+", default=[0, 2])
    args = ap.parse_args()
    cfg = config.stage_config(traits=None, train_classifier=None, runtime=None)
    heldout = config.stage_value("data.heldout_posts", None)
    traits = tuple(cfg["traits"])
    posts = pd.read_csv(paths.PROCESSED / "posts.csv", keep_default_na=False, dtype={"message_id": str, "author_id": str})
    label_kind = json.loads((paths.PROCESSED / "manifest.json").read_text())["split"].get("labels", "z")
    corpus = Corpus.from_posts(posts, traits, label_kind)
    rows, first = [], None
    for n in args.frozen:
        c = dataclasses.replace(cfg["train_classifier"], frozen_layers=n)
        rt.setup(cfg["runtime"].threads, seed=c.seed)
        start = time.perf_counter()
        run = fit_and_test(
            corpus, (posts["split"] == "train").to_numpy(), (posts["split"] == "test").to_numpy(), "by_post", c, paths.MODELS / "encoder"
        )
        seconds = time.perf_counter() - start
        first = first or seconds
        row = {"frozen_layers": n, "train_s": round(seconds, 1), "speed_vs_first": round(first / seconds, 2),
               "test": run["summary"]["mean_accuracy"], "test_auc": run["summary"]["mean_auc"]}  # fmt: skip
        if heldout is not None:
            h = judge_on(run["result"], heldout, "heldout", traits, c)
            row |= {"heldout": h["mean_accuracy"], "heldout_auc": h["mean_auc"]}
        if DEV.is_file():
            row["dev"], row["dev_auc"] = (round(v, 4) for v in dev_accuracy(run["result"], c, traits))
        if c.reference_posts and paths.resolve(c.reference_posts).is_file():
            r = judge_on(run["result"], c.reference_posts, c.reference_posts, traits, c)
            row |= {"reference": r["mean_accuracy"], "reference_auc": r["mean_auc"]}
        rows.append(row)
        print(json.dumps(row), flush=True)
    print(pd.DataFrame(rows).set_index("frozen_layers").to_string())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
