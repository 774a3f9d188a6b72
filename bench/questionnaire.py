"""Questionnaire throughput: log-prob mode against per-item generation, same items and model, one run.

    python bench/questionnaire.py [--items 40] [--new-tokens 16] [--dtype float32]

Items: the first IPIP-NEO-120 items under one Prompt-Inst condition. Log-prob mode scores all five options in one
forward per item over the shared prefix's KV cache; generation samples a reply (temperature 0.6) and parses the
leading digit, one item at a time as the study did, and also batched. Prints items/s and the ratios.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from big5chat import paths  # noqa: E402
from big5chat.data.loaders import load_questionnaires  # noqa: E402
from big5chat.generation.chat import generate_chat, render  # noqa: E402
from big5chat.models.loading import load_chat_model  # noqa: E402
from big5chat.psychometrics.conditions import Condition, messages  # noqa: E402
from big5chat.psychometrics.logprob import option_probs, option_token_ids  # noqa: E402
from big5chat.psychometrics.parsing import parse_score  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=40)
    ap.add_argument("--new-tokens", type=int, default=16)
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    args = ap.parse_args()
    model, tok = load_chat_model(paths.MODELS / "base", dtype=args.dtype, device=args.device)
    inst = load_questionnaires(paths.INSTRUMENTS)["IPIP-NEO"]
    items = [r["text"] for r in inst["items"].rows][: args.items]
    convs = [messages(Condition("prompt_inst", "openness", "high"), inst["prompt"], t) for t in items]
    prompts = [render(tok, c) for c in convs]
    ids = option_token_ids(tok)
    option_probs(model, tok, prompts[:4], ids)  # warm-up
    results = {}
    t = time.perf_counter()
    option_probs(model, tok, prompts, ids, batch_size=64)
    results["logprob (batched, shared prefix)"] = len(items) / (time.perf_counter() - t)
    t = time.perf_counter()
    replies = [
        generate_chat(model, tok, [c], max_new_tokens=args.new_tokens, do_sample=True, temperature=0.6, seed=i)[0] for i, c in enumerate(convs)
    ]
    results["generation, one item at a time (the study)"] = len(items) / (time.perf_counter() - t)
    t = time.perf_counter()
    generate_chat(model, tok, convs, max_new_tokens=args.new_tokens, batch_size=32, do_sample=True, temperature=0.6, seed=0)
    results["generation, batched (32)"] = len(items) / (time.perf_counter() - t)
    per_item = results["generation, one item at a time (the study)"]
    print(f"{len(items)} items, {args.new_tokens} new tokens, dtype {args.dtype}; {sum(parse_score(r) is not None for r in replies)} replies parsed")
    for name, ips in results.items():
        print(f"{name:<45} {ips:8.2f} items/s   x{ips / per_item:6.1f}")
    out = paths.REPORTS / "bench" / "questionnaire.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({k: round(v, 3) for k, v in results.items()}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
