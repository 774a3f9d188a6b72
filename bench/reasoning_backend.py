"""HFLM (backend hf) against PrefixReuseLM (backend hf_prefix) on the real benchmark sets in ../shared/data/benchmarks
(read in place), with the embedded base model: seconds, speed-up and whether both give the same numbers.

    python bench/reasoning_backend.py --limit 20            # quick
    python bench/reasoning_backend.py --limit 200 --tasks truthfulqa_mc commonsense_qa

Both models are built once with the same arguments (batch size, dtype, device) and run the same project tasks as the
evaluate_reasoning stage (chat template on, zero-shot). Per task: the seconds of the log-likelihood requests (the part
the backends differ in: ``_loglikelihood_tokens``) and of the whole ``simple_evaluate`` call, the ratio HFLM/prefix
of the former, both accuracies, whether they are equal, and the largest absolute difference of a request's
log-likelihood. Writes reports/bench/reasoning_backend.json. The base is data/models/base when it exists, else the
embedded SmolLM2-135M materialized into a temporary folder.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from big5chat import paths, storage  # noqa: E402
from big5chat.reasoning.tasks import PROJECT_TASK, shared_sources, task_manager, write_tasks  # noqa: E402

TASKS = ("truthfulqa_mc", "piqa", "social_iqa", "mathqa", "commonsense_qa")  # multiple choice (log-likelihoods); the last has one-token choices


class Timed:
    """Wraps a model's ``_loglikelihood_tokens`` and adds up its seconds."""

    def __init__(self, lm: Any) -> None:
        self.seconds = 0.0
        self.inner = lm._loglikelihood_tokens
        lm._loglikelihood_tokens = self

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return self.inner(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - start


def run_task(lm: Any, timer: Timed, task: str, task_dir: Path, limit: int) -> dict[str, Any]:
    """(seconds of the log-likelihoods, seconds in all, accuracy, per-item acc, per-request log-likelihoods)."""
    import lm_eval

    name = PROJECT_TASK.format(task=task)
    timer.seconds = 0.0
    start = time.perf_counter()
    res = lm_eval.simple_evaluate(model=lm, tasks=[name], task_manager=task_manager(task_dir), limit=limit, apply_chat_template=True,
                                  fewshot_as_multiturn=False, bootstrap_iters=0, log_samples=True)  # fmt: skip
    total = time.perf_counter() - start
    samples = sorted(res["samples"][name], key=lambda s: s["doc_id"])
    return {"ll_s": timer.seconds, "total_s": total, "acc": float(res["results"][name]["acc,none"]), "items": [float(s["acc"]) for s in samples],
            "ll": [float(r[0][0]) for s in samples for r in s["resps"]]}  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=100)
    ap.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    root = paths.SHARED_DATA / "benchmarks"
    if not root.is_dir():
        print(f"no shared benchmark sets at {root}", file=sys.stderr)
        return 2
    import torch
    from lm_eval.models.huggingface import HFLM

    from big5chat.reasoning.prefix_lm import PrefixReuseLM

    task_dir = paths.SCRATCH / "lm_eval_tasks_backend"
    write_tasks(shared_sources(args.tasks, root), task_dir)
    out = paths.REPORTS / "bench" / "reasoning_backend.json"
    with tempfile.TemporaryDirectory() as tmp:
        base = paths.MODELS / "base"
        if not (base / "config.json").is_file():
            from big5chat.config import ModelSpec
            from big5chat.models.materialize import materialize

            base = Path(tmp) / "base"
            materialize(ModelSpec("embedded", "smollm2-135m-instruct"), base, "base")
        kw = {"pretrained": str(base), "device": args.device, "batch_size": args.batch_size, "dtype": args.dtype}
        models = {"hf": HFLM(**kw), "hf_prefix": PrefixReuseLM(**kw)}
        timers = {k: Timed(lm) for k, lm in models.items()}
        report: dict[str, Any] = {"limit": args.limit, "dtype": args.dtype, "batch_size": args.batch_size, "device": args.device,
                                  "model": paths.relative(base) if base.is_relative_to(paths.ROOT) else "embedded smollm2-135m-instruct (materialized)",
                                  "torch_threads": torch.get_num_threads(), "tasks": {}}  # fmt: skip
        print(
            f"{'task':<16}{'n':>5}{'reqs':>6}{'HFLM s':>9}{'prefix s':>10}{'ratio':>7}{'(all s)':>16}{'acc HFLM':>10}{'acc prefix':>11}{'equal':>7}{'max|dll|':>10}"
        )
        for task in args.tasks:
            r = {k: run_task(models[k], timers[k], task, task_dir, args.limit) for k in ("hf", "hf_prefix")}
            hf, px = r["hf"], r["hf_prefix"]
            dll = max(abs(a - b) for a, b in zip(hf["ll"], px["ll"], strict=True))
            tol = 1e-5 if task == "truthfulqa_mc" else 0.0  # mc2's acc is a probability mass: a float of the log-likelihoods
            equal = abs(hf["acc"] - px["acc"]) <= tol
            row = {"n": len(hf["items"]), "requests": len(hf["ll"]), "hf_s": round(hf["ll_s"], 2), "prefix_s": round(px["ll_s"], 2),
                   "ratio": round(hf["ll_s"] / px["ll_s"], 2), "hf_total_s": round(hf["total_s"], 2), "prefix_total_s": round(px["total_s"], 2),
                   "acc_hf": hf["acc"], "acc_prefix": px["acc"], "acc_equal": equal,
                   "items_equal": all(abs(a - b) <= tol for a, b in zip(hf["items"], px["items"], strict=True)), "max_abs_dll": dll}  # fmt: skip
            report["tasks"][task] = row
            print(f"{task:<16}{row['n']:>5}{row['requests']:>6}{row['hf_s']:>9.2f}{row['prefix_s']:>10.2f}{row['ratio']:>7.2f}"
                  f"{row['hf_total_s']:>8.1f}/{row['prefix_total_s']:<7.1f}{row['acc_hf']:>10.4f}{row['acc_prefix']:>11.4f}{str(equal):>7}{dll:>10.2e}", flush=True)  # fmt: skip
            storage.write_json(out, report)
    print(f"ratio: HFLM / prefix seconds of the log-likelihood requests; (all s): whole simple_evaluate, HFLM/prefix -> {paths.relative(out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
