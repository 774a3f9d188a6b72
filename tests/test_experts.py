"""Expert generators: the record builder's edge cases, a short SFT run, loss masking, the accuracy table."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch

from big5chat.experts.data import build_expert_records, split_post, to_chat
from big5chat.experts.evaluation import accuracy_table, completion_jobs
from big5chat.prompts import expert_instruction


def _posts(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    """rows of (message, openness level, ope_z)."""
    return pd.DataFrame(
        [{"message_id": f"p{i}", "message": m, "split": "train", "openness_level": lvl, "ope_z": z} for i, (m, lvl, z) in enumerate(rows)]
    )


def _args(run_name: str, max_steps: int = 2):  # type: ignore[no-untyped-def]
    """TRL's SFTConfig of a short expert-like run (training.trl_config, as the stages build it)."""
    from big5chat.config import TrainSftConfig
    from big5chat.training import trl_config

    p = TrainSftConfig(learning_rate=1e-2, epochs=1, batch_size=2, grad_accum=1, max_length=64, scheduler="constant", warmup_steps=0,
                       bf16=False, seed=0, max_steps=max_steps)  # fmt: skip
    return trl_config("sft", p, run_name)


def test_instruction_is_the_studys() -> None:
    assert expert_instruction("O", "high") == "Help me complete the sentence with certain Big Five Personality: Openness - high"
    assert expert_instruction("neuroticism", "Low") == "Help me complete the sentence with certain Big Five Personality: Neuroticism - low"


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("one two three four five", None),  # exactly five words: dropped
        ("one two three four five six", ("one two three four five", "six")),
        ("  spaced   out\twords  here  and there too ", ("spaced out words here and", "there too")),
        ("Café 🎉 naïve façade — déjà vu again!", ("Café 🎉 naïve façade —", "déjà vu again!")),
        ("", None),
    ],
)
def test_split_post(message: str, expected: tuple[str, str] | None) -> None:
    assert split_post(message) == expected


def test_builder_drops_and_counts() -> None:
    posts = _posts([
        ("I love wandering through new galleries and cities", "high", 1.2),
        ("short post here ok", "high", 1.0),  # too short
        ("", "low", -1.0),  # empty: too short
        ("the middle of the distribution says nothing much", "", 0.0),  # tercile middle: no level
        ("same old route to work every single day please", "low", -0.2),  # below min_abs_z
        ("same diner same booth same order every Saturday morning", "low", -1.1),
    ])  # fmt: skip
    out = build_expert_records(posts, "openness", min_abs_z=0.5)
    assert out.counts == {"posts": 6, "no_level": 1, "below_min_abs_z": 1, "too_short": 2, "subsampled_out": 0,
                          "records": 2, "high": 1, "low": 1}  # fmt: skip
    rec = out.records[0]
    assert rec["input"] == "I love wandering through new" and rec["output"] == "galleries and cities"
    chat = to_chat(rec)
    assert chat["prompt"][0]["content"] == expert_instruction("openness", "high") + "\nI love wandering through new"
    assert chat["completion"] == [{"role": "assistant", "content": "galleries and cities"}]


def test_builder_subsample_is_balanced_and_seeded() -> None:
    rows = [(f"a long enough post number {i} for the test", "high" if i % 3 else "low", 1.0) for i in range(30)]
    a = build_expert_records(_posts(rows), "openness", max_records=10, seed=1)
    b = build_expert_records(_posts(rows), "openness", max_records=10, seed=1)
    c = build_expert_records(_posts(rows), "openness", max_records=10, seed=2)
    assert a.counts["high"] == a.counts["low"] == 5 and a.counts["subsampled_out"] == 20
    assert a.records == b.records and a.records != c.records


def test_two_sft_steps_log_a_loss_and_change_the_adapter(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    from safetensors.torch import load_file

    from big5chat.config import LoraParams
    from big5chat.training import sft_train

    posts = _posts([(f"I keep finding strange and wonderful ideas in book {i}", "high", 1.0) for i in range(4)])
    chats = [to_chat(r) for r in build_expert_records(posts, "openness").records]
    run = sft_train(tiny_models["base"], chats, tmp_path / "expert", _args("t"), lora=LoraParams())
    assert run["steps"] == 2 and [r["step"] for r in run["curve"].rows] == [1, 2]
    assert all(r["loss"] > 0 for r in run["curve"].rows)
    weights = load_file(str(tmp_path / "expert" / "adapter_model.safetensors"))
    lora_b = [v for k, v in weights.items() if "lora_B" in k]
    assert lora_b and any(torch.count_nonzero(v) > 0 for v in lora_b), "LoRA B starts at zero; training must move it"
    assert not (tmp_path / "expert.partial").exists()


def test_lora_on_the_upper_share_adapts_only_the_top_layers(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    """lora.upper_share = 0.5 on a 2-layer model: the saved adapter holds LoRA weights for the top layer only, and
    training still moves them; a model without a layer count is an error that says so."""
    import json

    from safetensors.torch import load_file

    from big5chat.config import LoraParams
    from big5chat.training import lora_config, sft_train

    n_layers = json.loads((tiny_models["base"] / "config.json").read_text())["num_hidden_layers"]
    assert n_layers == 2
    posts = _posts([(f"I keep finding strange and wonderful ideas in book {i}", "high", 1.0) for i in range(4)])
    chats = [to_chat(r) for r in build_expert_records(posts, "openness").records]
    sft_train(tiny_models["base"], chats, tmp_path / "upper", _args("u"), lora=LoraParams(upper_share=0.5))
    weights = load_file(str(tmp_path / "upper" / "adapter_model.safetensors"))
    assert {int(k.split(".layers.")[1].split(".")[0]) for k in weights} == {1}
    assert any(torch.count_nonzero(v) > 0 for k, v in weights.items() if "lora_B" in k)
    with pytest.raises(ValueError, match="needs the model's decoder layer count"):
        lora_config(LoraParams(upper_share=0.5), model=None)


def test_the_model_loss_trainer_trains_like_trl(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    """On CPU sft_train takes the loss from the model's own forward (faster here); in float32 it logs the same losses
    and learns the same adapter as TRL's fused LM head."""
    from safetensors.torch import load_file

    from big5chat.config import LoraParams
    from big5chat.training import sft_train

    posts = _posts([(f"Tried a new recipe from a country I never visited, number {i}, and loved it", "high", 1.0) for i in range(6)])
    chats = [to_chat(r) for r in build_expert_records(posts, "openness").records]
    runs = {flag: sft_train(tiny_models["base"], chats, tmp_path / str(flag), _args(f"m{flag}", max_steps=3), lora=LoraParams(), model_loss=flag)
            for flag in (True, False)}  # fmt: skip
    assert type(runs[True]["trainer"]).__name__ == "ModelLossSFTTrainer" and type(runs[False]["trainer"]).__name__ == "SFTTrainer"
    losses = {flag: [r["loss"] for r in run["curve"].rows] for flag, run in runs.items()}
    assert len(losses[True]) == 3 and losses[True][0] > 0
    assert losses[True] == pytest.approx(losses[False], rel=1e-4)
    ours, theirs = (load_file(str(tmp_path / str(flag) / "adapter_model.safetensors")) for flag in (True, False))
    assert ours.keys() == theirs.keys() and all(torch.allclose(ours[k], theirs[k], atol=1e-5) for k in ours)
    assert any(torch.count_nonzero(v) > 0 for k, v in ours.items() if "lora_B" in k)


def test_loss_covers_only_the_completion(tiny_models: dict[str, Path]) -> None:
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from big5chat.models.loading import load_chat_model

    model, tok = load_chat_model(tiny_models["base"], padding_side="right")
    chat = {"prompt": [{"role": "user", "content": "Help me complete the sentence\nI went to the"}],
            "completion": [{"role": "assistant", "content": "market today"}]}  # fmt: skip
    args = SFTConfig(output_dir="/tmp/_sft_mask", report_to=[], use_cpu=True, completion_only_loss=True, max_length=64)
    trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list([chat]), processing_class=tok)
    batch = trainer.data_collator([trainer.train_dataset[0]])
    labels = batch["labels"][0]
    kept = tok.decode(labels[labels != -100])
    assert kept.startswith("market today") and "Help me" not in kept and "<|im_start|>assistant" not in kept


def test_accuracy_table_on_a_known_case() -> None:
    jobs = completion_jobs(["I went to", "We had a"], ["openness", "neuroticism"])
    assert len(jobs) == 8
    jobs["expert_score"] = [0.9, 0.8, 0.2, 0.6, 0.7, 0.1, 0.3, 0.4]  # O high x2, O low x2, N high x2, N low x2
    jobs["prompting_score"] = 0.5  # never above 0.5: "low" everywhere
    t = accuracy_table(jobs, ["expert", "prompting"]).set_index("trait")
    assert t.loc["openness", "expert"] == 0.75 and t.loc["neuroticism", "expert"] == 0.75
    assert t.loc["overall", "expert"] == 0.75 and t.loc["overall", "prompting"] == 0.5


def test_paired_separation_on_a_known_case() -> None:
    from big5chat.experts.evaluation import paired_separation

    jobs = completion_jobs(["a b", "c d"], ["openness"])  # high a, high c, low a, low c
    jobs["expert_score"] = [0.6, 0.5, 0.4, 0.5]
    t = paired_separation(jobs, ["expert"]).iloc[0]
    assert t["n_pairs"] == 2 and t["expert_diff"] == pytest.approx(0.1) and t["expert_paired"] == pytest.approx(0.75)


def test_builder_on_a_level_corpus_has_no_z_to_filter() -> None:
    posts = pd.DataFrame([
        {"message_id": "p1", "message": "tried a stew from a cookbook written in 1740", "split": "train", "openness_level": "high"},
        {"message_id": "p2", "message": "same sandwich at the same desk since 2015 and proud", "split": "train", "openness_level": "low"},
        {"message_id": "p3", "message": "a post that is about something else entirely today", "split": "train", "openness_level": ""},
    ])  # fmt: skip
    out = build_expert_records(posts, "openness", min_abs_z=0.5)
    assert out.counts["records"] == 2 and out.counts["no_level"] == 1 and out.counts["below_min_abs_z"] == 0


def test_expert_layout_of_both_designs(tmp_path: Path) -> None:
    from big5chat.experts.layout import adapter_folders, adapter_name, anti_expert_dir, design_of, expert_dir, fingerprint

    single, per = tmp_path / "single" / "openness", tmp_path / "per" / "openness"
    single.mkdir(parents=True)
    (single / "adapter_config.json").write_text("{}")
    (single / "adapter_model.safetensors").write_bytes(b"s")
    for lvl in ("high", "low"):
        (per / lvl).mkdir(parents=True)
        (per / lvl / "adapter_config.json").write_text("{}")
        (per / lvl / "adapter_model.safetensors").write_bytes(lvl.encode())
    assert design_of(single) == "single" and design_of(per) == "per_level"
    assert expert_dir(single, "high") == expert_dir(single, "low") == anti_expert_dir(single, "high") == single
    assert expert_dir(per, "high") == per / "high" and anti_expert_dir(per, "high") == per / "low"
    assert adapter_folders({"openness": single}) == {"openness": single}
    assert adapter_folders({"openness": per}) == {"openness_high": per / "high", "openness_low": per / "low"}
    assert adapter_name("openness", "low", "per_level") == "openness_low" and adapter_name("openness", "low", "single") == "openness"
    before = fingerprint(per)
    (per / "low" / "adapter_model.safetensors").write_bytes(b"changed")
    assert fingerprint(per) != before


def test_prefixes_come_from_posts_labelled_for_the_trait_half_per_level() -> None:
    from big5chat.experts.evaluation import choose_prefixes

    rows = [{"message": f"high post number {i} goes on and on", "split": "test", "openness_level": "high"} for i in range(6)]
    rows += [{"message": f"low post number {i} goes on and on", "split": "test", "openness_level": "low"} for i in range(6)]
    rows += [{"message": f"unlabelled post {i} for openness here", "split": "test", "openness_level": ""} for i in range(6)]
    rows += [{"message": f"training high post {i} goes on and on", "split": "train", "openness_level": "high"} for i in range(6)]
    posts = pd.DataFrame(rows)
    got = choose_prefixes(posts, "openness", 4, seed=0)
    assert len(got) == 4 and sum(p.startswith("high post") for p in got) == 2 and sum(p.startswith("low post") for p in got) == 2
    assert all(level == p.split()[0] for p, level in got.items())  # each prefix knows the level of its post
    assert got == choose_prefixes(posts, "openness", 4, seed=0)
    jobs = completion_jobs({"openness": got, "neuroticism": ["x y"]}, ["openness", "neuroticism"])
    assert len(jobs) == 4 * 2 + 2 and set(jobs[jobs["trait"] == "neuroticism"]["prefix"]) == {"x y"}
    o = jobs[jobs["trait"] == "openness"]
    assert (o["prefix_level"] == o["prefix"].str.split().str[0]).all() and (jobs[jobs["trait"] == "neuroticism"]["prefix_level"] == "").all()


def test_by_prefix_lean_splits_the_comparison_by_the_prefix_own_level() -> None:
    """The study's protocol (a prefix completed at the level of its post) on one side, the turned-around prefixes on
    the other; prefixes of unknown origin count in neither."""
    from big5chat.evaluation.text_metrics import level_hits
    from big5chat.experts.evaluation import by_prefix_lean

    jobs = completion_jobs({"openness": {"hi one two": "high", "lo one two": "low"}, "neuroticism": ["x y"]}, ["openness", "neuroticism"])
    # rows: O high (hi, lo), O low (hi, lo), N high (x y), N low (x y)
    jobs["expert_score"] = [0.9, 0.8, 0.6, 0.2, 0.9, 0.1]  # O: all hit but (low, prefix hi); N never counts
    jobs["prompting_score"] = [0.9, 0.1, 0.9, 0.1, 0.9, 0.1]  # follows the prefix: hits only where it leans right
    got = by_prefix_lean(jobs, {m: level_hits(jobs[f"{m}_score"], jobs["level"]) for m in ("expert", "prompting")})
    same, other = got["target_level"], got["other_level"]
    assert same["n"] == 2 and same["expert"]["accuracy"] == 1.0 and same["prompting"]["accuracy"] == 1.0
    assert other["n"] == 2 and other["expert"]["accuracy"] == 0.5 and other["prompting"]["accuracy"] == 0.0
    assert other["expert_only"] == 1 and other["prompting_only"] == 0 and other["mcnemar_p"] == 1.0


def test_training_loads_the_model_in_its_cards_dtype(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    """A bf16 model card (models.base.dtype: bfloat16) leads to bf16 base weights in training; a stage's own dtype
    still overrides it."""
    import json
    import shutil

    from big5chat.config import LoraParams
    from big5chat.models.loading import card_dtype
    from big5chat.training import sft_train

    base = tmp_path / "base"
    shutil.copytree(tiny_models["base"], base)
    card = json.loads((base / "card.json").read_text()) if (base / "card.json").is_file() else {}
    (base / "card.json").write_text(json.dumps(card | {"dtype": "bfloat16"}))
    assert card_dtype(base) == "bfloat16"
    posts = _posts([(f"I keep finding strange and wonderful ideas in book {i}", "high", 1.0) for i in range(4)])
    chats = [to_chat(r) for r in build_expert_records(posts, "openness").records]
    for dtype, want in ((None, torch.bfloat16), ("float32", torch.float32)):
        run = sft_train(base, chats, tmp_path / f"expert_{dtype}", _args("t", max_steps=1), lora=LoraParams(), dtype=dtype)
        frozen = [p.dtype for p in run["trainer"].model.parameters() if not p.requires_grad]
        assert frozen and set(frozen) == {want}, dtype
