"""The embedded base model's Direct accuracy on the real benchmark sets in ../shared/data/benchmarks (read in
place, never copied), through the same project tasks and lm-eval calls as the evaluate_reasoning stage.

    python bench/reasoning_direct.py --limit 200            # every shared task, first 200 items each
    python bench/reasoning_direct.py --tasks piqa --limit 50
    python bench/reasoning_direct.py --backend hf_prefix    # each shared context run once per item's choices

Writes reports/bench/reasoning_direct.json (accuracy, stderr, items, seconds, items/s per task). MMLU and GPQA have
no copy in ../shared, so they are not run here (GPQA is hub-only, as in the paper profiles).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from big5chat import paths  # noqa: E402
from big5chat.reasoning.run import cells, evaluate  # noqa: E402
from big5chat.reasoning.tasks import SHARED_FILES, shared_sources, task_manager, write_tasks  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=200)
    ap.add_argument("--tasks", nargs="+", default=list(SHARED_FILES), choices=list(SHARED_FILES))
    ap.add_argument("--dtype", default="bfloat16")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--backend", default="hf", choices=["hf", "hf_prefix"], help="lm-eval model: HFLM or PrefixReuseLM")
    args = ap.parse_args()
    root = paths.SHARED_DATA / "benchmarks"
    if not root.is_dir():
        print(f"no shared benchmark sets at {root}", file=sys.stderr)
        return 2
    task_dir = paths.SCRATCH / "lm_eval_tasks_shared"
    write_tasks(shared_sources(args.tasks, root), task_dir)
    out = paths.REPORTS / "bench" / "reasoning_direct.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    report: dict[str, dict[str, float | int | None]] = {}
    start = time.perf_counter()
    for task in args.tasks:  # one task at a time, so that a long run leaves every finished task on disk
        results, _, meta = evaluate(
            cells(["direct"], []), [task], base_dir=paths.MODELS / "base", adapters={}, task_manager=task_manager(task_dir),
            limits={task: args.limit}, apply_chat_template=True, fewshot_as_multiturn=False, max_gen_toks=256,
            batch_size=args.batch_size, dtype=args.dtype, backend=args.backend,
        )  # fmt: skip
        row = results.iloc[0]
        report[task] = {"score": round(float(row["score"]), 4), "stderr": None if row["stderr"] is None else round(float(row["stderr"]), 4),
                        "n": int(row["n"]), "seconds": float(row["seconds"]), "items_per_s": float(row["items_per_s"])}  # fmt: skip
        print(
            f"{task:<16} {row['score']:.3f} ± {row['stderr'] or 0:.3f}  n={row['n']}  {row['seconds']:.0f} s  {row['items_per_s']:.2f} items/s",
            flush=True,
        )
        out.write_text(
            json.dumps(
                {"limit": args.limit, "dtype": args.dtype, "backend": args.backend, "lm_eval": meta["lm_eval_version"], "tasks": report}, indent=2
            )
            + "\n"
        )
    print(f"total {time.perf_counter() - start:.0f} s -> {paths.relative(out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
