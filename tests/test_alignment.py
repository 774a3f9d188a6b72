"""SFT records and DPO pairs, short SFT/DPO runs, and the 2-process (gloo) launch against a single process."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import torch

from big5chat.alignment.data import dpo_pairs, prompt_messages, sft_records, strip_actions, subsample
from big5chat.config import ConfigError, TrainDpoConfig, TrainSftConfig, to_dict

INSTR = "You are a helpful assistant with the following Big Five personality traits: Openness - high"


def _rows(spec: list[tuple[int, str, str, str]]) -> pd.DataFrame:
    """(original_index, trait, level, reply) rows in the official schema."""
    return pd.DataFrame([{"original_index": i, "trait": t, "level": lvl, "train_input": f"turn zero {i}", "train_output": reply}
                         for i, t, lvl, reply in spec])  # fmt: skip


@pytest.mark.parametrize(
    ("text", "clean", "n"),
    [
        ("*smiles warmly* Sure, let's go!", "Sure, let's go!", 1),
        ("I think (honestly) it's fine (mostly).", "I think it's fine.", 2),
        ("No actions here.", "No actions here.", 0),
        ("*waves*", "", 1),
    ],
)
def test_strip_actions(text: str, clean: str, n: int) -> None:
    assert strip_actions(text) == (clean, n)


def test_prompt_placement() -> None:
    assert prompt_messages(INSTR, "Hi!", "user") == [{"role": "user", "content": f"{INSTR}\nHi!"}]
    assert prompt_messages(INSTR, "Hi!", "system") == [{"role": "system", "content": INSTR}, {"role": "user", "content": "Hi!"}]


def test_sft_records_count_what_they_drop() -> None:
    df = _rows([(1, "openness", "high", "*grins* Let's try the new place!"), (1, "openness", "low", "(sigh)"),
                (2, "openness", "high", "Sounds fun."), (2, "openness", "low", "Same as always.")])  # fmt: skip
    built = sft_records(df, val_size=0.5, seed=0)
    assert built.counts["empty_reply"] == 1 and built.counts["actions_stripped_rows"] == 2
    assert built.counts["train"] + built.counts["eval"] == 3
    evals = {r["original_index"] for r in built.eval}
    trains = {r["original_index"] for r in built.train}
    assert evals.isdisjoint(trains), "a scenario sits on one side of the split only"
    rec = next(r for r in built.train + built.eval if r["original_index"] == 2 and r["level"] == "high")
    assert rec["prompt"] == [{"role": "user", "content": f"{INSTR}\nturn zero 2"}]
    assert rec["completion"] == [{"role": "assistant", "content": "Sounds fun."}]


def test_dpo_pairs_edge_cases() -> None:
    df = _rows([
        (1, "openness", "high", "Let's explore!"), (1, "openness", "low", "Let's stay home."),  # a good pair
        (2, "openness", "high", "Only one level here."),  # missing level
        (3, "openness", "high", "Same words."), (3, "openness", "low", "Same words."),  # duplicate replies
        (4, "openness", "high", ""), (4, "openness", "low", "Something."),  # empty reply
        (5, "openness", "high", "*beams* Same!"), (5, "openness", "low", "Same!"),  # equal once actions are stripped
        (6, "openness", "high", "Well,  sure -- why not?"), (6, "openness", "low", "Well sure, why not!"),  # only punctuation differs
    ])  # fmt: skip
    built = dpo_pairs(df, val_size=0.01, seed=0)
    counts = dict(built.counts)
    n_train, n_eval = counts.pop("train"), counts.pop("eval")
    assert counts == {"groups": 6, "missing_level": 1, "duplicate_replies": 3, "empty_reply": 1, "actions_stripped_spans": 1}
    assert n_train + n_eval == 2 and n_eval in (0, 2)  # one scenario's two pairs, on one side of the split
    pairs = built.train + built.eval
    assert len(pairs) == 2
    hi = next(p for p in pairs if p["level"] == "high")
    assert hi["chosen"][0]["content"] == "Let's explore!" and hi["rejected"][0]["content"] == "Let's stay home."
    assert hi["prompt"][0]["content"].startswith(INSTR)
    lo = next(p for p in pairs if p["level"] == "low")
    assert lo["chosen"][0]["content"] == "Let's stay home." and "Openness - low" in lo["prompt"][0]["content"]


def test_subsample_is_balanced_and_seeded() -> None:
    recs = [{"trait": t, "level": lvl, "i": i} for i in range(10) for t in ("openness", "neuroticism") for lvl in ("high", "low")]
    a, b = subsample(recs, 8, 1), subsample(recs, 8, 1)
    assert a == b and len(a) == 8
    assert pd.Series([f"{r['trait']}{r['level']}" for r in a]).value_counts().tolist() == [2, 2, 2, 2]


def _params(cls, **over):  # type: ignore[no-untyped-def]
    return to_dict(cls(batch_size=2, max_steps=2, learning_rate=5e-3, warmup_steps=0, scheduler="constant", max_length=96, **over))


def _run_file(tmp: Path, kind: str, model: Path, records: list[dict], params: dict) -> Path:
    from big5chat import storage
    from big5chat.training_run import RunFile, write_run_file

    storage.write_jsonl(tmp / "train.jsonl", records)
    storage.write_jsonl(tmp / "eval.jsonl", records[:2])
    return write_run_file(tmp / "run.json", RunFile(kind=kind, model_dir=str(model), out_dir=str(tmp / "adapter"),  # type: ignore[arg-type]
                          train_file=str(tmp / "train.jsonl"), eval_file=str(tmp / "eval.jsonl"), curve_file=str(tmp / "curve.csv"),
                          result_file=str(tmp / "result.json"), params=params, run_name=f"test_{kind}_{tmp.name}"))  # fmt: skip


def _lora_b(folder: Path) -> list[torch.Tensor]:
    from safetensors.torch import load_file

    return [v for k, v in sorted(load_file(str(folder / "adapter_model.safetensors")).items()) if "lora_B" in k]


def _dialogues() -> pd.DataFrame:
    spec = []
    for i in range(4):
        spec += [
            (i, "openness", "high", f"Let's try something new and strange, number {i}!"),
            (i, "openness", "low", f"I'd rather keep things as usual {i}."),
        ]
    return _rows(spec)


@pytest.mark.parametrize("kind", ["sft", "dpo"])
def test_two_steps_log_a_loss_and_change_the_adapter(kind: str, tiny_models: dict[str, Path], tmp_path: Path) -> None:
    from big5chat.training_run import execute

    built = (sft_records if kind == "sft" else dpo_pairs)(_dialogues(), val_size=0.25, seed=0)
    run = _run_file(tmp_path, kind, tiny_models["base"], built.train, _params(TrainSftConfig if kind == "sft" else TrainDpoConfig))
    result = execute(run)
    assert result["steps"] == 2
    curve = pd.read_csv(tmp_path / "curve.csv")
    assert list(curve["step"]) == [1, 2] and curve["loss"].notna().all()
    assert any(torch.count_nonzero(b) > 0 for b in _lora_b(tmp_path / "adapter")), "LoRA B starts at zero"
    assert json.loads((tmp_path / "adapter" / "train_config.json").read_text())["kind"] == kind
    if kind == "dpo":
        assert "eval_rewards/accuracies" in result["eval"] and "eval_rewards/margins" in result["eval"]


@pytest.mark.slow
def test_two_cpu_processes_match_one(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    """The launcher's 2-process command (torchrun, gloo on CPU; batch 2 each) against 1 process with batch 4.

    With exactly 4 training records every step sees all of them in both set-ups, whatever the samplers' order,
    so the two runs take the same gradient steps (tokens averaged across devices)."""
    built = sft_records(_dialogues(), val_size=0.25, seed=0)
    built.train = built.train[:4]
    single_dir, multi_dir = tmp_path / "single", tmp_path / "multi"
    single_dir.mkdir(), multi_dir.mkdir()
    single = _run_file(single_dir, "sft", tiny_models["base"], built.train, to_dict(TrainSftConfig(
        batch_size=4, max_steps=2, learning_rate=5e-3, warmup_steps=0, scheduler="constant", max_length=96, bf16=False)))  # fmt: skip
    multi = _run_file(multi_dir, "sft", tiny_models["base"], built.train, to_dict(TrainSftConfig(
        batch_size=2, max_steps=2, learning_rate=5e-3, warmup_steps=0, scheduler="constant", max_length=96, bf16=False)))  # fmt: skip
    from big5chat.config import ComputeConfig
    from big5chat.training_run import execute, launch_command

    execute(single)
    cmd = launch_command(multi, ComputeConfig(launcher="torchrun", num_processes=2), "sft")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((multi_dir / "result.json").read_text())["world_size"] == 2
    for a, b in zip(_lora_b(single_dir / "adapter"), _lora_b(multi_dir / "adapter")):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-5)


def test_expert_run_file_full_fine_tune_changes_every_weight_it_trains(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    """train_experts goes through the same run file and `python -m big5chat train-expert` (so `accelerate launch`
    can run the study's full fine-tune)."""
    from safetensors.torch import load_file

    from big5chat.cli import main
    from big5chat.config import TrainExpertsConfig
    from big5chat.experts.data import to_chat

    records = [{"instruction": "Help me complete the sentence with certain Big Five Personality: Openness - high",
                "input": "I love to try", "output": f"new things every day, number {i}"} for i in range(6)]  # fmt: skip
    params = to_dict(
        TrainExpertsConfig(
            method="full", batch_size=2, learning_rate=5e-3, warmup_steps=0, scheduler="constant", max_length=64, epochs=1.0, bf16=False
        )
    )
    run = _run_file(tmp_path, "expert", tiny_models["base"], [to_chat(r) for r in records], params)
    assert main(["train-sft", "--config", str(run)]) == 2, "the command must match the run file's kind"
    assert main(["train-expert", "--config", str(run)]) == 0
    assert json.loads((tmp_path / "result.json").read_text())["steps"] == 3
    out = tmp_path / "adapter"
    assert not (out / "adapter_config.json").exists(), "method=full writes a whole model, not an adapter"
    before = load_file(str(next(tiny_models["base"].glob("*.safetensors"))))
    after = load_file(str(next(out.glob("*.safetensors"))))
    changed = [k for k in before if k in after and not torch.equal(before[k].float(), after[k].float())]
    assert len(changed) > len(before) // 2
    assert json.loads((out / "train_config.json").read_text())["method"] == "full"


def _training_arguments_before(p, run_name: str) -> dict:  # type: ignore[no-untyped-def]
    """What training._common_args and sft_train/dpo_train gave TRL field by field before the params went through
    training.trl_config: the adapters stay the same only if TRL's config stays the same."""
    from big5chat.training import scratch_dir

    return dict(output_dir=str(scratch_dir(run_name)), per_device_train_batch_size=p.batch_size, gradient_accumulation_steps=p.grad_accum,
                num_train_epochs=p.epochs, max_steps=getattr(p, "max_steps", -1), learning_rate=p.learning_rate, lr_scheduler_type=p.scheduler,
                warmup_steps=p.warmup_steps, logging_steps=1, save_strategy="no", report_to=[], bf16=p.bf16, use_cpu=True,
                gradient_checkpointing=False, seed=p.seed, data_seed=p.seed, dataloader_num_workers=0, disable_tqdm=False, eval_strategy="no",
                max_length=p.max_length)  # fmt: skip


_CUSTOM = dict(learning_rate=3e-4, epochs=1.5, batch_size=3, grad_accum=2, max_length=77, scheduler="linear", warmup_steps=3, bf16=False, seed=5)


@pytest.mark.parametrize("custom", [False, True], ids=["defaults", "custom"])
@pytest.mark.parametrize("kind", ["sft", "dpo", "expert"])
def test_trl_config_is_the_training_arguments_of_before(kind: str, custom: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    from trl import DPOConfig, SFTConfig

    from big5chat.config import TrainExpertsConfig
    from big5chat.training import trl_config

    monkeypatch.setenv("BIG5CHAT_DEVICE", "cpu")
    cls = {"sft": TrainSftConfig, "dpo": TrainDpoConfig, "expert": TrainExpertsConfig}[kind]
    p = cls(**_CUSTOM, **({"max_steps": 7} if kind != "expert" else {})) if custom else cls()  # type: ignore[arg-type]
    before = _training_arguments_before(p, f"test_trl_config_{kind}")
    expected = DPOConfig(**before, beta=p.beta, loss_type=[p.loss_type]) if kind == "dpo" else SFTConfig(**before, completion_only_loss=True)
    trl_kind = "dpo" if kind == "dpo" else "sft"
    got = trl_config(trl_kind, p, f"test_trl_config_{kind}")
    assert type(got) is type(expected) and got.to_dict() == expected.to_dict()
    assert trl_config(trl_kind, p, f"test_trl_config_{kind}", per_device_train_batch_size=2).per_device_train_batch_size == 2, (
        "overrides: TRL's fields"
    )


def test_run_file_errors_name_the_bad_key(tmp_path: Path) -> None:
    from big5chat.training_run import RunFile, execute, read_run_file, write_run_file

    fields = dict(model_dir="m", out_dir="o", train_file="t", eval_file="e", curve_file="c", result_file="r")
    good = write_run_file(tmp_path / "good.json", RunFile(kind="sft", params={}, **fields))
    assert read_run_file(good) == RunFile(kind="sft", params={}, **fields)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"kind": "ppo", "params": {}, "epochs": 3, **{k: v for k, v in fields.items() if k != "curve_file"}}))
    with pytest.raises(ConfigError) as exc:
        read_run_file(bad)
    problems = exc.value.problems
    assert any(p.startswith("kind: ") and "'ppo'" in p for p in problems), problems
    assert "curve_file: missing key" in problems and any(p.startswith("epochs: unknown key") for p in problems)
    assert str(bad) in str(exc.value)
    wrong_params = write_run_file(tmp_path / "params.json", RunFile(kind="dpo", params={"beta": "high"}, **fields))
    with pytest.raises(ConfigError, match=r"train_dpo\.beta") as exc:
        execute(wrong_params)
    assert "params.json: params" in str(exc.value)
