"""The methods and conditions of the questionnaire study (docs/paper.md §2.8) and the prompts they give the model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from big5chat.methods import instruction_text, spec
from big5chat.psychometrics.variants import body
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


def demo_sets(dialogues: Any, n: int, seed: int) -> dict[tuple[str, str], list[str]]:
    """Prompt-Demo's demonstrations: per (trait, level), ``n`` replies of the dialogue dataset (``train_output``)
    drawn with ``seed`` (the study: ``sample(10, random_state=42)``)."""
    return {(t, lvl): g["train_output"].sample(n=min(n, len(g)), random_state=seed).tolist()
            for (t, lvl), g in dialogues.groupby(["trait", "level"])}  # fmt: skip


def demo_prefix(replies: list[str]) -> str:
    """Prompt-Demo: the intro and a fenced list of 10 same-trait, same-level replies from the dialogue dataset."""
    body = "\n".join(f'Example {i}: "{r}"' for i, r in enumerate(replies, start=1))
    return f"{DEMO_INTRO}\n```\n{body}\n```"


def prefix(cond: Condition, demos: dict[tuple[str, str], list[str]] | None = None) -> str:
    """The text placed before the questionnaire prompt for a condition ('' when unconditioned)."""
    if cond.trait and spec(cond.method).instruction == "demos":
        if not demos or (cond.trait, cond.level) not in demos:
            raise ValueError(f"no demonstrations for {cond.trait} {cond.level}")
        return demo_prefix(demos[(cond.trait, cond.level)])
    return instruction_text(cond.method, cond.trait, cond.level)


ItemRendering = Literal["study", "plain"]


def rendered_item(text: str, rendering: ItemRendering = "study") -> str:
    """An item as the model reads it. ``study``: as the study's PsychoBench fork sends it. Its test file holds
    ``"1. Is talkative."`` and ``example_generator.py`` reads the item back as the text between the first and the
    second period (``q.split('.')[1]``): ``" Is talkative"``, with a leading space and without the final period (an
    item with an inner period would be cut there; none of BFI-44 or IPIP-NEO-120 has one). ``plain``: the text as
    printed."""
    if rendering == "plain":
        return text
    return f"1. {text}".split(".")[1]


def condition_chat(cond: Condition, body: str, *, demos: dict | None = None,
                   placement: Literal["user", "system"] = "user") -> list[dict[str, str]]:  # fmt: skip
    """``body`` under a condition: the user message ``prefix + "\\n" + body``; with ``placement == "system"``
    (SFT/DPO trained with the instruction as the system turn) the prefix is the system turn."""
    pre = prefix(cond, demos)
    if placement == "system" and pre and spec(cond.method).instruction == "trained":
        return [{"role": "system", "content": pre}, {"role": "user", "content": body}]
    return [{"role": "user", "content": f"{pre}\n{body}" if pre else body}]


def messages(cond: Condition, questionnaire_prompt: str, item: str, *, demos: dict | None = None,
             placement: Literal["user", "system"] = "user", rendering: ItemRendering = "study", variant: str = "study") -> list[dict[str, str]]:  # fmt: skip
    """The chat for one item: the study's user message ``prefix + "\\n" + prompt + "\\n" + item`` (the item
    ``rendered_item(item, rendering)``; ``condition_chat``), or another wording of the turn (``variants.VARIANTS``)."""
    text = body(variant, questionnaire_prompt, rendered_item(item, rendering), item)
    return condition_chat(cond, text, demos=demos, placement=placement)
