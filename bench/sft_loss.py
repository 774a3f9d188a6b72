"""SFT step time: the model's own loss (sft_train on CPU) against TRL's fused LM head, same records, one run.

    python bench/sft_loss.py [--steps 8] [--trait openness] [--batch-size 4]

Trains one expert adapter of the default settings (LoRA, bf16 autocast) on one level's training records, once with
each loss, and prints the trainer's samples/s, the ratio and the largest difference between the two loss curves
(bf16 rounding; tests/test_experts.py checks the two agree in float32).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import pandas as pd  # noqa: E402

from big5chat import config, paths, storage  # noqa: E402
from big5chat.experts.data import build_expert_records, to_chat  # noqa: E402
from big5chat.training import sft_train, trl_config  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--trait", default="openness")
    ap.add_argument("--batch-size", type=int, default=4)
    args = ap.parse_args()
    e = config.stage_config(train_experts=None)["train_experts"]
    posts = pd.read_csv(paths.PROCESSED / "posts.csv", keep_default_na=False, dtype={"message_id": str})
    built = build_expert_records(posts, args.trait, min_abs_z=e.min_abs_z, max_records=e.max_records, seed=e.seed)
    chats = [to_chat(r) for r in built.records if r["level"] == "high"]
    runs = {}
    for name, model_loss in (("TRL fused LM head", False), ("model's own loss", True)):
        trl_args = trl_config("sft", e, f"bench_sft_loss_{model_loss}", per_device_train_batch_size=args.batch_size, gradient_accumulation_steps=1,
                              max_steps=args.steps)  # fmt: skip
        run = sft_train(paths.MODELS / "expert_base", chats, paths.SCRATCH / "bench" / "sft_loss" / str(model_loss), trl_args, lora=e.lora,
                        model_loss=model_loss)  # fmt: skip
        runs[name] = {"samples_per_s": run["metrics"]["train_samples_per_second"], "losses": [r["loss"] for r in run["curve"].rows]}
    trl_rate = runs["TRL fused LM head"]["samples_per_s"]
    gap = max(abs(a - b) for a, b in zip(*(r["losses"] for r in runs.values())))
    print(f"{args.steps} LoRA steps of batch {args.batch_size}, {args.trait} high records, bf16 autocast {e.bf16}")
    for name, r in runs.items():
        print(f"{name:<20} {r['samples_per_s']:7.3f} samples/s   x{r['samples_per_s'] / trl_rate:5.2f}")
    print(f"largest loss difference between the curves: {gap:.4f}")
    out = paths.REPORTS / "bench" / "sft_loss.json"
    storage.write_json(out, {"steps": args.steps, "batch_size": args.batch_size, "runs": runs, "max_loss_diff": round(gap, 6)})
    print(f"wrote {paths.relative(out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
