"""Each method's model, loaded once per stage: the base model carrying the LoRA adapter of every adapter method
(SFT, DPO) and the steering vectors (steer), and the model state of one condition (``methods.method_model``).

assess_personality (the questionnaires) and behavioural_validity (free replies) put the same methods in the same
model states: both load them with ``MethodModels.load``.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from big5chat import paths
from big5chat.methods import adapter_methods, method_model, spec

if TYPE_CHECKING:
    from big5chat.psychometrics.conditions import Condition
    from big5chat.steering.vectors import TraitVectors

VECTORS = ("steering", "vectors.safetensors")  # below paths.MODELS: learn_steering's trait vectors
Placement = Literal["user", "system"]


def adapter_dirs(methods: list[str]) -> dict[str, Path]:
    """The LoRA adapter folder of each adapter method among ``methods`` (below ``paths.MODELS``, named as the method)."""
    return {m: paths.MODELS / m for m in adapter_methods() if m in methods}


def placements(cfg: dict[str, Any]) -> dict[str, Placement]:
    """Where each adapter method's trait instruction goes (the user or the system turn), as its training stage put it:
    ``cfg["train_<method>"].placement`` (train_sft, train_dpo); every other method places it in the user turn."""
    return {m: cfg[f"train_{m}"].placement for m in adapter_methods() if f"train_{m}" in cfg}


def is_steered(method: str) -> bool:
    """The method adds a trait vector to the residual stream (steer) instead of loading an adapter or prompting."""
    return spec(method).model == "steered"


@dataclass(frozen=True)
class MethodModels:
    """The loaded models of a stage's methods and the model state of each condition."""

    model: Any  # the base model, a PeftModel holding every adapter when a method has one; None when vLLM loads them
    tok: Any
    base_dir: Path
    adapters: dict[str, Path]  # adapter method -> its LoRA adapter folder
    vectors: TraitVectors | None  # steer's trait vectors (None when steer is not among the methods)
    multiplier: float  # steer's strength (``steer.multiplier``)
    placement: dict[str, Placement]  # adapter method -> where its instruction goes (``placements``)

    @classmethod
    def load(cls, methods: list[str], *, dtype: str, multiplier: float, placement: dict[str, Placement], backend: str = "hf") -> MethodModels:
        """The base model (``dtype``) with the adapters of ``methods`` and, with steer among them, the trait vectors.
        ``backend`` vllm loads only the tokenizer (its chat template): vLLM loads the base and each adapter itself."""
        from big5chat.models.adapters import load_adapters
        from big5chat.models.loading import load_chat_model, load_tokenizer
        from big5chat.steering.vectors import TraitVectors

        base_dir = paths.MODELS / "base"
        adapters = adapter_dirs(methods)
        vectors = TraitVectors.load(paths.MODELS.joinpath(*VECTORS)) if any(is_steered(m) for m in methods) else None
        if backend == "vllm":
            model, tok = None, load_tokenizer(base_dir, padding_side="left", require_chat_template=True, causal=True)
        else:
            base, tok = load_chat_model(base_dir, dtype=dtype)
            model = load_adapters(base, adapters) if adapters else base
        return cls(model, tok, base_dir, adapters, vectors, multiplier, placement)

    def placement_of(self, method: str) -> Placement:
        return self.placement.get(method, "user")

    def state(self, cond: Condition, *, steer_per_row: bool = False) -> AbstractContextManager[Any]:
        """The model as ``cond``'s method runs it, for a ``with`` block: its adapter selected (SFT/DPO), the adapters
        off (the others), and for steer the condition's trait vector added, signed by its level. ``steer_per_row``:
        steer without a vector, the caller adding each row's own (``free_replies``)."""
        if steer_per_row and is_steered(cond.method):
            return method_model(self.model, cond.method)
        return method_model(self.model, cond.method, cond.trait, cond.level, vectors=self.vectors, multiplier=self.multiplier)

    def free_replies(self, chats: list[list[dict[str, str]]], conds: list[Condition], *, max_new_tokens: int, batch_size: int, seed: int,
                     progress_desc: str | None = None) -> list[str]:  # fmt: skip
        """Greedy replies to ``chats`` (row i under ``conds[i]``, all of one method, the model in that method's
        ``state(..., steer_per_row=True)``): steer adds each row's trait vector, signed by its level, in shared
        batches; the other methods generate on the model as it is."""
        kw: dict[str, Any] = {"max_new_tokens": max_new_tokens, "batch_size": batch_size, "seed": seed, "progress_desc": progress_desc}
        if is_steered(conds[0].method):
            from big5chat.steering.replies import steered_replies

            return steered_replies(self.model, self.tok, chats, [(c.trait, c.level) for c in conds], self.vectors, self.multiplier, **kw)
        from big5chat.generation.chat import generate_chat

        return generate_chat(self.model, self.tok, chats, **kw)
