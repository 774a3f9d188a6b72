"""Generating the BIG5-CHAT dialogue dataset: turn 0 by the base model, turn 1 by DExperts per trait and level.

Work is split into jobs keyed by (original_index, trait, level) (turn 0: trait and level empty). Finished
jobs are appended to a checkpoint file (JSON lines, flushed and fsynced per batch) outside DVC's outputs, so
an interrupted run resumes without regenerating them. The checkpoint's name is a hash of everything that
decides the text (params, models, scenarios), so changed settings never reuse stale rows.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from big5chat.experts.layout import adapter_folders, adapter_name, anti_expert_dir, design_of, expert_dir
from big5chat.generation.dialogue_prompts import Scenario, postprocess, turn0_prompt, turn1_prompt
from big5chat.prompts import expert_instruction, trait_system_prompt
from big5chat.storage import jsonl_lines
from big5chat.traits import opposite

OFFICIAL_COLUMNS = (
    "original_index", "env_idx", "trait", "level", "relation", "head", "tail", "literal", "narrative",
    "personx", "persony", "train_instruction", "train_input", "train_output",
)  # fmt: skip


@dataclass(frozen=True)
class Job:
    original_index: int
    trait: str = ""  # "" for turn 0
    level: str = ""

    @property
    def key(self) -> str:
        return f"{self.original_index}|{self.trait}|{self.level}"


def checkpoint_key(settings: dict[str, Any]) -> str:
    blob = json.dumps(settings, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


class Checkpoint:
    """Append-only JSON lines of finished jobs; a torn last line (a kill mid-write) is ignored."""

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    def load(self) -> dict[str, dict[str, Any]]:
        done: dict[str, dict[str, Any]] = {}
        if not self.path.is_file():
            return done
        for line in jsonl_lines(self.path.read_text(encoding="utf-8")):
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue  # the line a kill cut short: that job is simply redone
            done[rec["key"]] = rec
        return done

    def append(self, records: Iterable[dict[str, Any]]) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            for rec in records:
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())


def scenario_of(row: dict[str, Any]) -> Scenario:
    return Scenario(narrative=row["narrative"], person_x=row["PersonX"], person_y=row["PersonY"])


def turn1_jobs(scenarios: list[dict[str, Any]], traits: list[str], levels: tuple[str, ...] = ("high", "low")) -> list[Job]:
    return [Job(int(s["original_index"]), t, lvl) for t in traits for s in scenarios for lvl in levels]


def turn1_groups(jobs: list[Job], expert_dirs: dict[str, Path]) -> list[list[Job]]:
    """Turn-1 jobs grouped so that a batch loads its experts once: by trait, and by level too when the trait has
    one expert per level (``experts.layout``)."""
    groups = []
    for trait, folder in expert_dirs.items():
        mine = [j for j in jobs if j.trait == trait]
        if design_of(folder) == "per_level":
            groups += [[j for j in mine if j.level == lvl] for lvl in ("high", "low")]
        else:
            groups.append(mine)
    return [g for g in groups if g]


def run_jobs(
    jobs: list[Job],
    done: dict[str, dict[str, Any]],
    batch_size: int,
    generate_batch: Callable[[list[Job]], list[str]],
    checkpoint: Checkpoint,
    on_batch: Callable[[int], None] | None = None,
) -> dict[str, dict[str, Any]]:
    """Generate every job not in ``done``, in batches of ``batch_size`` jobs, checkpointing each finished batch."""
    return run_batches(batches(jobs, batch_size), done, generate_batch, checkpoint, on_batch)


def batches(jobs: list[Job], size: int) -> list[list[Job]]:
    """``jobs`` in consecutive batches of ``size``, finished or not (``run_batches`` skips the finished)."""
    return [jobs[i : i + size] for i in range(0, len(jobs), size)]


def run_batches(
    batches: list[list[Job]],
    done: dict[str, dict[str, Any]],
    generate_batch: Callable[[list[Job]], list[str]],
    checkpoint: Checkpoint,
    on_batch: Callable[[int], None] | None = None,
) -> dict[str, dict[str, Any]]:
    """Generate each batch's jobs that are not in ``done``, checkpointing each finished batch. The batches are
    formed from all jobs, finished or not, so that a batch holds the same jobs (and seed) however the work was
    interrupted or split across processes (``generation.shards``)."""
    for full in batches:
        batch = [j for j in full if j.key not in done]
        if not batch:
            continue
        raws = generate_batch(batch)
        recs = []
        for job, raw in zip(batch, raws):
            clean, changed = postprocess(raw)
            recs.append({"key": job.key, "raw": raw, "text": clean, **{f"pp_{k}": v for k, v in changed.items()}})
        checkpoint.append(recs)
        for r in recs:
            done[r["key"]] = r
        if on_batch:
            on_batch(len(batch))
    return done


def base_prompt(job: Job, scenario: Scenario, turn0: str) -> str:
    return turn0_prompt(scenario) if not job.trait else turn1_prompt(scenario, turn0, job.trait, job.level)


def expert_prompt(job: Job, anti: bool = False) -> str:
    """The expert's own instruction, ``...{Trait} - {level}\\n``; the anti-expert gets the opposite level."""
    level = opposite(job.level) if anti else job.level
    return expert_instruction(job.trait, level) + "\n"


def official_rows(scenarios: list[dict[str, Any]], traits: list[str], done: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The dataset in the official BIG5-CHAT CSV schema (env_idx counts scenarios within each trait)."""
    rows = []
    for t in traits:
        for env_idx, s in enumerate(scenarios):
            turn0 = done[Job(int(s["original_index"])).key]["text"]
            for level in ("high", "low"):
                rec = done[Job(int(s["original_index"]), t, level).key]
                rows.append({
                    "original_index": int(s["original_index"]), "env_idx": env_idx, "trait": t, "level": level,
                    "relation": s["relation"], "head": s["head"], "tail": s["tail"], "literal": s["literal"],
                    "narrative": s["narrative"], "personx": s["PersonX"], "persony": s["PersonY"],
                    "train_instruction": trait_system_prompt(t, level), "train_input": turn0, "train_output": rec["text"],
                })  # fmt: skip
    return rows


class DialogueGenerator:
    """Turn-0 and turn-1 generation over batches of jobs, with experts loaded one trait at a time.

    ``expert_dirs`` maps a trait to its experts' folder (``experts.layout``: one expert, a LoRA adapter or a full
    model, or one per level). With ``mixed_adapters`` the adapters are loaded into one PEFT model and rows run as
    mixed-adapter batches; otherwise each expert adapter is merged into its own copy of the base model when its
    trait's jobs start. With one expert per level a batch must hold one level: its expert writes that level and
    the opposite level's expert is the anti-expert. With ``base_tensor_parallel`` T > 1 the base is split over
    the T processes of this launch (each gets the full logits) and every process holds whole experts.
    """

    def __init__(self, base_dir: Path, expert_dirs: dict[str, Path], scenarios: list[dict[str, Any]], *, dtype: str,
                 steering: Any, sampling: Any, max_new_tokens: int, turn0_max_new_tokens: int, seed: int,
                 mixed_adapters: bool = False, expert_base_dir: Path | None = None, prefix_reuse: bool = False,
                 prefix_cache_mb: int = 1024, base_tensor_parallel: int = 1):  # fmt: skip
        from big5chat.models.loading import check_same_vocabulary, load_chat_model, load_tokenizer, resolve_alias

        if base_tensor_parallel > 1 and mixed_adapters:
            raise ValueError("generate_dialogues.mixed_adapters puts LoRA adapters on the base itself, which tensor_parallel splits: use one of them")
        self.base, self.tok = load_chat_model(base_dir, dtype=dtype, tensor_parallel=base_tensor_parallel)
        self.base_dir, self.expert_dirs, self.dtype = base_dir, expert_dirs, dtype
        # The experts may come from a smaller model of the same family (the 70B profile: 8B experts).
        self.expert_base_dir = resolve_alias(expert_base_dir) if expert_base_dir else resolve_alias(base_dir)
        if self.expert_base_dir != resolve_alias(base_dir):
            if mixed_adapters:
                raise ValueError(
                    "generate_dialogues.mixed_adapters needs the experts to be adapters of the base model itself (models.expert_base: null)"
                )
            check_same_vocabulary(self.tok, load_tokenizer(self.expert_base_dir), "models.expert_base vs models.base")
        self.scenarios = {int(s["original_index"]): s for s in scenarios}
        self.steering, self.sampling, self.seed = steering, sampling, seed
        self.max_new_tokens, self.turn0_max_new_tokens = max_new_tokens, turn0_max_new_tokens
        self.mixed = mixed_adapters
        self._experts: dict[Path, Any] = {}
        self._experts_trait: str | None = None
        self._peft: Any = None
        self.generated_tokens = 0
        self.turn0: dict[int, str] = {}
        self.prefix_reuse, self.prefix_cache_mb = prefix_reuse, prefix_cache_mb
        self._store: Any = None
        self._arm_prefix: dict[int, int] = {}

    def _prefix_kwargs(self, model: Any, base_prefix_lens: list[int] | None = None) -> dict[str, Any]:
        """generate()'s prefix-reuse arguments: one store of prefixes for the base (or PEFT) model, kept across batches."""
        if not self.prefix_reuse:
            return {}
        from big5chat.generation.prefix_cache import PrefixStore

        if self._store is None or self._store.model is not model:
            self._store = PrefixStore(model, max_bytes=self.prefix_cache_mb * 1024**2)
        return {"reuse_prefixes": True, "prefix_store": self._store, "base_prefix_lens": base_prefix_lens}

    def arm_prefix_len(self, original_index: int) -> int:
        """Tokens that the turn-1 prompts of a scenario's arms (every trait x level) share: the prompt up to the
        personality description. Those are prefilled once and reused by every arm's batch."""
        if original_index not in self._arm_prefix:
            from big5chat.generation.prefix_cache import common_prefix_len

            s, turn0 = scenario_of(self.scenarios[original_index]), self.turn0[original_index]
            arms = [self._render(base_prompt(Job(original_index, t, lvl), s, turn0)) for t in self.expert_dirs for lvl in ("high", "low")]
            self._arm_prefix[original_index] = common_prefix_len([self.tok(a, add_special_tokens=False)["input_ids"] for a in arms])
        return self._arm_prefix[original_index]

    def prefix_stats(self) -> dict[str, int] | None:
        return self._store.stats() if self._store is not None else None

    def _render(self, content: str) -> str:
        from big5chat.generation.chat import render

        return render(self.tok, [{"role": "user", "content": content}])

    def _batch_seed(self, batch: list[Job]) -> int:
        return int(hashlib.sha256(f"{self.seed}|{batch[0].key}".encode()).hexdigest()[:8], 16)

    def _decode(self, rows: list[list[int]]) -> list[str]:
        self.generated_tokens += sum(len(r) for r in rows)
        return [self.tok.decode(r, skip_special_tokens=True).strip() for r in rows]

    def turn0_batch(self, batch: list[Job]) -> list[str]:
        from big5chat.generation.dexperts import generate

        prompts = [self._render(turn0_prompt(scenario_of(self.scenarios[j.original_index]))) for j in batch]
        rows = generate(self.tok, (self.base, prompts), sampling=self.sampling, max_new_tokens=self.turn0_max_new_tokens,
                        seed=self._batch_seed(batch), eos_token_ids=self.eos_ids, **self._prefix_kwargs(self.base))  # fmt: skip
        return self._decode(rows)

    @property
    def eos_ids(self) -> list[int]:
        ids = {self.tok.eos_token_id}
        eot = self.tok.convert_tokens_to_ids("<|eot_id|>")  # LLaMA-3's end of turn, a terminator in the study
        if isinstance(eot, int) and eot != self.tok.unk_token_id:
            ids.add(eot)
        return sorted(i for i in ids if i is not None)

    def _expert_model(self, trait: str, folder: Path) -> Any:
        """The merged expert in ``folder``, kept while ``trait``'s jobs run (its expert and anti-expert)."""
        if self._experts_trait != trait:
            self._experts.clear()  # free the previous trait's copies first
            self._experts_trait = trait
        if folder not in self._experts:
            self._experts[folder] = load_expert(self.expert_base_dir, folder, self.dtype)
        return self._experts[folder]

    def _peft_model(self) -> Any:
        if self._peft is None:
            from big5chat.models.adapters import load_adapters

            self._peft = load_adapters(self.base, adapter_folders(self.expert_dirs))
        return self._peft

    def turn1_batch(self, batch: list[Job]) -> list[str]:
        from big5chat.generation.dexperts import generate

        traits, levels = {j.trait for j in batch}, {j.level for j in batch}
        if len(traits) != 1:
            raise ValueError("a turn-1 batch must hold one trait (its experts are loaded once)")
        (trait,) = traits
        trait_dir = Path(self.expert_dirs[trait])
        design = design_of(trait_dir)
        if design == "per_level" and len(levels) != 1:
            raise ValueError("with one expert per level a turn-1 batch must hold one level")
        level = next(iter(levels))
        base_prompts = [self._render(base_prompt(j, scenario_of(self.scenarios[j.original_index]), self.turn0[j.original_index])) for j in batch]
        expert_prompts = [self._render(expert_prompt(j)) for j in batch]
        needs_anti = self.steering.rule == "dexperts"
        anti_prompts = [self._render(expert_prompt(j, anti=True)) for j in batch] if needs_anti else None
        kw = dict(steering=self.steering, sampling=self.sampling, max_new_tokens=self.max_new_tokens,
                  seed=self._batch_seed(batch), eos_token_ids=self.eos_ids)  # fmt: skip
        lens = [self.arm_prefix_len(j.original_index) for j in batch] if self.prefix_reuse else None
        if self.mixed:
            model = self._peft_model()
            names = (adapter_name(trait, level, design), adapter_name(trait, opposite(level), design) if needs_anti else None)
            rows = generate(self.tok, (model, base_prompts), (model, expert_prompts), (model, anti_prompts) if needs_anti else None,
                            adapters=names, **kw, **self._prefix_kwargs(model, lens))  # fmt: skip
        else:
            expert = self._expert_model(trait, expert_dir(trait_dir, level))
            anti = self._expert_model(trait, anti_expert_dir(trait_dir, level)) if needs_anti else None
            rows = generate(self.tok, (self.base, base_prompts), (expert, expert_prompts), (anti, anti_prompts) if needs_anti else None,
                            **kw, **self._prefix_kwargs(self.base, lens))  # fmt: skip
        return self._decode(rows)


def load_expert(base_dir: Path, expert_dir: Path, dtype: str) -> Any:
    """An expert as a plain model: a LoRA adapter merged into a fresh copy of the base, or a full model."""
    from big5chat.models.loading import load_causal_lm

    if (Path(expert_dir) / "adapter_config.json").is_file():
        from peft import PeftModel

        return PeftModel.from_pretrained(load_causal_lm(base_dir, dtype=dtype), str(expert_dir)).merge_and_unload().eval()
    return load_causal_lm(expert_dir, dtype=dtype)
