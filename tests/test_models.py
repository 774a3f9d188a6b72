"""Model materialization (tiny and embedded) and the loading policy."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from big5chat.config import ModelSpec
from big5chat.models.loading import ModelLoadError, check_model_dir, load_chat_model, load_encoder, load_tokenizer
from big5chat.models.materialize import ModelSourceError, materialize


def test_tiny_models_have_cards_and_pass_the_policy(tiny_models: dict[str, Path]) -> None:
    base = json.loads((tiny_models["base"] / "card.json").read_text())
    assert base["architecture"] == "LlamaForCausalLM" and base["parameters"] > 0
    assert base["pad_token"] != base["eos_token"] and base["chat_template"] is True
    model, tok = load_chat_model(tiny_models["base"])
    assert tok.padding_side == "left" and model.config.num_hidden_layers == 2
    enc = load_encoder(tiny_models["encoder"])
    assert enc.config.num_hidden_layers == 2
    assert json.loads((tiny_models["encoder"] / "card.json").read_text())["architecture"] == "BertModel"


def test_materialize_leaves_nothing_on_failure(tmp_path: Path) -> None:
    with pytest.raises(ModelSourceError):
        materialize(ModelSpec("tiny", "tiny-bert"), tmp_path / "base", "base")  # an encoder as the base LM
    assert list(tmp_path.iterdir()) == []


def test_policy_refuses_missing_dir_and_pickles(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    with pytest.raises(ModelLoadError, match="model folder not found"):
        check_model_dir(tmp_path / "nothing")
    d = tmp_path / "pickled"
    shutil.copytree(tiny_models["encoder"], d)
    (d / "model.safetensors").unlink()
    torch.save({}, d / "pytorch_model.bin")
    with pytest.raises(ModelLoadError, match="pytorch_model.bin: pickle-based weights .* refused"):
        load_encoder(d)


def test_policy_checks_chat_template_and_pad(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    with pytest.raises(ModelLoadError, match="no chat template"):
        load_tokenizer(tiny_models["encoder"], require_chat_template=True)
    d = tmp_path / "pad_is_eos"
    shutil.copytree(tiny_models["base"], d)
    cfg = json.loads((d / "tokenizer_config.json").read_text())
    cfg["pad_token"] = "<|im_end|>"
    (d / "tokenizer_config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelLoadError, match="pad token is the EOS token"):
        load_chat_model(d)


def test_local_kind_fixes_pad_and_links_weights(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    src = tmp_path / "src"
    shutil.copytree(tiny_models["base"], src)
    cfg = json.loads((src / "tokenizer_config.json").read_text())
    cfg["pad_token"] = "<|im_end|>"  # as SmolLM2 ships it: pad == eos
    (src / "tokenizer_config.json").write_text(json.dumps(cfg))
    before = {f.name: f.read_bytes() for f in src.iterdir() if f.is_file()}
    card = materialize(ModelSpec("local", str(src)), tmp_path / "out", "base")
    assert card["pad_token"] == "<|endoftext|>"
    assert json.loads((tmp_path / "out" / "config.json").read_text())["pad_token_id"] == 0
    # the user's folder is never written: byte-identical, nothing added; only the weights are shared (hard link)
    assert {f.name: f.read_bytes() for f in src.iterdir() if f.is_file()} == before
    for f in (tmp_path / "out").iterdir():
        if (src / f.name).is_file():
            assert f.samefile(src / f.name) == (f.suffix == ".safetensors"), f.name


def test_hub_kind_refuses_to_go_online_when_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    spec = ModelSpec("hub", "meta-llama/Meta-Llama-3-8B-Instruct", revision="8afb486c1db24fe5011ec46dfbe5b5dccdb575c2")
    with pytest.raises(ModelSourceError) as exc:
        materialize(spec, tmp_path / "base", "base")
    msg = str(exc.value)
    assert "models.base: meta-llama/Meta-Llama-3-8B-Instruct@8afb486c" in msg
    assert "HF_HUB_OFFLINE=1 forbids going online" in msg
    assert not (tmp_path / "base").exists()


@pytest.mark.slow
def test_embedded_models_materialize_and_answer_in_english(tmp_path: Path) -> None:
    card = materialize(ModelSpec("embedded", "smollm2-135m-instruct"), tmp_path / "base", "base")
    assert card["parameters"] == 134_515_008
    assert card["source_sha256"] == "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
    assert card["reload_max_abs_logit_diff"] == 0.0
    model, tok = load_chat_model(tmp_path / "base")
    msgs = [{"role": "user", "content": "What is the capital of France? Answer in one sentence."}]
    enc = tok.apply_chat_template(msgs, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=20, do_sample=False, pad_token_id=tok.pad_token_id)
    reply = tok.decode(out[0, enc["input_ids"].shape[1] :], skip_special_tokens=True)
    assert "Paris" in reply, reply
    enc_card = materialize(ModelSpec("embedded", "all-minilm-l6-v2"), tmp_path / "encoder", "encoder")
    assert enc_card["parameters"] == 22_713_728


def test_expert_base_alias_stands_for_the_base(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    from big5chat.models.loading import check_same_vocabulary, resolve_alias
    from big5chat.models.materialize import write_alias

    root = tmp_path / "models"
    shutil.copytree(tiny_models["base"], root / "base")
    write_alias(root / "expert_base", "base", "expert_base")
    assert resolve_alias(root / "expert_base") == root / "base"
    model, tok = load_chat_model(root / "expert_base")
    reference, _ = load_chat_model(root / "base")
    ids = torch.tensor([[1, 2, 3]])
    assert torch.equal(model(input_ids=ids).logits, reference(input_ids=ids).logits)
    check_same_vocabulary(tok, load_tokenizer(root / "base"), "same")
    with pytest.raises(ModelLoadError, match="the tokenizers differ"):
        check_same_vocabulary(tok, load_tokenizer(tiny_models["encoder"]), "models.expert_base vs models.base")


def test_device_and_quantization_are_refused_clearly_without_a_gpu(monkeypatch: pytest.MonkeyPatch, tiny_models: dict[str, Path]) -> None:
    from big5chat.models.loading import quantization_kwargs, stage_device

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    monkeypatch.delenv("BIG5CHAT_DEVICE", raising=False)
    assert stage_device() == "cpu"
    monkeypatch.setenv("BIG5CHAT_DEVICE", "cuda")
    with pytest.raises(ModelLoadError, match="runtime.device is 'cuda' but torch sees no GPU"):
        load_chat_model(tiny_models["base"])
    assert quantization_kwargs(None, "bfloat16", "cpu") == {}
    with pytest.raises(ModelLoadError, match="quantize=4bit needs a CUDA GPU"):
        quantization_kwargs("4bit", "bfloat16", "cpu")


def test_a_card_asking_for_4bit_is_refused_on_cpu(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    d = tmp_path / "base"
    shutil.copytree(tiny_models["base"], d)
    card = json.loads((d / "card.json").read_text())
    (d / "card.json").write_text(json.dumps({**card, "quantize": "4bit"}))
    with pytest.raises(ModelLoadError, match="needs a CUDA GPU"):
        load_chat_model(d, device="cpu")


def test_size_label_from_the_card(tmp_path: Path) -> None:
    from big5chat.psychometrics.report import size_label

    for n, want in ((134_515_008, "135M"), (8_030_261_248, "8B"), (70_553_706_496, "70B")):
        folder = tmp_path / want
        folder.mkdir()
        (folder / "card.json").write_text(json.dumps({"parameters": n}))
        assert size_label(folder) == want
    (tmp_path / "nocard").mkdir()
    assert size_label(tmp_path / "nocard") == "nocard"


def test_gpu_placement_one_card_a_process_block_or_a_named_error(tiny_models: dict[str, Path]) -> None:
    """An unquantized model goes on one GPU when it fits, over the process's own GPUs when not (device_map with
    per-GPU limits), and is refused with the memory it needs when even those cannot hold it; N processes on a node
    own disjoint blocks of its GPUs. (The placement is pure; a GPU machine runs it through load_causal_lm.)"""
    from big5chat.models.placement import PlacementError, place, process_gpus, weight_count

    assert process_gpus(0, 1, 8) == list(range(8)) and process_gpus(1, 2, 8) == [4, 5, 6, 7] and process_gpus(2, 4, 8) == [4, 5]
    with pytest.raises(PlacementError, match="at most one process per GPU"):
        process_gpus(0, 4, 2)
    gb = 10**9
    assert place(60 * gb, {0: 80 * gb, 1: 80 * gb}, "m").gpus == [0]
    spread = place(141 * gb, {2: 80 * gb, 3: 80 * gb}, "m")
    assert spread.spread and spread.from_pretrained_kwargs() == {"device_map": "auto", "max_memory": {2: 72 * gb, 3: 72 * gb}}
    with pytest.raises(PlacementError, match=r"needs 141\.0 GB .* 1 GPU\(s\) have 80\.0 GB free"):
        place(141 * gb, {0: 80 * gb}, "llama-70b (bfloat16)")
    from safetensors import safe_open

    with safe_open(str(tiny_models["base"] / "model.safetensors"), "pt") as f:
        stored = sum(f.get_tensor(k).numel() for k in f.keys())
    assert weight_count(tiny_models["base"]) == stored > 0


def test_loading_and_placement_point_one_way() -> None:
    """loading imports placement, and both take the dtypes and the policy's error from models.dtypes: no import
    cycle, not even inside a function."""
    import ast

    from big5chat.models import dtypes, loading, placement

    def imports(module) -> set[str]:  # type: ignore[no-untyped-def]
        tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
        return {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)} | {
            a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names
        }

    assert "big5chat.models.placement" in imports(loading) and "big5chat.models.dtypes" in imports(placement)
    assert not {m for m in imports(placement) | imports(dtypes) if m.startswith("big5chat.models.loading")}
    assert loading.ModelLoadError is dtypes.ModelLoadError
    assert dtypes.torch_dtype("bfloat16") is torch.bfloat16
    with pytest.raises(ModelLoadError, match="unknown dtype 'int8' \\(use one of float32, bfloat16, float16\\)"):
        dtypes.torch_dtype("int8")


def test_materialize_replaces_an_old_folder_and_its_alias(tmp_path: Path) -> None:
    """The folder is written beside the old one and swapped in whole (storage.write_dir): a file of an earlier
    model does not survive, and nothing is left beside it."""
    from big5chat.models.materialize import write_alias

    out = tmp_path / "encoder"
    out.mkdir()
    (out / "stale.safetensors").write_text("an earlier model")
    card = materialize(ModelSpec("tiny", "tiny-bert"), out, "encoder")
    assert not (out / "stale.safetensors").exists() and json.loads((out / "card.json").read_text()) == card
    assert list(card["files"]) == ["model.safetensors"] and [p.name for p in tmp_path.iterdir()] == ["encoder"]
    assert write_alias(out, "base", "expert_base") == {"role": "expert_base", "same_as": "base"}
    assert [p.name for p in out.iterdir()] == ["card.json"] and [p.name for p in tmp_path.iterdir()] == ["encoder"]
