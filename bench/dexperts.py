"""DExperts throughput against plain `generate` of the base model, measured in one run.

    python bench/dexperts.py [--batch 1 16] [--new-tokens 32] [--repeats 2]

Same prompts (BIG5-CHAT turn-1 prompts of the sample scenarios), same batch size, a fixed number of new tokens
per row (EOS ignored, so every method decodes the same amount). Prints tokens/s and the ratio to plain
`generate` for: DExperts with 2 models (base + expert) and 3 models (base + expert + anti-expert), each as
separate models with one KV cache apiece, and as one PEFT model with mixed-adapter batches (one forward, one
cache). Uses data/models/base and the trained expert adapters under data/models/experts (run the pipeline
first), or a random LoRA adapter when they are absent.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from big5chat import paths  # noqa: E402
from big5chat.generation.chat import render  # noqa: E402
from big5chat.generation.dexperts import Steering, generate  # noqa: E402
from big5chat.generation.dialogue_prompts import Scenario, turn1_prompt  # noqa: E402
from big5chat.models.loading import load_chat_model  # noqa: E402
from big5chat.prompts import expert_instruction  # noqa: E402

NEVER = [-1]  # an EOS id no token has: every row decodes the full budget


def prompts(tok, n: int) -> tuple[list[str], list[str], list[str]]:  # type: ignore[no-untyped-def]
    rows = [json.loads(line) for line in (paths.SAMPLE / "soda_scenarios.jsonl").read_text().splitlines()]
    base, hi, lo = [], [], []
    for i in range(n):
        r = rows[i % len(rows)]
        s = Scenario(r["narrative"], r["PersonX"], r["PersonY"])
        base.append(render(tok, [{"role": "user", "content": turn1_prompt(s, r["dialogue"][0], "extraversion", "high")}]))
        hi.append(render(tok, [{"role": "user", "content": expert_instruction("extraversion", "high") + "\n"}]))
        lo.append(render(tok, [{"role": "user", "content": expert_instruction("extraversion", "low") + "\n"}]))
    return base, hi, lo


def timed(fn, repeats: int, device: str = "cpu") -> float:  # type: ignore[no-untyped-def]
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        sync()
        t = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 16])
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    args = ap.parse_args()
    from peft import LoraConfig, PeftModel, get_peft_model

    base, tok = load_chat_model(paths.MODELS / "base", dtype=args.dtype, device=args.device)
    expert_dir = paths.MODELS / "experts" / "extraversion"
    peft_base, _ = load_chat_model(paths.MODELS / "base", dtype=args.dtype, device=args.device)
    if (expert_dir / "adapter_model.safetensors").is_file():
        peft = PeftModel.from_pretrained(peft_base, str(expert_dir), adapter_name="expert", autocast_adapter_dtype=False).eval()
        source = str(paths.relative(expert_dir))
    else:
        torch.manual_seed(0)
        peft = get_peft_model(
            peft_base, LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", init_lora_weights=False), adapter_name="expert"
        ).eval()
        source = "random LoRA (no trained expert found)"
    merged = copy.deepcopy(peft).merge_and_unload().eval()  # the expert as a separate plain model
    steering = Steering("study", alpha=0.5, warmup=5)
    three = Steering("dexperts", alpha=0.5, warmup=5)
    print(f"torch threads {torch.get_num_threads()}, {args.dtype}, expert {source}, {args.new_tokens} new tokens per row, median of {args.repeats}")
    print(f"{'batch':>5} {'method':<34} {'tok/s':>8} {'ratio':>6}")
    results = []
    for b in args.batch:
        bp, hi, lo = prompts(tok, b)
        tok.padding_side = "left"
        enc = tok(bp, return_tensors="pt", padding=True, add_special_tokens=False).to(args.device)

        def plain() -> None:
            with torch.no_grad():
                base.generate(**enc, max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens, do_sample=False,
                              pad_token_id=tok.pad_token_id, temperature=None, top_p=None, top_k=None)  # fmt: skip

        kw = dict(max_new_tokens=args.new_tokens, eos_token_ids=NEVER)
        methods = {
            "plain generate": plain,
            "dexperts 2 models (separate)": lambda: generate(tok, (base, bp), (merged, hi), steering=steering, **kw),
            "dexperts 2 models (mixed adapters)": lambda: generate(tok, (peft, bp), (peft, hi), steering=steering, adapters=("expert", None), **kw),
            "dexperts 3 models (separate)": lambda: generate(tok, (base, bp), (merged, hi), (merged, lo), steering=three, **kw),
            "dexperts 3 models (mixed adapters)": lambda: generate(
                tok, (peft, bp), (peft, hi), (peft, lo), steering=three, adapters=("expert", "expert"), **kw
            ),
        }
        ref = None
        for name, fn in methods.items():
            secs = timed(fn, args.repeats, args.device)
            tps = b * args.new_tokens / secs
            ref = ref or tps
            results.append({"batch": b, "method": name, "tokens_per_s": round(tps, 1), "ratio": round(tps / ref, 3)})
            print(f"{b:>5} {name:<34} {tps:>8.1f} {tps / ref:>6.2f}", flush=True)
    out = paths.REPORTS / "bench" / "dexperts.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
