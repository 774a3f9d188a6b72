"""The train_dpo stage: DPO of the instruct base on the dialogue dataset (the paper, §2.7).

For each scenario and trait, one pair per target level: chosen = the reply at that level, rejected = the reply at
the opposite level, the prompt as SFT's (``alignment.data.dpo_pairs``). A LoRA adapter trained from the base (not
from SFT); the reference is the base with the adapter disabled. Writes data/models/dpo, the loss curve, the metrics
(reward accuracy and margin on the held-out scenarios) and the run record (``alignment.stage``, shared with train_sft).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from big5chat.alignment import stage


@dataclass(frozen=True)
class TrainDpoResult:
    counts: dict[str, int]  # pairs built, dropped (and why), train/eval split
    preview: pd.DataFrame  # the first training pairs, shortened
    curve: pd.DataFrame  # loss, reward accuracy and margin per step
    metrics: dict[str, Any]
    outputs: dict[str, Path]


def run(cfg: dict[str, Any]) -> TrainDpoResult:
    """The stage: ``cfg`` holds the ``traits``, ``train_dpo``, ``compute`` and ``runtime`` sections (``config.stage_config``)."""
    trained = stage.train("dpo", cfg)
    metrics, outputs = stage.finish(trained)
    return TrainDpoResult(trained.built.counts, stage.preview("dpo", trained.train), trained.curve, metrics, outputs)
