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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from big5chat.generation.dialogue_prompts import Scenario, postprocess, turn0_prompt, turn1_prompt
from big5chat.prompts import expert_instruction, trait_system_prompt
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
        for line in self.path.read_text(encoding="utf-8").splitlines():
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


def run_jobs(
    jobs: list[Job],
    done: dict[str, dict[str, Any]],
    batch_size: int,
    generate_batch: Callable[[list[Job]], list[str]],
    checkpoint: Checkpoint,
    on_batch: Callable[[int], None] | None = None,
) -> dict[str, dict[str, Any]]:
    """Generate every job not in ``done``, a batch at a time, checkpointing each finished batch."""
    todo = [j for j in jobs if j.key not in done]
    for start in range(0, len(todo), batch_size):
        batch = todo[start : start + batch_size]
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
