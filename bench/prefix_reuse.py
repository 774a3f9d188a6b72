"""Dialogue generation with and without shared-prefix reuse, on the default's prompts, measured in one run.

    python bench/prefix_reuse.py [--scenarios 20] [--batch 20] [--dtype bfloat16]

Runs the generate_dialogues stage's own code (``DialogueGenerator``: turn 0, then turn 1 for every trait x level with
the trained experts under data/models/experts) three ways, interleaved batch by batch so that load on the machine
falls on all three alike:

- ``before``: every row prefills its whole prompt, the KV cache grows by concatenation (transformers' own layer) and
  decode steps pass the 2D padding mask, as generation ran before this bench existed;
- ``growing cache``: decoding writes into reserved cache columns (bit-identical outputs);
- ``growing cache + prefix reuse``: also a scenario's shared prompt prefix prefilled once for its ten arms, the
  experts' instruction once per batch (``generate_dialogues.prefix_reuse``), and decode steps given a 4D mask (the
  unpadded expert stream otherwise takes torch's slower no-mask CPU attention path): the default.

Prints seconds per part, the speed-up over ``before`` and how many rows decode exactly the same tokens as
``before`` (in bfloat16 rounding differs with the prefill's shapes; the same rows split into other batches are
shown as a yardstick). Writes reports/bench/prefix_reuse.json. Run the pipeline first (scenarios, base, experts).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import torch  # noqa: E402

from big5chat import paths, storage  # noqa: E402
from big5chat.generation import dexperts  # noqa: E402
from big5chat.generation import dialogues as dlg  # noqa: E402
from big5chat.traits import TRAITS  # noqa: E402

MODES = ("before", "growing cache", "growing cache + prefix reuse")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenarios", type=int, default=20)
    ap.add_argument("--batch", type=int, default=20)
    ap.add_argument("--dtype", default="bfloat16", choices=["float32", "bfloat16"])
    ap.add_argument("--max-new-tokens", type=int, default=64)
    args = ap.parse_args()
    scen_file = paths.PROCESSED / "scenarios.jsonl"
    experts = {t: paths.MODELS / "experts" / t for t in TRAITS}
    missing = [str(paths.relative(p)) for p in (scen_file, paths.MODELS / "base", *experts.values()) if not p.exists()]
    if missing:
        print(f"run the pipeline first (`make repro`); missing: {', '.join(missing)}", file=sys.stderr)
        return 2
    scenarios = storage.read_jsonl(scen_file)[: args.scenarios]
    common = dict(dtype=args.dtype, steering=dexperts.Steering(), sampling=dexperts.Sampling(), max_new_tokens=args.max_new_tokens,
                  turn0_max_new_tokens=args.max_new_tokens, seed=42, expert_base_dir=paths.MODELS / "expert_base")  # fmt: skip
    gens = {m: dlg.DialogueGenerator(paths.MODELS / "base", experts, scenarios, prefix_reuse=m.endswith("reuse"), **common) for m in MODES}  # type: ignore[arg-type]
    reserve, decode_mask = dexperts.reserve, dexperts.Stream._decode_mask
    secs = {m: {"turn0": 0.0, "turn1": 0.0} for m in MODES}
    texts: dict[str, dict[str, str]] = {m: {} for m in MODES}

    def run(mode: str, part: str, fn, batch: list[dlg.Job]) -> None:  # type: ignore[no-untyped-def]
        dexperts.reserve = reserve if mode != "before" else (lambda cache, extra: False)  # type: ignore[assignment]
        dexperts.Stream._decode_mask = decode_mask if mode == MODES[2] else (lambda self: self.mask)  # type: ignore[method-assign]
        start = time.perf_counter()
        with torch.no_grad():
            out = fn(batch)
        secs[mode][part] += time.perf_counter() - start
        texts[mode].update({j.key: t for j, t in zip(batch, out)})

    turn0 = [dlg.Job(int(s["original_index"])) for s in scenarios]
    for start in range(0, len(turn0), args.batch):
        for m in MODES:
            run(m, "turn0", gens[m].turn0_batch, turn0[start : start + args.batch])
    for m in MODES:  # every mode continues from the same turn 0, as the stage does from its checkpoint
        gens[m].turn0 = {j.original_index: texts["before"][j.key] for j in turn0}
    jobs = dlg.turn1_jobs(scenarios, list(TRAITS))
    groups = dlg.turn1_groups(jobs, experts)
    for n, group in enumerate(groups):
        trait, level = group[0].trait, group[0].level
        for m in MODES:  # experts are merged before the clock starts (the same for every mode)
            folder = Path(experts[trait])
            gens[m]._expert_model(trait, dlg.expert_dir(folder, level))
        for start in range(0, len(group), args.batch):
            for m in MODES:
                run(m, "turn1", gens[m].turn1_batch, group[start : start + args.batch])
        print(f"group {n + 1}/{len(groups)} ({trait} {level}): " + ", ".join(f"{m} {secs[m]['turn1']:.0f}s" for m in MODES), flush=True)
    # yardstick: the 'before' rows of one group again, split into half-size batches
    group = groups[0]
    half = max(1, args.batch // 2)
    dexperts.reserve = lambda cache, extra: False  # type: ignore[assignment]
    dexperts.Stream._decode_mask = lambda self: self.mask  # type: ignore[method-assign]
    split = {}
    with torch.no_grad():
        for start in range(0, len(group), half):
            batch = group[start : start + half]
            split.update({j.key: t for j, t in zip(batch, gens["before"].turn1_batch(batch))})
    dexperts.reserve, dexperts.Stream._decode_mask = reserve, decode_mask  # type: ignore[method-assign]
    base_total = sum(secs["before"].values())
    keys = list(texts["before"])
    results = {"dtype": args.dtype, "scenarios": len(scenarios), "batch": args.batch, "rows": len(keys), "threads": torch.get_num_threads(),
               "prefix_store": gens[MODES[2]].prefix_stats(), "modes": {}}  # fmt: skip
    print(f"\n{len(keys)} rows ({len(scenarios)} scenarios: turn 0 + 10 arms), batch {args.batch}, {args.dtype}, {torch.get_num_threads()} threads")
    print(f"{'mode':<30} {'turn0 s':>8} {'turn1 s':>8} {'total s':>8} {'speed-up':>8} {'same text':>10}")
    for m in MODES:
        total = sum(secs[m].values())
        same = sum(texts[m][k] == texts["before"][k] for k in keys)
        results["modes"][m] = {**{k: round(v, 1) for k, v in secs[m].items()}, "total_s": round(total, 1), "speedup": round(base_total / total, 3),
                               "same_text_rows": same}  # fmt: skip
        print(f"{m:<30} {secs[m]['turn0']:>8.1f} {secs[m]['turn1']:>8.1f} {total:>8.1f} {base_total / total:>7.2f}x {same:>5}/{len(keys)}")
    same_split = sum(split[k] == texts["before"][k] for k in split)
    results["yardstick_half_batches_same_text"] = f"{same_split}/{len(split)}"
    print(
        f"yardstick: 'before' rows of {group[0].trait} {group[0].level} in batches of {half} instead of {args.batch}: {same_split}/{len(split)} same text"
    )
    print(f"prefix store: {results['prefix_store']}")
    storage.write_json(paths.REPORTS / "bench" / "prefix_reuse.json", results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
