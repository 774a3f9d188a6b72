"""The induction methods, one entry each: which model a method runs and how it is conditioned.

Every place that handles a method (the questionnaire conditions, the reasoning cells, labels in tables and figures,
params validation) reads this table, so adding a method means adding a row here and, where it needs one, its model
(an adapter stage, the steering vectors) in dvc.yaml.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any, Literal, get_args

Method = Literal["direct", "prompt_inst", "prompt_demo", "sft", "dpo", "steer"]


@dataclass(frozen=True)
class MethodSpec:
    name: str
    label: str  # in tables, figures and the report page
    model: Literal["base", "adapter", "steered"]  # base model, its LoRA adapter (named as the method), or base + trait vector
    instruction: Literal["none", "prompt_inst", "demos", "trained"]  # what the model is told about the trait
    conditioned: bool = True  # runs at the trait x level conditions
    unconditioned: bool = False  # also runs once without a condition
    reasoning: bool = True  # part of the study's reasoning grid (Prompt-Demo is not: PAPER.md 2.10)


METHODS: dict[str, MethodSpec] = {
    "direct": MethodSpec("direct", "Direct", "base", "none", conditioned=False, unconditioned=True),
    "prompt_inst": MethodSpec("prompt_inst", "Prompt-Inst", "base", "prompt_inst"),
    "prompt_demo": MethodSpec("prompt_demo", "Prompt-Demo", "base", "demos", reasoning=False),
    "sft": MethodSpec("sft", "SFT", "adapter", "trained", unconditioned=True),
    "dpo": MethodSpec("dpo", "DPO", "adapter", "trained", unconditioned=True),
    "steer": MethodSpec("steer", "Steer", "steered", "none"),
}
assert tuple(METHODS) == get_args(Method), "Method and METHODS must list the same methods"
ADAPTER_METHODS: tuple[str, ...] = tuple(m for m, s in METHODS.items() if s.model == "adapter")
LABELS: dict[str, str] = {m: s.label for m, s in METHODS.items()}


def spec(method: str) -> MethodSpec:
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r} (known: {', '.join(METHODS)})")
    return METHODS[method]


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
