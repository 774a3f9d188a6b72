"""Plan a profile without downloading anything: every param resolves, every stage command renders, and an
estimate per stage of model sizes, tokens processed, GPU memory and GPU-hours.

Formulas (N = parameters, T = tokens, b = bytes per parameter, 2 for bf16):
- compute: training 6 N T FLOPs (full fine-tune), 4 N T with LoRA (no weight gradients for the frozen base),
  prefill / scoring 2 N T; GPU-hours = FLOPs / (peak x utilisation), peak 989 TFLOP/s (H100 bf16 dense),
  utilisation 0.35 for training and prefill;
- decoding is bound by memory bandwidth: every step reads the weights once per batch, so
  time = steps x N b / (bandwidth x 0.6) with bandwidth 3.35 TB/s (H100 SXM) and steps = generated tokens / batch;
- memory: inference N b + KV cache (2 x layers x kv_heads x head_dim x b per token in flight); LoRA training
  N b + activations (approximated as 20% of the weights); full fine-tune with Adam 16 N bytes (bf16 weights and
  gradients, fp32 master weights and two moments), divided across GPUs by ZeRO-3.
These are planning numbers (order of magnitude), not measurements.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

PEAK_FLOPS = 989e12
BANDWIDTH = 3.35e12
UTIL_TRAIN, UTIL_PREFILL, UTIL_BW = 0.35, 0.35, 0.6
GPU_MEMORY_GB = 80.0


@dataclass(frozen=True)
class Arch:
    params: float
    layers: int
    kv_heads: int
    head_dim: int


# Architectures of the models the profiles name (public model cards); the embedded ones from their configs.
KNOWN: dict[str, Arch] = {
    "meta-llama/Meta-Llama-3-8B-Instruct": Arch(8.03e9, 32, 8, 128),
    "meta-llama/Meta-Llama-3-70B-Instruct": Arch(70.6e9, 80, 8, 128),
    "FacebookAI/roberta-large": Arch(355e6, 24, 16, 64),
    "smollm2-135m-instruct": Arch(134.5e6, 30, 3, 64),
    "all-minilm-l6-v2": Arch(22.7e6, 6, 12, 32),
    "tiny-llama": Arch(3.2e6, 2, 2, 16),
    "tiny-bert": Arch(2.1e6, 2, 4, 16),
}
# Public sizes of the hub datasets the paper profiles read.
HUB_ROWS = {"commonsense_qa": 1221, "piqa": 1838, "social_iqa": 1954, "gsm8k": 1319, "mathqa": 2985, "truthfulqa_mc": 817,
            "mmlu": 14042, "gpqa": 448}  # fmt: skip
PSYCHGENERATOR_POSTS = 846_304


def arch(spec: Any) -> Arch:
    if spec.name not in KNOWN:
        raise KeyError(f"no size known for {spec.name!r}; add it to big5chat.plan.KNOWN")
    return KNOWN[spec.name]


def gpu_hours(flops: float, util: float) -> float:
    return flops / (PEAK_FLOPS * util) / 3600


def decode_hours(a: Arch, generated_tokens: float, batch: int, bytes_per_param: float = 2.0) -> float:
    steps = generated_tokens / max(batch, 1)
    return steps * a.params * bytes_per_param / (BANDWIDTH * UTIL_BW) / 3600


def kv_gb(a: Arch, tokens_in_flight: float, b: float = 2.0) -> float:
    return 2 * a.layers * a.kv_heads * a.head_dim * b * tokens_in_flight / 1e9


def tensor_parallel_needed(base: Arch, expert: Arch, kv: float, bytes_per_param: float = 2.0) -> int | None:
    """The fewest processes (one GPU each) the generation's base can be split over so that each GPU holds its share
    of the base and of the KV cache plus a whole expert: a divisor of the key-value heads (transformers' plan
    splits them evenly). None if even the most does not fit."""
    for t in (d for d in range(1, base.kv_heads + 1) if base.kv_heads % d == 0):
        if (bytes_per_param * base.params / 1e9 + kv) / t + bytes_per_param * expert.params / 1e9 <= GPU_MEMORY_GB * 0.9:
            return t
    return None


def stage_estimates(params: Any) -> list[dict[str, Any]]:
    """One row per stage: model, tokens, memory (GB), GPU-hours, GPUs assumed."""
    base, enc = arch(params.models.base), arch(params.models.encoder)
    expert_base = arch(params.models.expert_base) if params.models.expert_base is not None else base
    n_posts = params.prepare_data.max_posts or (PSYCHGENERATOR_POSTS if params.data.posts.path and "external" in params.data.posts.path else 550)
    n_scen = params.generate_dialogues.n_scenarios or params.prepare_data.n_scenarios
    traits = len(params.traits)
    rows: list[dict[str, Any]] = []

    def row(stage: str, model: str, a: Arch, tokens: float, hours: float, mem: float, note: str) -> None:
        gpus = max(1, int(-(-mem // (GPU_MEMORY_GB * 0.9))))
        rows.append({"stage": stage, "model": model, "params_b": round(a.params / 1e9, 3), "tokens_m": round(tokens / 1e6, 2),
                     "gpu_mem_gb": round(mem, 1), "gpus": gpus, "gpu_hours": round(hours, 2), "how": note})  # fmt: skip

    c = params.train_classifier
    t = n_posts * (1 - params.prepare_data.test_size) * c.epochs * min(c.max_length, 48)
    row("train_classifier", params.models.encoder.name, enc, t, gpu_hours(6 * enc.params * t, UTIL_TRAIN), 16 * enc.params / 1e9 + 4, "full FT, 6NT")
    e = params.train_experts
    recs = n_posts * (1 - params.prepare_data.test_size) if e.max_records is None else e.max_records
    t = recs * e.epochs * 70 * traits
    full = e.method == "full"
    expert_name = params.models.expert_base.name if params.models.expert_base else params.models.base.name
    row("train_experts (all)", expert_name, expert_base, t, gpu_hours((6 if full else 4) * expert_base.params * t, UTIL_TRAIN),
        (16 if full else 2.4) * expert_base.params / 1e9, "full FT + ZeRO-3, 6NT" if full else "LoRA, 4NT")  # fmt: skip
    ev = params.eval_experts
    gen = traits * 2 * ev.n_prefixes * ev.max_new_tokens * 2
    row(
        "eval_experts",
        expert_name,
        expert_base,
        gen,
        decode_hours(expert_base, gen, ev.batch_size),
        2 * expert_base.params / 1e9 * 1.2,
        "decode, bandwidth-bound",
    )
    g = params.generate_dialogues
    replies = n_scen * traits * 2
    prompt_t = (n_scen + replies) * 400
    gen_t = n_scen * g.turn0_max_new_tokens + replies * g.max_new_tokens
    n_models = 2 if g.rule == "study" else 3
    hours = (
        gpu_hours(2 * base.params * prompt_t, UTIL_PREFILL)
        + decode_hours(base, gen_t, g.batch_size)
        + (n_models - 1) * decode_hours(expert_base, replies * g.max_new_tokens, g.batch_size)
    )
    kv = kv_gb(base, g.batch_size * (400 + g.max_new_tokens))
    mem = 2 * (base.params + expert_base.params) / 1e9 + kv
    row("generate_dialogues", "base + experts", base, prompt_t + gen_t, hours, mem, f"prefill 2NT + decode ({n_models} models)")
    rows[-1]["tp_needed"] = tensor_parallel_needed(base, expert_base, kv)
    for name, p, pairs in (("train_sft", params.train_sft, 1), ("train_dpo", params.train_dpo, 2)):
        n = replies * (1 - p.val_size) if p.max_records is None else p.max_records
        t = n * 200 * pairs * p.epochs
        flops = 4 * base.params * t + (2 * base.params * t if name == "train_dpo" else 0)  # DPO adds the reference forward
        row(
            name,
            params.models.base.name,
            base,
            t,
            gpu_hours(flops, UTIL_TRAIN),
            2.4 * base.params / 1e9,
            "LoRA 4NT" + (" + reference 2NT" if pairs == 2 else ""),
        )
    st = params.steer
    t = traits * 2 * st.n_pairs * min(st.max_length, 60)
    depth = (max(st.layers) + 1) / base.layers  # the forward stops after the deepest steering layer
    row("learn_steering", params.models.base.name, base, t, gpu_hours(2 * base.params * t * depth, UTIL_PREFILL),
        (4 if st.dtype == "float32" else 2) * base.params / 1e9 * 1.2, f"prefill 2NT to layer {max(st.layers)} of {base.layers}")  # fmt: skip
    from big5chat.psychometrics.conditions import conditions
    from big5chat.reasoning.run import cells
    from big5chat.traits import LEVELS

    a = params.assess_personality
    conds = len(conditions(list(a.methods), list(params.traits)))
    from big5chat.data.loaders import load_questionnaires

    items = sum(len(inst["items"]) for inst in load_questionnaires(params.data.instruments_dir, list(a.questionnaires)).values())
    answers = conds * items * (a.runs if a.mode == "generate" else 1)
    if a.mode == "generate":
        hours = gpu_hours(2 * base.params * answers * 150, UTIL_PREFILL) + decode_hours(base, answers * a.max_new_tokens, a.batch_size)
        t = answers * (150 + a.max_new_tokens)
    else:
        t = answers * 20
        hours = gpu_hours(2 * base.params * t, UTIL_PREFILL)
    row("assess_personality", params.models.base.name, base, t, hours, 2 * base.params / 1e9 * 1.2, f"{a.mode}: {answers} answers")
    bv = params.behavioural_validity
    replies_bv = len(conditions(list(bv.methods), list(params.traits))) * bv.scenarios
    t = replies_bv * (250 + bv.max_new_tokens)  # the scenario prompt (+ Prompt-Demo's examples on some) and the reply
    row("behavioural_validity", params.models.base.name, base, t,
        gpu_hours(2 * base.params * replies_bv * 250, UTIL_PREFILL) + decode_hours(base, replies_bv * bv.max_new_tokens, bv.batch_size),
        2 * base.params / 1e9 * 1.2, f"{replies_bv} free replies, then the classifier")  # fmt: skip
    r = params.evaluate_reasoning
    n_cells = len(
        cells(list(r.methods), [(c.trait, c.level) for c in r.conditions] if r.conditions else [(t, lvl) for t in params.traits for lvl in LEVELS])
    )
    items = sum(min(HUB_ROWS[tk], r.limits.get(tk, r.limit) or HUB_ROWS[tk]) for tk in r.tasks)
    t = n_cells * items * 300 + (
        n_cells * min(HUB_ROWS["gsm8k"], r.limits.get("gsm8k", r.limit) or HUB_ROWS["gsm8k"]) * 900 if "gsm8k" in r.tasks else 0
    )
    row("evaluate_reasoning", params.models.base.name, base, t, gpu_hours(2 * base.params * t, UTIL_PREFILL), 2 * base.params / 1e9 * 1.2,
        f"{n_cells} cells x {items} items, scoring 2NT")  # fmt: skip
    rows[-1]["units"] = n_cells * len(r.tasks)
    return rows


GPUS_PER_NODE = 8


def replicas_on(gpus: int, per_replica: int) -> int:
    """Model replicas of ``per_replica`` GPUs that ``gpus`` GPUs hold when a replica stays within one node of
    ``GPUS_PER_NODE`` (its GPUs are one process's block, or one tensor-parallel launch, on one machine)."""
    whole, rest = divmod(gpus, GPUS_PER_NODE)
    return whole * (GPUS_PER_NODE // per_replica) + rest // per_replica


TP_EFFICIENCY = 0.8  # share of ideal speed-up a tensor-parallel model (vLLM) or a ZeRO-3/DDP training run keeps
# Stages whose work is split over processes in the code: training (accelerate: DDP / ZeRO-3 over every GPU) and
# the dialogue generation (generation.shards: one data-parallel shard per model replica).
DATA_PARALLEL_GENERATION = {"generate_dialogues"}
DATA_PARALLEL_UNITS = {"evaluate_reasoning"}  # reasoning.shards: processes each take every N-th cell x task unit
TRAINING = {"train_classifier", "train_experts (all)", "train_sft", "train_dpo"}
VLLM_STAGES = {"assess_personality", "evaluate_reasoning"}  # the stages with `backend: vllm` (a params section each)


def wall_clock(params: Any, estimates: list[dict[str, Any]], gpus: int) -> list[dict[str, Any]]:
    """Wall-clock hours per stage on ``gpus`` GPUs of 80 GB, as the code lays the work out:

    - a model needing g GPUs (the row's ``gpus``) is one replica of g GPUs; with the HF backend its layers are spread
      over them (``device_map``), one GPU busy at a time, so a replica runs at one GPU's speed; with vLLM
      (``backend: vllm``) it is tensor-parallel and runs at g x ``TP_EFFICIENCY``;
    - replicas stay within a node (``replicas_on``: 2 replicas of 3 GPUs per 8-GPU node);
    - generate_dialogues runs data-parallel shards (``generation.shards``): with ``tensor_parallel`` T > 1, one per
      T GPUs of a T-way tensor-parallel base (T x ``TP_EFFICIENCY`` each; T below what the base needs is reported);
      with T = 1, one per ``device_map`` replica;
    - evaluate_reasoning (HF backends) runs one process per replica, each every N-th cell x task unit
      (``reasoning.shards``), at most one per unit;
    - training runs on every GPU (accelerate: DDP or ZeRO-3) at ``TP_EFFICIENCY``;
    - the other stages run one replica.
    ``hours`` is None where the stage's model does not fit in ``gpus`` GPUs (unquantized)."""
    out = []
    for r in estimates:
        g, stage = r["gpus"], r["stage"]
        tensor_parallel = stage in DATA_PARALLEL_GENERATION and params.generate_dialogues.tensor_parallel > 1
        if gpus < g and not tensor_parallel:
            out.append({"stage": stage, "layout": f"needs {g} GPUs", "hours": None})
            continue
        if stage in TRAINING:
            speed, layout = (gpus * (TP_EFFICIENCY if gpus > 1 else 1.0)), f"{gpus} GPU(s), one training run"
        elif tensor_parallel:
            tp, need = params.generate_dialogues.tensor_parallel, r.get("tp_needed")
            if need is None or tp < need or gpus < tp:
                why = f"tensor_parallel {tp} < the {need} the base needs" if need is None or tp < need else f"needs {tp} GPUs"
                out.append({"stage": stage, "layout": why, "hours": None})
                continue
            replicas = replicas_on(gpus, tp)
            speed, layout = replicas * tp * TP_EFFICIENCY, f"{replicas} shard(s) x {tp}-way tensor parallel"
        elif stage in DATA_PARALLEL_GENERATION:
            replicas = replicas_on(gpus, g)
            speed, layout = float(replicas), f"{replicas} shard(s) x {g} GPU(s)" + (" (device_map)" if g > 1 else "")
        elif stage in DATA_PARALLEL_UNITS and getattr(params, stage).backend != "vllm":
            replicas = min(replicas_on(gpus, g), r["units"])
            speed, layout = float(replicas), f"{replicas} process(es) x {g} GPU(s)" + (" (device_map)" if g > 1 else "")
        elif stage in VLLM_STAGES and getattr(params, stage).backend == "vllm":
            speed, layout = g * (TP_EFFICIENCY if g > 1 else 1.0), f"1 x {g} GPU(s), vLLM tensor parallel"
        else:
            speed, layout = 1.0, f"1 x {g} GPU(s)" + (" (device_map)" if g > 1 else "")
        out.append({"stage": stage, "layout": layout, "hours": round(r["gpu_hours"] / speed, 2)})
    return out


def render_stages(params_data: dict[str, Any], dvc_file: Path) -> list[tuple[str, str]]:
    """(stage name, command) for every stage, foreach expanded; raises if a declared param does not resolve."""
    from big5chat.stage_runner import select

    stages = yaml.safe_load(dvc_file.read_text(encoding="utf-8"))["stages"]
    out = []
    for name, body in stages.items():
        if "foreach" in body:
            items = params_data[body["foreach"].strip("${}")]
            for item in items:
                cmd = body["do"]["cmd"].replace("${item}", str(item))
                select(params_data, [k for k in body["do"].get("params", []) if isinstance(k, str)])
                out.append((f"{name}@{item}", cmd))
        else:
            select(params_data, [k for k in body.get("params", []) if isinstance(k, str)])
            out.append((name, body["cmd"]))
    for _, cmd in out:
        if "${" in cmd:
            raise ValueError(f"unrendered template in {cmd!r}")
    return out


def plan(profile: str, gpu_counts: tuple[int, ...] = (1, 8, 64)) -> dict[str, Any]:
    from big5chat import paths, profiles
    from big5chat.config import ConfigError, load_params

    with tempfile.TemporaryDirectory() as tmp:
        f = profiles.compose(profile, out=Path(tmp) / "params.yaml")
        data = yaml.safe_load(f.read_text(encoding="utf-8"))
        warnings = []
        try:
            load_params(f)
        except ConfigError as exc:
            missing = [p for p in exc.problems if "not found" in p]
            if len(missing) != len(exc.problems):
                raise
            warnings = [f"{p} (needed when the stage runs; nothing is downloaded by the plan)" for p in missing]
        params = load_params(f, check_paths=False)
    estimates = stage_estimates(params)
    return {"profile": profile, "params": params, "warnings": warnings, "stages": render_stages(data, paths.DVC_FILE),
            "estimates": estimates, "wall_clock": {n: wall_clock(params, estimates, n) for n in gpu_counts}}  # fmt: skip


def format_plan(p: dict[str, Any]) -> str:
    import pandas as pd

    lines = [f"Profile {p['profile']}: params valid, {len(p['stages'])} stage commands render.", ""]
    lines += [f"  ! {w}" for w in p["warnings"]]
    est = pd.DataFrame(p["estimates"]).drop(columns=["tp_needed", "units"], errors="ignore")  # the layout column says it
    lines += ["", est.to_string(index=False), "", f"total GPU-hours (H100): {est['gpu_hours'].sum():.1f}", ""]
    if p.get("wall_clock"):
        lines.append(
            f"Wall-clock hours by GPU count (80 GB GPUs, {GPUS_PER_NODE} per node, a replica within one node; the layout is what the code runs, see plan.wall_clock):"
        )
        table = pd.DataFrame({"stage": est["stage"]})
        for n, rows in p["wall_clock"].items():
            table[f"{n} GPU{'s' if n > 1 else ''}"] = [("-" if r["hours"] is None else f"{r['hours']:.2f}") for r in rows]
            table[f"layout @{n}"] = [r["layout"] for r in rows]
        lines += [table.to_string(index=False), ""]
        for n, rows in p["wall_clock"].items():
            hours = [r["hours"] for r in rows]
            fits = all(h is not None for h in hours)
            lines.append(f"  {n:>3} GPU(s) ({-(-n // GPUS_PER_NODE)} node(s)): " + (f"{sum(hours):.1f} h in all" if fits else
                         f"does not fit: {', '.join(r['stage'] for r in rows if r['hours'] is None)} need more GPUs (or models.*.quantize)"))  # fmt: skip
        lines.append("")
    lines += [ln.strip() for ln in __doc__.split("Formulas", 1)[1].splitlines()[:14]]
    return "\n".join(lines)
