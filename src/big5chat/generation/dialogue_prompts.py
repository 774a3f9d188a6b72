"""The BIG5-CHAT generation prompts (docs/paper.md §2.5): turn 0 by PersonX, turn 1 by PersonY with a personality.

The template is the project's own copy of the study's ``PromptTemplate``/``ContextTemplate``; the ten trait
descriptions (study materials, originally PHAnToM's) are data in ``data/prompts/personality_descriptions.json``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from big5chat import paths
from big5chat.traits import normalize_level, normalize_trait

PROMPT = (
    "Imagine you are {agent}, your task is to act/speak as {agent} would.\n"
    "You should try your best to infer and achieve {agent}'s goal in a single turn that align with their character traits.\n"
    "Additionally, maintaining the conversation's naturalness and realism is essential.\n"
    "{context}.\n\n"
    "Conversation starts:\n"
    "{history}\n\n"
    "Please generate your argument directly and concisely within 50 words:"
)
CONTEXT_TURN0 = "Here is the context of this interaction:\n```\nScenario: {scenario}\nParticipants: {p1_name} and {p2_name}\n```\n"
CONTEXT_TURN1 = (
    "Here is the context of this interaction:\n```\nScenario: {scenario}\nParticipants: {p1_name} and {p2_name}\n"
    "{p2_name}'s big five personality description: {p2_personality}\n```\n"
)
HISTORY_TURN0 = "You are at Turn #0."
HISTORY_TURN1 = 'Turn #0: {p1_name} said: "{utterance}"\n\nYou are at Turn #1.'
DESCRIPTIONS_FILE = paths.DATA / "prompts" / "personality_descriptions.json"


@lru_cache(maxsize=4)
def descriptions(path: str | Path = DESCRIPTIONS_FILE) -> dict[str, dict[str, str]]:
    return json.loads(Path(path).read_text(encoding="utf-8"))["descriptions"]


def personality(trait: str, level: str) -> str:
    """'The person has {level} {trait}.\\n{description}', as the study wrote it into the turn-1 context."""
    t, lvl = normalize_trait(trait), normalize_level(level)
    return f"The person has {lvl} {t}.\n{descriptions()[t][lvl]}"


@dataclass(frozen=True)
class Scenario:
    narrative: str
    person_x: str
    person_y: str


def turn0_prompt(s: Scenario) -> str:
    context = CONTEXT_TURN0.format(scenario=s.narrative, p1_name=s.person_x, p2_name=s.person_y)
    return PROMPT.format(agent=s.person_x, context=context, history=HISTORY_TURN0)


def turn1_prompt(s: Scenario, turn0: str, trait: str | None, level: str | None) -> str:
    """PersonY's turn; ``trait=None`` leaves the personality description out (the context of turn 0), the prompt
    that steered and unconditioned replies answer."""
    if trait is None:
        context = CONTEXT_TURN0.format(scenario=s.narrative, p1_name=s.person_x, p2_name=s.person_y)
    else:
        context = CONTEXT_TURN1.format(scenario=s.narrative, p1_name=s.person_x, p2_name=s.person_y, p2_personality=personality(trait, level or ""))
    history = HISTORY_TURN1.format(p1_name=s.person_x, utterance=turn0)
    return PROMPT.format(agent=s.person_y, context=context, history=history)


_QUOTES = {'"': '"', "“": "”", "'": "'"}


def postprocess(text: str) -> tuple[str, dict[str, bool]]:
    """The study's clean-up: keep the text after the last ':\\n\\n', then strip surrounding quotes.

    Returns the text and which of the two changed it (for counting).
    """
    out, changed = text.strip(), {"after_colon": False, "quotes": False}
    if ":\n\n" in out:
        out = out.rsplit(":\n\n", 1)[1].strip()
        changed["after_colon"] = True
    if len(out) >= 2 and out[0] in _QUOTES and out[-1] == _QUOTES[out[0]]:
        out = out[1:-1].strip()
        changed["quotes"] = True
    return out, changed


_REFUSAL = re.compile(
    r"\b(I'm sorry|I am sorry|I apologi[sz]e|I can(?:'|no)t (?:help|assist|fulfil|comply)|I'm (?:not able|unable) to|"
    r"as an AI|I'm an AI|language model)\b",
    re.IGNORECASE,
)


def is_refusal(text: str) -> bool:
    """Refusal / assistant boilerplate (the released dataset has about 2%)."""
    return bool(_REFUSAL.search(text))
