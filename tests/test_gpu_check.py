"""The pieces of bench/gpu_check.sh that run anywhere: same-shape random models and the run record's GPU peak."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from big5chat import paths, runtime
from big5chat.models.loading import load_causal_lm, load_tokenizer
from big5chat.models.registry import TINY


def _shape_model():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("shape_model", paths.ROOT / "bench" / "shape_model.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _config_only(src: Path, dest: Path) -> Path:
    """What travels to a GPU box: config and tokenizer files, no weights."""
    dest.mkdir()
    for f in src.iterdir():
        if f.is_file() and not f.name.endswith(".safetensors"):
            shutil.copy2(f, dest / f.name)
    return dest


def test_same_shape_model_has_the_config_and_tokenizer_of_its_source(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    shape_model = _shape_model()
    src = _config_only(tiny_models["base"], tmp_path / "base-config")
    out = shape_model.build(src, tmp_path / "base-shape")
    want = json.loads((tiny_models["base"] / "config.json").read_text())
    got = json.loads((out / "config.json").read_text())
    for key in ("hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "vocab_size", "intermediate_size"):
        assert got[key] == want[key], key
    model = load_causal_lm(out)
    original = load_causal_lm(tiny_models["base"])
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in original.parameters())
    tok = load_tokenizer(out, require_chat_template=True, causal=True)
    assert tok.get_vocab() == load_tokenizer(tiny_models["base"], causal=True).get_vocab()
    assert not (tmp_path / "base-shape.partial").exists()


def test_tiny_shape_keeps_the_vocabulary_and_takes_the_tiny_sizes(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    shape_model = _shape_model()
    src = _config_only(tiny_models["encoder"], tmp_path / "encoder-config")
    out = shape_model.build(src, tmp_path / "encoder-tiny", tiny=True)
    got = json.loads((out / "config.json").read_text())
    want = json.loads((tiny_models["encoder"] / "config.json").read_text())
    assert got["vocab_size"] == want["vocab_size"]
    assert (got["hidden_size"], got["num_hidden_layers"]) == (TINY["tiny-bert"].hidden, TINY["tiny-bert"].layers)
    assert got["architectures"] == ["BertModel"]


def test_shape_model_names_a_missing_config(tmp_path: Path) -> None:
    shape_model = _shape_model()
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit, match="config.json: not found"):
        shape_model.build(tmp_path / "empty", tmp_path / "out")


def test_run_record_has_no_gpu_peak_without_cuda(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(paths, "REPORTS", tmp_path)
    runtime.write_run_record("probe", {"wall_s": 1.0})
    rec = json.loads((tmp_path / "runs" / "probe.json").read_text())
    assert rec["wall_s"] == 1.0 and rec["peak_rss_mib"] > 0
    assert "peak_gpu_mib" not in rec  # CPU torch here: CUDA never initialised
    assert runtime.peak_gpu_mib() is None


def test_gpu_check_script_parses() -> None:
    subprocess.run(["bash", "-n", str(paths.ROOT / "bench" / "gpu_check.sh")], check=True)
