"""Dialogue generation: the study's prompts and clean-up, resumable job runs, the official schema, text metrics."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from big5chat.data.schemas import DIALOGUE_COLUMNS
from big5chat.evaluation.text_metrics import distinct_n, per_trait_accuracy, reply_stats
from big5chat.generation import dialogues as dlg
from big5chat.generation.dialogue_prompts import Scenario, is_refusal, personality, postprocess, turn0_prompt, turn1_prompt

SCEN = [
    {
        "original_index": 11,
        "head": "h",
        "relation": "xIntent",
        "tail": "t",
        "literal": "l",
        "narrative": "Ann helps Bo move.",
        "PersonX": "Ann",
        "PersonY": "Bo",
    },
    {
        "original_index": 12,
        "head": "h2",
        "relation": "xReact",
        "tail": "t2",
        "literal": "l2",
        "narrative": "Cy cooks for Di.",
        "PersonX": "Cy",
        "PersonY": "Di",
    },
]


def test_prompts_follow_the_study_template() -> None:
    s = Scenario("Ann helps Bo move.", "Ann", "Bo")
    p0 = turn0_prompt(s)
    assert p0.startswith("Imagine you are Ann, your task is to act/speak as Ann would.\n")
    assert "Scenario: Ann helps Bo move.\nParticipants: Ann and Bo\n```\n.\n\nConversation starts:\nYou are at Turn #0.\n\n" in p0
    assert p0.endswith("Please generate your argument directly and concisely within 50 words:")
    p1 = turn1_prompt(s, "Thanks for coming!", "E", "low")
    assert "Bo's big five personality description: The person has low extraversion.\nYou are an introversive person" in p1
    assert 'Turn #0: Ann said: "Thanks for coming!"\n\nYou are at Turn #1.' in p1
    assert personality("openness", "high").startswith("The person has high openness.\nYou are an open person")


@pytest.mark.parametrize(
    ("raw", "clean", "changed"),
    [
        ('Here is my reply:\n\n"Sure, let\'s go!"', "Sure, let's go!", {"after_colon": True, "quotes": True}),
        ("Plain answer.", "Plain answer.", {"after_colon": False, "quotes": False}),
        ("a:\n\nb:\n\nlast part", "last part", {"after_colon": True, "quotes": False}),
        ("“Curly quotes”", "Curly quotes", {"after_colon": False, "quotes": True}),
        ('"unbalanced', '"unbalanced', {"after_colon": False, "quotes": False}),
    ],
)
def test_postprocess(raw: str, clean: str, changed: dict) -> None:
    assert postprocess(raw) == (clean, changed)


def test_refusals_and_text_metrics() -> None:
    assert is_refusal("I'm sorry, but I can't help with that.") and not is_refusal("Sorry I'm late, traffic!")
    assert distinct_n(["a b a b"], 1) == 0.5 and distinct_n(["a b a b"], 2) == pytest.approx(2 / 3)
    stats = reply_stats(["Hello there friend", "", "As an AI I cannot"])
    assert stats["n"] == 3 and stats["empty_rate"] == pytest.approx(1 / 3, abs=1e-4) and stats["refusal_rate"] == pytest.approx(1 / 3, abs=1e-4)
    frame = pd.DataFrame({"trait": ["openness"] * 4, "level": ["high", "high", "low", "low"], "score": [0.7, 0.4, 0.3, 0.6]})
    assert per_trait_accuracy(frame) == {"openness": 0.5, "overall": 0.5}


def _fake_generator(calls: list[str], fail_after: int | None = None):  # type: ignore[no-untyped-def]
    def gen(batch: list[dlg.Job]) -> list[str]:
        if fail_after is not None and len(calls) >= fail_after:
            raise KeyboardInterrupt("killed")
        calls.extend(j.key for j in batch)
        return [f'Reply:\n\n"text for {j.key}"' for j in batch]

    return gen


def test_interrupted_run_resumes_without_regenerating(tmp_path: Path) -> None:
    jobs = [dlg.Job(s["original_index"]) for s in SCEN] + dlg.turn1_jobs(SCEN, ["openness", "neuroticism"])
    ckpt = dlg.Checkpoint(tmp_path / "ckpt.jsonl")
    first: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        dlg.run_jobs(jobs, ckpt.load(), 3, _fake_generator(first, fail_after=6), ckpt)
    assert len(first) == 6
    with open(ckpt.path, "a") as f:  # a kill in the middle of a write leaves a torn line
        f.write('{"key": "12|neuro')
    second: list[str] = []
    done = dlg.run_jobs(jobs, ckpt.load(), 3, _fake_generator(second), ckpt)
    assert set(first).isdisjoint(second) and len(first) + len(second) == len(jobs)
    assert done["11|openness|high"]["text"] == "text for 11|openness|high" and done["11|openness|high"]["pp_quotes"]
    rows = dlg.official_rows(SCEN, ["openness", "neuroticism"], done)
    frame = pd.DataFrame(rows)
    assert tuple(frame.columns) == DIALOGUE_COLUMNS and len(frame) == 8
    assert list(frame["env_idx"][:4]) == [0, 0, 1, 1]
    r = frame.iloc[0]
    assert r["train_instruction"] == "You are a helpful assistant with the following Big Five personality traits: Openness - high"
    assert r["train_input"] == "text for 11||" and r["persony"] == "Bo"


def test_checkpoint_name_depends_on_every_setting() -> None:
    a = dlg.checkpoint_key({"alpha": 0.5, "models": "x"})
    assert a == dlg.checkpoint_key({"models": "x", "alpha": 0.5})
    assert a != dlg.checkpoint_key({"alpha": 1.0, "models": "x"})


def test_generator_end_to_end_on_tiny_models(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    from peft import LoraConfig, get_peft_model

    from big5chat.generation.dexperts import Sampling, Steering
    from big5chat.models.loading import load_causal_lm

    expert_dir = tmp_path / "experts" / "openness"
    get_peft_model(load_causal_lm(tiny_models["base"]), LoraConfig(r=2, target_modules="all-linear", init_lora_weights=False)).save_pretrained(
        str(expert_dir)
    )
    for mixed in (False, True):
        gen = dlg.DialogueGenerator(tiny_models["base"], {"openness": expert_dir}, SCEN, dtype="float32", steering=Steering(alpha=0.5, warmup=1),
                                    sampling=Sampling(), max_new_tokens=5, turn0_max_new_tokens=4, seed=0, mixed_adapters=mixed)  # fmt: skip
        ckpt = dlg.Checkpoint(tmp_path / f"c{mixed}.jsonl")
        done = dlg.run_jobs([dlg.Job(s["original_index"]) for s in SCEN], {}, 2, gen.turn0_batch, ckpt)
        gen.turn0 = {s["original_index"]: done[dlg.Job(s["original_index"]).key]["text"] for s in SCEN}
        done = dlg.run_jobs(dlg.turn1_jobs(SCEN, ["openness"]), done, 2, gen.turn1_batch, ckpt)
        assert len(done) == 6 and gen.generated_tokens > 0
        if not mixed:
            separate = {k: v["text"] for k, v in done.items()}
        else:
            assert {k: v["text"] for k, v in done.items()} == separate


def test_generator_with_one_expert_per_level(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    """per_level experts: each level written by its own adapter, the other level's adapter as the anti-expert;
    merged copies and one mixed-adapter PEFT model give the same text, for both combination rules."""
    from peft import LoraConfig, get_peft_model

    from big5chat.generation.dexperts import Sampling, Steering
    from big5chat.models.loading import load_causal_lm

    trait_dir = tmp_path / "experts" / "openness"
    for k, lvl in enumerate(("high", "low")):
        import torch

        torch.manual_seed(k)
        get_peft_model(load_causal_lm(tiny_models["base"]), LoraConfig(r=2, target_modules="all-linear", init_lora_weights=False)).save_pretrained(
            str(trait_dir / lvl)
        )
    jobs = dlg.turn1_jobs(SCEN, ["openness"])
    groups = dlg.turn1_groups(jobs, {"openness": trait_dir})
    assert [{j.level for j in g} for g in groups] == [{"high"}, {"low"}]
    texts = {}
    for rule in ("study", "dexperts"):
        for mixed, reuse in ((False, False), (True, False), (False, True), (True, True)):
            gen = dlg.DialogueGenerator(tiny_models["base"], {"openness": trait_dir}, SCEN, dtype="float32", steering=Steering(rule, alpha=2.0, warmup=0),
                                        sampling=Sampling(), max_new_tokens=5, turn0_max_new_tokens=4, seed=0, mixed_adapters=mixed,
                                        prefix_reuse=reuse)  # fmt: skip
            ckpt = dlg.Checkpoint(tmp_path / f"{rule}{mixed}{reuse}.jsonl")
            done = dlg.run_jobs([dlg.Job(s["original_index"]) for s in SCEN], {}, 2, gen.turn0_batch, ckpt)
            gen.turn0 = {s["original_index"]: done[dlg.Job(s["original_index"]).key]["text"] for s in SCEN}
            with pytest.raises(ValueError, match="one level"):
                gen.turn1_batch([j for j in jobs if j.original_index == SCEN[0]["original_index"]])
            for g in groups:
                done = dlg.run_jobs(g, done, 2, gen.turn1_batch, ckpt)
            texts[rule, mixed, reuse] = {k: v["raw"] for k, v in done.items()}
            if reuse:  # the low batch reuses the prefixes the high batch computed (up to "The person has ")
                stats = gen.prefix_stats()
                assert stats is not None and stats["hits"] >= len(SCEN) and stats["reused_tokens"] > 0
        assert texts[rule, False, False] == texts[rule, True, False] == texts[rule, False, True] == texts[rule, True, True]
    assert texts["study", False, False] != texts["dexperts", False, False]


def test_sweep_rows_from_exp_show_json() -> None:
    from big5chat.reporting.sweeps import collect

    def run(name: str, alpha: float, acc: float) -> dict:
        return {"name": name, "data": {"params": {"params.yaml": {"data": {"generate_dialogues": {"alpha": alpha}}}},
                                       "metrics": {"reports/metrics/eval_dialogues.json": {"data": {"dexperts": {"accuracy": {"overall": acc}}}}}}}  # fmt: skip

    shown = [
        {"rev": "workspace", **run("workspace", 0.5, 0.6)},
        {"rev": "abc", "experiments": [{"revs": [run("exp-1", 1.0, 0.7), run("exp-2", 2.0, 0.4)]}]},
    ]
    rows = collect(shown, "generate_dialogues.alpha", "dexperts.accuracy.overall")
    assert sorted((r["param"], r["metric"]) for r in rows) == [(0.5, 0.6), (1.0, 0.7), (2.0, 0.4)]


def test_read_study_alpha_sweep(tmp_path: Path) -> None:
    from big5chat.evaluation.study_sweep import read_study_alpha_sweep

    lines = [{"turn": 0, "personality": "-1 -1 -1 -1 -1", "response": "turn zero"},
             {"turn": 1, "personality": "-1 0 -1 -1 -1", "response": "I made a plan."},
             {"turn": 1, "personality": "-1 -1 -1 -1 1", "response": "All fine."}]  # fmt: skip
    (tmp_path / "alpha_0.5_trait_c.jsonl").write_text("\n".join(json.dumps(r) for r in lines) + "\n", encoding="utf-8")
    got = read_study_alpha_sweep(tmp_path)
    assert got[["alpha", "trait", "level", "text"]].values.tolist() == [[0.5, "conscientiousness", "high", "I made a plan."],
                                                                          [0.5, "neuroticism", "low", "All fine."]]  # fmt: skip
    (tmp_path / "alpha_1_trait_o.jsonl").write_text(json.dumps({"turn": 1, "personality": "0 0 -1 -1 -1", "response": "x"}), encoding="utf-8")
    with pytest.raises(ValueError, match=r"alpha_1_trait_o.jsonl:1: personality"):
        read_study_alpha_sweep(tmp_path)


def test_prompting_baseline_replies_on_tiny_models(tiny_models: dict[str, Path]) -> None:
    """The prompting-only baseline (eval_dialogues): the DExperts base prompt of each row with the trait description,
    the base model alone; greedy replies do not depend on the batch size or on prefix reuse."""
    from big5chat.generation.baseline import baseline_prompts, prompting_replies
    from big5chat.generation.chat import render
    from big5chat.generation.dexperts import Sampling, generate
    from big5chat.models.loading import load_chat_model

    base, tok = load_chat_model(tiny_models["base"])
    scenarios = {s["original_index"]: s for s in SCEN}
    rows = pd.DataFrame([{"original_index": s["original_index"], "trait": t, "level": lvl, "train_input": f"Hi from {s['PersonX']}"}
                         for s in SCEN for t in ("openness", "neuroticism") for lvl in ("high", "low")])  # fmt: skip
    prompts = baseline_prompts(tok, rows, scenarios)
    assert prompts[5] == render(tok, [{"role": "user", "content": turn1_prompt(dlg.scenario_of(SCEN[1]), "Hi from Cy", "openness", "low")}])
    groups = rows["original_index"].tolist()
    kw = {"sampling": Sampling(), "max_new_tokens": 5, "seed": 0}
    replies = prompting_replies(base, tok, prompts, groups, batch_size=3, prefix_reuse=True, **kw)
    assert replies == prompting_replies(base, tok, prompts, groups, batch_size=8, prefix_reuse=False, **kw)
    one = generate(tok, (base, prompts[2:3]), max_new_tokens=5, seed=0)[0]
    assert len(replies) == 8 and replies[2] == postprocess(tok.decode(one, skip_special_tokens=True))[0]
