"""Where a trait's expert generators live, for both designs of ``train_experts.design``.

``data/models/experts/{trait}`` is either one expert (``single``: the study's design, a LoRA adapter or a full
model whose instruction names the level) or two (``per_level``: ``{trait}/high`` and ``{trait}/low``, each
trained on that level's posts only, DExperts' expert and anti-expert). Every stage that uses experts asks here
which folder serves a (trait, level), so the two designs share one code path.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from big5chat.traits import LEVELS, opposite

DESIGNS = ("per_level", "single")


def is_model_dir(folder: Path) -> bool:
    """A LoRA adapter or a full model folder."""
    return (folder / "adapter_config.json").is_file() or (folder / "config.json").is_file()


def design_of(trait_dir: str | Path) -> str:
    """'per_level' when the trait folder holds one expert per level, else 'single'."""
    trait_dir = Path(trait_dir)
    return "per_level" if all(is_model_dir(trait_dir / lvl) for lvl in LEVELS) else "single"


def expert_dir(trait_dir: str | Path, level: str) -> Path:
    """The folder of the expert that writes ``level`` (the trait's only expert in the single design)."""
    trait_dir = Path(trait_dir)
    return trait_dir / level if design_of(trait_dir) == "per_level" else trait_dir


def anti_expert_dir(trait_dir: str | Path, level: str) -> Path:
    """The anti-expert of ``level``: the opposite level's expert (per_level), or the same expert (single)."""
    return expert_dir(trait_dir, opposite(level))


def adapter_name(trait: str, level: str, design: str) -> str:
    """The PEFT adapter name of a (trait, level) expert when several are loaded into one model."""
    return f"{trait}_{level}" if design == "per_level" else trait


def adapter_folders(trait_dirs: dict[str, Path]) -> dict[str, Path]:
    """{adapter name: folder} of every expert of the given traits (each trait in its own design)."""
    out: dict[str, Path] = {}
    for trait, folder in trait_dirs.items():
        design = design_of(folder)
        for level in LEVELS:
            out[adapter_name(trait, level, design)] = expert_dir(folder, level)
    return out


def fingerprint(trait_dir: str | Path) -> str:
    """sha256 over every weight file of a trait's experts (names and contents): a cache key for generated text."""
    trait_dir = Path(trait_dir)
    h = hashlib.sha256()
    for f in sorted(trait_dir.rglob("*.safetensors")):
        h.update(f.relative_to(trait_dir).as_posix().encode())
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()
