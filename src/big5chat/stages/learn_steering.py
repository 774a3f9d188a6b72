"""The learn_steering stage: the vectors of the method ``steer`` (activation steering; contrastive activation
addition with mean-difference vectors, ``big5chat.steering``).

For each trait, ``steer.n_pairs`` texts labelled high and as many labelled low (the trait corpus's train posts, the
generated dialogue replies, or both: ``steer.source``) go through the base model; each text's activation at a layer
is the mean of that layer's output over its tokens, and the trait's direction is the unit vector of mean(high) minus
mean(low) (``steering.vectors.learn_vectors``). Writes ``data/models/steering/vectors.safetensors``, the figure, the
metrics and the run record.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from big5chat import paths, storage
from big5chat import runtime as rt
from big5chat.models.loading import load_chat_model
from big5chat.progress import progress
from big5chat.steering.hooks import check_layers
from big5chat.steering.vectors import TraitVectors, contrastive_sets, learn_vectors, source_texts

VECTORS = ("steering", "vectors.safetensors")  # below paths.MODELS
FIGURE = ("learn_steering", "vectors.png")  # below paths.FIGURES


@dataclass(frozen=True)
class LearnSteeringResult:
    vectors: TraitVectors
    norms: dict[int, float]  # layer -> the typical residual norm there
    separation: pd.DataFrame  # trait x layer: high - low projection along the direction, in SDs
    cosine: pd.DataFrame  # trait x trait: cosine between the directions at the first layer
    metrics: dict[str, Any]
    figures: list[Path]
    outputs: dict[str, Path]


def read_csv_texts(path: Path, dtype: dict[str, Any] | None = None) -> pd.DataFrame:
    """A CSV with empty cells kept as '' (not NaN)."""
    return pd.read_csv(path, keep_default_na=False, dtype=dtype)


def labelled_sources(source: str, traits: list[str], processed: Path, data: Path) -> pd.DataFrame:
    """The labelled texts of ``steer.source``: prepare_data's posts and/or generate_dialogues' replies (each read
    only when the source uses it)."""
    return source_texts(source, traits, corpus=partial(read_csv_texts, processed / "posts.csv", {"message_id": str}),
                        dialogues=partial(read_csv_texts, data / "generated" / "big5chat.csv"))  # fmt: skip


def layer_norms(vectors: TraitVectors, layers: list[int]) -> dict[int, float]:
    """Layer -> the typical residual norm there (3 decimals)."""
    return dict(zip(layers, [round(float(n), 3) for n in vectors.norms]))


def separation_table(vectors: TraitVectors, layers: list[int]) -> pd.DataFrame:
    """Trait x layer: how far apart the high and the low texts sit along the direction (SDs of all projections)."""
    return pd.DataFrame(vectors.meta["separation_sd"], index=layers).T


def first_layer_cosine(vectors: TraitVectors, traits: list[str]) -> pd.DataFrame:
    """Trait x trait: the cosines between the unit directions at the first layer."""
    dirs = torch.stack([vectors.directions[t][0] for t in traits])
    return pd.DataFrame((dirs @ dirs.T).numpy(), index=traits, columns=traits)


def steering_metrics(s: Any, vectors: TraitVectors, norms: dict[int, float], cosine: pd.DataFrame, traits: list[str]) -> dict[str, Any]:
    """The layers, the source, the texts per trait, the residual norms, the separation and the first layer's cosines."""
    return {
        "layers": s.layers,
        "source": s.source,
        "n_texts": vectors.meta["n_texts"],
        "residual_norm": {str(k): v for k, v in norms.items()},
        "separation_sd": vectors.meta["separation_sd"],
        "cosine_first_layer": {t: {u: round(float(cosine.at[t, u]), 4) for u in traits} for t in traits},
        "seed": s.seed,
    }


def learn(s: Any, sets: dict[str, tuple[list[str], list[str]]], record: dict[str, Any]) -> TraitVectors:
    """The base model's trait vectors at ``s.layers`` from the contrastive sets."""
    model, tok = load_chat_model(paths.MODELS / "base", dtype=s.dtype)
    check_layers(model, s.layers)
    bar = progress(total=sum(len(h) + len(lo) for h, lo in sets.values()), desc="learn_steering")
    with rt.timed(record, "learn_s"):
        vectors = learn_vectors(model, tok, sets, s.layers, batch_size=s.batch_size, max_length=s.max_length, progress=bar,
                                meta={"source": s.source, "seed": s.seed, "n_pairs": s.n_pairs, "dtype": s.dtype})  # fmt: skip
    bar.close()
    return vectors


def draw_vectors(separation: pd.DataFrame, cosine: pd.DataFrame, traits: list[str], layer: int) -> Path:
    """The vectors figure (``reporting.data_figures.steering_vectors``), saved as a PNG."""
    import matplotlib

    matplotlib.use("Agg")  # the figure is saved as a PNG (and shown from it), not drawn by the kernel's backend
    import matplotlib.pyplot as plt

    from big5chat.reporting.data_figures import steering_vectors

    fig = steering_vectors(separation, cosine, traits, layer)
    figure = storage.save_figure(fig, paths.FIGURES.joinpath(*FIGURE))
    plt.close(fig)
    return figure


def run(cfg: dict[str, Any]) -> LearnSteeringResult:
    """The stage: ``cfg`` holds the ``traits``, ``steer`` and ``runtime`` sections (``config.stage_config``)."""
    s, traits = cfg["steer"], list(cfg["traits"])
    env = rt.setup(cfg["runtime"].threads, seed=s.seed)
    texts = labelled_sources(s.source, traits, paths.PROCESSED, paths.DATA)
    sets = contrastive_sets(texts, traits, s.n_pairs, s.seed)
    print(f"{s.source}: {len(texts)} labelled texts; per trait {s.n_pairs} high and {s.n_pairs} low (or fewer): "
          f"{ {t: (len(h), len(lo)) for t, (h, lo) in sets.items()} }")  # fmt: skip
    record: dict[str, Any] = {}
    vectors = learn(s, sets, record)
    out_vectors = paths.MODELS.joinpath(*VECTORS)
    vectors.save(out_vectors)
    norms = layer_norms(vectors, s.layers)
    print("typical residual norm per layer:", norms)
    separation = separation_table(vectors, s.layers)
    cosine = first_layer_cosine(vectors, traits)
    figure = draw_vectors(separation, cosine, traits, s.layers[0])
    metrics = steering_metrics(s, vectors, norms, cosine, traits)
    metrics_file = storage.write_json(paths.METRICS / "learn_steering.json", metrics)
    run_record = rt.write_run_record("learn_steering", record, env)
    outputs = {"vectors": out_vectors, "metrics": metrics_file, "run_record": run_record, "figure": figure}
    return LearnSteeringResult(vectors, norms, separation, cosine, metrics, [figure], outputs)
