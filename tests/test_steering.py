"""Activation steering (method steer): vectors, hooks that leave no trace, the acquiescence split, the registry."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from big5chat.methods import METHODS, method_model
from big5chat.models.loading import load_chat_model
from big5chat.psychometrics.conditions import conditions, messages
from big5chat.psychometrics.scoring import acquiescence_split
from big5chat.reasoning.run import cells
from big5chat.steering.hooks import decoder_layers, steered
from big5chat.steering.replies import steered_replies
from big5chat.steering.vectors import TraitVectors, contrastive_sets, labelled_texts, learn_vectors, source_texts

HIGH = ["I threw a party for thirty friends last night and danced till three.", "Met five new people at the gym, we're grabbing drinks!",
        "Organised the office karaoke again, everyone sang.", "Called my whole family to plan the reunion weekend."]  # fmt: skip
LOW = ["Stayed home alone with a book, the quiet was perfect.", "Skipped the party, I needed a night to myself.",
       "I ate lunch in my car to avoid the break room.", "Turned my phone off for the weekend and read."]  # fmt: skip


@pytest.fixture(scope="module")
def tiny(tiny_models: dict[str, Path]):  # type: ignore[no-untyped-def]
    model, tok = load_chat_model(tiny_models["base"])
    return model, tok


@pytest.fixture(scope="module")
def vectors(tiny) -> TraitVectors:  # type: ignore[no-untyped-def]
    model, tok = tiny
    return learn_vectors(model, tok, {"extraversion": (HIGH, LOW)}, [0, 1], batch_size=3)


def _logits(model, tok, text: str = "Hello there, how are you today?") -> torch.Tensor:  # type: ignore[no-untyped-def]
    with torch.no_grad():
        return model(**tok(text, return_tensors="pt")).logits


def test_multiplier_zero_is_exact_and_hooks_leave_no_trace(tiny, vectors: TraitVectors) -> None:  # type: ignore[no-untyped-def]
    model, tok = tiny
    before = _logits(model, tok)
    with steered(model, vectors.deltas("extraversion", "high", 0.0)):
        assert torch.equal(_logits(model, tok), before)
    with steered(model, vectors.deltas("extraversion", "high", 0.5)):
        moved = _logits(model, tok)
    assert not torch.allclose(moved, before)
    assert torch.equal(_logits(model, tok), before)  # removed after a steered call
    assert all(not layer._forward_hooks for layer in decoder_layers(model))
    with pytest.raises(RuntimeError), steered(model, vectors.deltas("extraversion", "low", 0.5)):
        raise RuntimeError("a failing block")
    assert torch.equal(_logits(model, tok), before)  # removed when the block raises too


def test_high_and_low_push_opposite_ways(tiny, vectors: TraitVectors) -> None:  # type: ignore[no-untyped-def]
    model, _ = tiny
    hi, lo = vectors.deltas("extraversion", "high", 0.2), vectors.deltas("extraversion", "low", 0.2)
    for layer in vectors.layers:
        assert torch.allclose(hi[layer], -lo[layer])
        assert float(hi[layer].norm()) == pytest.approx(0.2 * float(vectors.norms[vectors.layers.index(layer)]), rel=1e-5)
    with pytest.raises(ValueError, match="out of range"), steered(model, {99: hi[0]}):
        pass


def test_vectors_are_deterministic_for_a_seed_and_round_trip(tiny, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    model, tok = tiny
    posts = pd.DataFrame({"message": HIGH + LOW + ["neutral text"], "split": "train",
                          "extraversion_level": ["high"] * 4 + ["low"] * 4 + [""]})  # fmt: skip
    texts = labelled_texts(posts, "corpus", ["extraversion"])
    assert len(texts) == 8  # the unlabelled post is left out
    replies = pd.DataFrame({"trait": ["extraversion", "openness"], "level": ["high", "low"], "train_output": ["Let's all go!", "No."]})
    both = source_texts("both", ["extraversion"], corpus=lambda: posts, dialogues=lambda: replies)
    assert len(both) == 9 and both["text"].iloc[-1] == "Let's all go!"
    with pytest.raises(ValueError, match="unknown steering source"):
        source_texts("posts", ["extraversion"], corpus=lambda: posts, dialogues=lambda: replies)
    a, b = (contrastive_sets(texts, ["extraversion"], 3, seed=7) for _ in range(2))
    assert a == b and len(a["extraversion"][0]) == 3
    va, vb = (learn_vectors(model, tok, a, [1], batch_size=2) for _ in range(2))
    assert torch.equal(va.directions["extraversion"], vb.directions["extraversion"]) and torch.equal(va.norms, vb.norms)
    va.save(tmp_path / "v.safetensors")
    assert [p.name for p in tmp_path.iterdir()] == ["v.safetensors"]  # written under a temporary name, then renamed
    back = TraitVectors.load(tmp_path / "v.safetensors")
    assert back.layers == [1] and torch.equal(back.directions["extraversion"], va.directions["extraversion"])
    with pytest.raises(FileNotFoundError, match="learn_steering"):
        TraitVectors.load(tmp_path / "missing.safetensors")


def test_per_row_steering_equals_one_arm_at_a_time(tiny, vectors: TraitVectors) -> None:  # type: ignore[no-untyped-def]
    model, tok = tiny
    convs = [[{"role": "user", "content": f"Say something about day {i}."}] for i in range(4)]
    arms = [("extraversion", "high"), ("extraversion", "low"), ("extraversion", "high"), ("extraversion", "low")]
    mixed = steered_replies(model, tok, convs, arms, vectors, 0.5, max_new_tokens=6, batch_size=4)
    for level in ("high", "low"):
        idx = [i for i, a in enumerate(arms) if a[1] == level]
        alone = steered_replies(model, tok, [convs[i] for i in idx], [arms[i] for i in idx], vectors, 0.5, max_new_tokens=6, batch_size=4)
        assert alone == [mixed[i] for i in idx]
    from big5chat.generation.chat import generate_chat

    assert steered_replies(model, tok, convs, arms, vectors, 0.0, max_new_tokens=6) == generate_chat(model, tok, convs, max_new_tokens=6)


def test_method_model_steers_only_inside_the_block(tiny, vectors: TraitVectors) -> None:  # type: ignore[no-untyped-def]
    model, tok = tiny
    before = _logits(model, tok)
    with method_model(model, "steer", "extraversion", "high", vectors=vectors, multiplier=0.5):
        assert not torch.allclose(_logits(model, tok), before)
    with method_model(model, "steer", vectors=vectors, multiplier=0.5):  # unconditioned: the base model
        assert torch.equal(_logits(model, tok), before)
    assert torch.equal(_logits(model, tok), before)
    with pytest.raises(ValueError, match="trait vectors"), method_model(model, "steer", "extraversion", "high"):
        pass


def test_registry_drives_conditions_and_cells() -> None:
    assert set(METHODS) == {"direct", "prompt_inst", "prompt_demo", "sft", "dpo", "steer"}
    conds = conditions(["direct", "steer", "sft"], ["openness"])
    assert [c.name for c in conds] == ["direct:none:none", "steer:openness:high", "steer:openness:low", "sft:none:none",
                                       "sft:openness:high", "sft:openness:low"]  # fmt: skip
    assert messages(conds[1], "Rate it.", "Item.") == [{"role": "user", "content": "Rate it.\n Item"}]  # steer: no instruction
    grid = cells(["direct", "steer"], [("openness", "high")])
    assert [(c.method, c.trait, c.system_instruction) for c in grid] == [("direct", "", None), ("steer", "openness", None)]


def test_acquiescence_split() -> None:
    sign = np.array([1, 1, -1, 1, -1, 1, 1, -1], float)
    dom = np.array([1, 1, 1, 0, 0, 0, 0, 0], bool)
    # every item moves +0.4 (agree more): the keyed gap is 0.4 x mean(sign) = 0.133, all of it acquiescence
    out = acquiescence_split(np.full(8, 0.4), dom, sign, n_boot=200, seed=0)
    assert out["common"] == pytest.approx(0.4) and out["gap"] == pytest.approx(0.4 / 3) and out["specific"] == pytest.approx(0.0, abs=1e-12)
    # a trait-specific move: the domain's items move with their keying, the others not at all
    delta = np.where(dom, 0.6 * sign, 0.0)
    out = acquiescence_split(delta, dom, sign, n_boot=200, seed=0)
    assert out["gap"] == pytest.approx(0.6)
    assert out["common"] == pytest.approx(0.6 / 8) and out["specific"] == pytest.approx(0.6 - 0.6 / 8 / 3)
    assert out["specific_lo"] <= out["specific"] <= out["specific_hi"] and out["n_items"] == 3
    nan = acquiescence_split(np.array([np.nan, 0.1]), np.array([True, False]), np.array([1.0, 1.0]))
    assert nan["n_items"] == 0 and np.isnan(nan["gap"])


def test_steer_sweep_rows_and_page_section() -> None:
    from big5chat.reporting.page import steering_section
    from big5chat.reporting.sweeps import steer_sweep_rows

    def run(name: str, mult: float, acc: float, specific: float) -> dict:  # type: ignore[type-arg]
        acq = {"steer": {"BFI": {"openness": {"gap": 0.3, "common": 0.2, "specific": specific, "specific_lo": specific - 0.05}}}}
        metrics = {"reports/metrics/assess_personality.json": {"data": {"acquiescence": acq}},
                   "reports/metrics/eval_dialogues.json": {"data": {"steer": {"multiplier": mult, "n": 40, "accuracy": {"overall": acc},
                                                                                "distinct_2": 0.5, "degenerate_rate": 0.1},
                                                                      "prompting": {"accuracy": {"overall": 0.5}, "distinct_2": 0.6, "degenerate_rate": 0.0}}},
                   "reports/metrics/evaluate_reasoning.json": {"data": {"domains": {"steer:openness:high": {"math": 0.2, "social": 0.4}},
                                                                          "direct_domains": {"math": 0.5}}}}  # fmt: skip
        return {"name": name, "data": {"params": {"params.yaml": {"data": {"steer": {"multiplier": mult, "layers": [10]}}}}, "metrics": metrics}}

    shown = [{"rev": "workspace", "data": {"params": {}, "metrics": {}}, "experiments": [run("b", 0.3, 0.75, 0.1), run("a", 0.0, 0.5, 0.0)]}]
    rows = steer_sweep_rows(shown)
    assert [r["multiplier"] for r in rows] == [0.0, 0.3]
    assert rows[1]["reply_accuracy"] == 0.75 and rows[1]["BFI_specific"] == pytest.approx(0.1) and rows[1]["reasoning"] == pytest.approx(0.3)
    page = "\n".join(steering_section({k.split("/")[-1][:-5]: v["data"] for k, v in run("b", 0.3, 0.75, 0.1)["data"]["metrics"].items()}))
    assert "**75.0%**" in page and "prompting on the same scenarios: 50.0%" in page and "**met**" in page
    assert "| Steer | BFI | +0.300 | 0.200 | +0.100 | 1 of 1 |" in page
    page = "\n".join(steering_section({"eval_dialogues": run("c", 0.3, 0.6, 0.0)["data"]["metrics"]["reports/metrics/eval_dialogues.json"]["data"]}))
    assert "**not met**" in page


def test_the_steer_sweep_overrides_give_valid_params(tmp_path: Path) -> None:
    """`make steer-sweep` runs `dvc exp run -S key=value ...` with the Makefile's STEER_SWEEP_ARGS: composed onto the
    default params the way DVC composes them, those overrides must validate (a method list narrowed in one section
    only is refused)."""
    import re
    import shlex

    from big5chat import paths, profiles
    from big5chat.config import load_params

    makefile = (paths.ROOT / "Makefile").read_text(encoding="utf-8")
    args = re.search(r"^STEER_SWEEP_ARGS \?=((?:.*\\\n)*.*)$", makefile, re.MULTILINE)
    assert args, "no STEER_SWEEP_ARGS in the Makefile"
    words = shlex.split(args.group(1).replace("\\\n", " "))
    overrides = [w for k, w in enumerate(words) if k and words[k - 1] == "-S"]
    assert len(overrides) == words.count("-S") >= 2
    out = profiles.compose("default", [*overrides, "steer.multiplier=0.15", "steer.layers=[10]"], tmp_path / "params.yaml")
    params = load_params(out, check_paths=False)
    assert params.assess_personality.methods == ["direct", "steer"] and params.steer.multiplier == 0.15
