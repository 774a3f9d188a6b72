"""The methods and conditions of the questionnaire study (PAPER.md 2.8) and the prompts they give the model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from big5chat.methods import spec
from big5chat.prompts import prompt_inst, trait_system_prompt
from big5chat.traits import TRAITS

DEMO_INTRO = (
    "Here are 10 examples of how people like you have responded in different situations. "
    "Pay attention to how they approach communication and problem-solving."
)


@dataclass(frozen=True)
class Condition:
    method: str
    trait: str = ""  # "" = unconditioned
    level: str = ""

    @property
    def name(self) -> str:
        return f"{self.method}:{self.trait or 'none'}:{self.level or 'none'}"

    @property
    def code(self) -> str:
        """The study's mode code: 5 characters in O,C,E,A,N order, 0 = high, 1 = low, x = unset."""
        return "".join(("0" if self.level == "high" else "1") if t == self.trait else "x" for t in TRAITS)


def conditions(methods: list[str], traits: list[str]) -> list[Condition]:
    """Each method at the 10 trait x level conditions where it is conditioned, and once unconditioned where it has
    an unconditioned run (Direct; SFT/DPO: the trained model without an instruction); ``methods.METHODS``."""
    out: list[Condition] = []
    for m in methods:
        s = spec(m)
        if s.unconditioned:
            out.append(Condition(m))
        if s.conditioned:
            out += [Condition(m, t, lvl) for t in traits for lvl in ("high", "low")]
    return out


def demo_prefix(replies: list[str]) -> str:
    """Prompt-Demo: the intro and a fenced list of 10 same-trait, same-level replies from the dialogue dataset."""
    body = "\n".join(f'Example {i}: "{r}"' for i, r in enumerate(replies, start=1))
    return f"{DEMO_INTRO}\n```\n{body}\n```"


def prefix(cond: Condition, demos: dict[tuple[str, str], list[str]] | None = None) -> str:
    """The text placed before the questionnaire prompt for a condition ('' when unconditioned)."""
    instruction = spec(cond.method).instruction
    if not cond.trait or instruction == "none":
        return ""
    if instruction == "prompt_inst":
        return prompt_inst(cond.trait, cond.level)
    if instruction == "demos":
        if not demos or (cond.trait, cond.level) not in demos:
            raise ValueError(f"no demonstrations for {cond.trait} {cond.level}")
        return demo_prefix(demos[(cond.trait, cond.level)])
    return trait_system_prompt(cond.trait, cond.level)


def messages(cond: Condition, questionnaire_prompt: str, item: str, *, demos: dict | None = None,
             placement: Literal["user", "system"] = "user") -> list[dict[str, str]]:  # fmt: skip
    """The chat for one item: the study's user message ``prefix + "\\n" + prompt + "\\n" + item``; with
    ``placement == "system"`` (SFT/DPO trained with the instruction as the system turn) the prefix is the system turn."""
    pre = prefix(cond, demos)
    body = f"{questionnaire_prompt}\n{item}"
    if placement == "system" and pre and spec(cond.method).instruction == "trained":
        return [{"role": "system", "content": pre}, {"role": "user", "content": body}]
    return [{"role": "user", "content": f"{pre}\n{body}" if pre else body}]
