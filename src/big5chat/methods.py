"""The induction methods, one entry each: which model a method runs and how it is conditioned.

Every place that handles a method (the questionnaire conditions, the reasoning cells, labels in tables and figures,
params validation) reads this table, so adding a method means adding a row here and, where it needs one, its model
(an adapter stage, the steering vectors) in dvc.yaml.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any, Literal

from big5chat.prompts import prompt_inst, trait_system_prompt

# How a method tells the model the condition (trait, level): the text placed before the task. "none" (nothing) and
# "demos" (Prompt-Demo's examples, drawn from the dialogue dataset by psychometrics.conditions) are built in.
INSTRUCTIONS: dict[str, Callable[[str, str], str]] = {
    "prompt_inst": prompt_inst,  # the study's Prompt-Inst wording
    "trained": trait_system_prompt,  # the instruction SFT/DPO were trained with
}


@dataclass(frozen=True)
class MethodSpec:
    name: str
    label: str  # in tables, figures and the report page
    model: Literal["base", "adapter", "steered"]  # base model, its LoRA adapter (named as the method), or base + trait vector
    instruction: str  # what the model is told about the trait: "none", "demos" or a key of INSTRUCTIONS
    conditioned: bool = True  # runs at the trait x level conditions
    unconditioned: bool = False  # also runs once without a condition
    reasoning: bool = True  # part of the study's reasoning grid (Prompt-Demo is not: docs/paper.md §2.10)
    paper_codes: tuple[str, ...] = ()  # its names in the paper's result files and tables (big5chat.paper); () = not in the paper


METHODS: dict[str, MethodSpec] = {}
LABELS: dict[str, str] = {}  # method -> its label, kept in step with METHODS by register()


def register(method: MethodSpec) -> None:
    """Add a method (or replace one of the same name). A row of ``_STUDY`` below is the usual way; a plug-in or a
    test may call this before params are validated."""
    if method.instruction not in ("none", "demos", *INSTRUCTIONS):
        raise ValueError(f"method {method.name!r}: unknown instruction {method.instruction!r} (known: none, demos, {', '.join(INSTRUCTIONS)})")
    METHODS[method.name] = method
    LABELS[method.name] = method.label


def unregister(name: str) -> None:
    METHODS.pop(name, None)
    LABELS.pop(name, None)


_STUDY = (
    MethodSpec("direct", "Direct", "base", "none", conditioned=False, unconditioned=True, paper_codes=("direct",)),
    MethodSpec("prompt_inst", "Prompt-Inst", "base", "prompt_inst", paper_codes=("prompt_v1", "prompt")),
    MethodSpec("prompt_demo", "Prompt-Demo", "base", "demos", reasoning=False, paper_codes=("prompt_chat", "prompt_chat_sampling")),
    MethodSpec("sft", "SFT", "adapter", "trained", unconditioned=True, paper_codes=("train", "sft")),
    MethodSpec("dpo", "DPO", "adapter", "trained", unconditioned=True, paper_codes=("train_dpo", "dpo")),
    MethodSpec("steer", "Steer", "steered", "none"),
)
for _m in _STUDY:
    register(_m)
REFERENCE = "direct"  # the unconditioned base model every other method is compared with


def steered_methods(methods: list[str]) -> list[str]:
    """Those of ``methods`` that add a vector to the residual stream (forward hooks: HF models only, not vLLM)."""
    return [m for m in methods if METHODS[m].model == "steered"]


def adapter_methods() -> tuple[str, ...]:
    """The methods that load a LoRA adapter named as the method (each trained by its own stage)."""
    return tuple(m for m, s in METHODS.items() if s.model == "adapter")


def spec(method: str) -> MethodSpec:
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r} (known: {', '.join(METHODS)})")
    return METHODS[method]


def instruction_text(method: str, trait: str, level: str) -> str:
    """What ``method`` tells the model at the condition (trait, level), '' when unconditioned or told nothing.
    Prompt-Demo's examples depend on the dialogue data: ``psychometrics.conditions.prefix`` builds them."""
    s = spec(method)
    if not trait or s.instruction == "none":
        return ""
    if s.instruction == "demos":
        raise ValueError(f"method {method!r} shows demonstrations: psychometrics.conditions.prefix builds them from the dialogue data")
    return INSTRUCTIONS[s.instruction](trait, level)


@contextmanager
def method_model(model: Any, method: str, trait: str = "", level: str = "", *, vectors: Any = None, multiplier: float = 0.0) -> Iterator[Any]:
    """``model`` as ``method`` runs it, for the block: its adapter selected (SFT/DPO); the adapters switched off for
    the other methods when the model carries any; for steer at a condition, the trait's vector added to the residual
    stream (``vectors``: ``steering.vectors.TraitVectors``) and removed on exit."""
    s = spec(method)
    with ExitStack() as stack:
        if hasattr(model, "peft_config"):
            if s.model == "adapter":
                model.set_adapter(method)
            else:
                stack.enter_context(model.disable_adapter())
        elif s.model == "adapter":
            raise ValueError(f"method {method!r} needs its adapter loaded on the model (models.adapters.load_adapters)")
        if s.model == "steered" and trait:
            if vectors is None:
                raise ValueError("method 'steer' needs the trait vectors of the learn_steering stage")
            from big5chat.steering.hooks import steered

            stack.enter_context(steered(model, vectors.deltas(trait, level, multiplier)))
        yield model
