"""The generate_dialogues stage: the released rows, the clean-up counts and metrics, how the workers start, and run()
on a released CSV and on the tiny model (generated, then resumed from the checkpoint)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from big5chat import paths
from big5chat.config import ComputeConfig, DataSource, GenerateDialoguesConfig, RuntimeConfig
from big5chat.data.sampling import per_group
from big5chat.generation import dialogues as dlg
from big5chat.stages import generate_dialogues as stage

TRAITS = ["openness", "neuroticism"]


def _official(n_scenarios: int, traits: list[str]) -> pd.DataFrame:
    """A dataset in the official schema: every scenario at high and at low for each trait."""
    rows = [{"original_index": 10 + i, "env_idx": i, "trait": t, "level": lvl, "relation": "xIntent", "head": "h", "tail": "t", "literal": "l",
             "narrative": f"Ann helps Bo move, day {i}.", "personx": "Ann", "persony": "Bo", "train_instruction": f"{t} - {lvl}",
             "train_input": f"Thanks for coming on day {i}!", "train_output": f"Happy to {lvl} {t} {i}" if i % 3 else " "}
            for t in traits for i in range(n_scenarios) for lvl in ("high", "low")]  # fmt: skip
    return pd.DataFrame(rows, columns=list(dlg.OFFICIAL_COLUMNS))


def test_released_rows_keep_the_traits_and_a_seeded_sample_per_arm() -> None:
    released = _official(6, ["openness", "extraversion", "neuroticism"]).assign(extra="x")
    every = stage.released_rows(released, TRAITS, None, seed=1)
    assert list(every.columns) == list(dlg.OFFICIAL_COLUMNS) and len(every) == 24 and set(every["trait"]) == set(TRAITS)
    assert list(every.index) == list(range(24))
    some = stage.released_rows(released, TRAITS, 2, seed=1)
    assert some.groupby(["trait", "level"]).size().tolist() == [2, 2, 2, 2]
    expected = per_group(released[released["trait"].isin(TRAITS)], ["trait", "level"], 2, 1)[list(dlg.OFFICIAL_COLUMNS)]
    assert some.equals(expected.reset_index(drop=True))  # the seeded draw of data.sampling, in the file's order
    assert not some.equals(stage.released_rows(released, TRAITS, 2, seed=2))


def test_postprocess_counts_sum_the_flags_of_the_generated_rows() -> None:
    records = [{"pp_after_colon": a, "pp_quotes": q} for a, q in ((True, False), (True, True), (False, False))]
    assert stage.postprocess_counts(records) == {"after_colon": 2, "quotes": 1}
    assert stage.postprocess_counts([]) == {"after_colon": 0, "quotes": 0}


def test_first_scenario_and_dataset_metrics() -> None:
    frame = _official(3, TRAITS)
    first = stage.first_scenario(frame)
    assert set(first["original_index"]) == {10} and len(first) == 4
    metrics = stage.dataset_metrics("generate", frame, {"after_colon": 1, "quotes": 0})
    assert list(metrics) == ["source", "rows", "scenarios", "postprocess_changed", "empty_replies", "reply_words_mean"]  # the file's order
    assert metrics["rows"] == 12 and metrics["scenarios"] == 3 and metrics["empty_replies"] == 4  # scenario 0's replies are blank
    assert metrics["reply_words_mean"] == round((8 * 5 + 4 * 0) / 12, 2)  # "Happy to {level} {trait} {i}": 5 words


def test_the_workers_start_with_the_launcher_and_the_stages_processes() -> None:
    cfg = _cfg(GenerateDialoguesConfig(processes=4)) | {"compute.launcher": "torchrun"}
    assert stage.compute_of(cfg) == ComputeConfig(launcher="torchrun", accelerate_config="configs/accelerate/ddp.yaml", num_processes=4)


def _cfg(g: GenerateDialoguesConfig) -> dict:
    return {"traits": TRAITS, "generate_dialogues": g, "runtime": RuntimeConfig(), "compute.launcher": "none",
            "compute.accelerate_config": "configs/accelerate/ddp.yaml"}  # fmt: skip


def _paths(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, sub in {"DATA": "data", "MODELS": "data/models", "PROCESSED": "data/processed", "SCRATCH": ".scratch", "REPORTS": "reports",
                      "METRICS": "reports/metrics"}.items():  # fmt: skip
        monkeypatch.setattr(paths, name, root / sub)


def test_run_reads_a_released_csv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    released = tmp_path / "released.csv"
    _official(5, ["openness", "extraversion", "neuroticism"]).to_csv(released, index=False)
    _paths(tmp_path, monkeypatch)
    result = stage.run(_cfg(GenerateDialoguesConfig(source="released", released=DataSource(path=str(released)), released_per_arm=3)))
    assert result.counts == {"rows": 12, "released_rows": 30, "resumed": 0, "generated": 0}
    written = pd.read_csv(tmp_path / "data/generated/big5chat.csv", keep_default_na=False)
    assert list(written.columns) == list(dlg.OFFICIAL_COLUMNS) and len(written) == 12 and set(written["trait"]) == set(TRAITS)
    assert result.metrics == json.loads((tmp_path / "reports/metrics/generate_dialogues.json").read_text())
    assert result.metrics["source"] == "released" and result.metrics["postprocess_changed"] == {}
    record = json.loads((tmp_path / "reports/runs/generate_dialogues.json").read_text())
    assert record["source"] == "released" and "load_s" in record and record["rows"] == result.counts
    assert result.turn0 == written["train_input"].iloc[0] and list(result.first_replies.columns) == ["trait", "level", "train_output"]


@pytest.fixture
def tiny_project(tiny_models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Three scenarios, the tiny model as the base and per-level LoRA experts of one trait."""
    import torch
    from peft import LoraConfig, get_peft_model

    from big5chat.models.loading import load_causal_lm

    shutil.copytree(paths.DATA / "prompts", tmp_path / "data/prompts")
    _paths(tmp_path, monkeypatch)
    scenarios = [{"original_index": 20 + i, "head": "h", "relation": "xIntent", "tail": "t", "literal": "l", "narrative": f"Ann helps Bo on day {i}.",
                  "PersonX": "Ann", "PersonY": "Bo"} for i in range(3)]  # fmt: skip
    (tmp_path / "data/processed").mkdir(parents=True)
    (tmp_path / "data/processed/scenarios.jsonl").write_text("".join(json.dumps(s) + "\n" for s in scenarios))
    models = tmp_path / "data/models"
    shutil.copytree(tiny_models["base"], models / "base")
    (models / "expert_base").mkdir()
    (models / "expert_base/card.json").write_text(json.dumps({"same_as": "base"}))
    for k, lvl in enumerate(("high", "low")):
        torch.manual_seed(k)
        lora = LoraConfig(r=2, target_modules="all-linear", init_lora_weights=False)
        get_peft_model(load_causal_lm(models / "base"), lora).save_pretrained(str(models / "experts/openness" / lvl))
    return tmp_path


def test_run_generates_the_dataset_and_a_rerun_resumes_it(tiny_project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    g = GenerateDialoguesConfig(n_scenarios=2, max_new_tokens=4, turn0_max_new_tokens=4, batch_size=2, dtype="float32", warmup=1)
    cfg = _cfg(g) | {"traits": ["openness"]}
    first = stage.run(cfg)
    assert "2 scenarios x 1 traits x 2 levels" in capsys.readouterr().out
    assert first.counts == {"rows": 4, "resumed": 0, "generated": 6, "processes": 1, "shards": 1}  # 2 turn 0s + 2 x 2 replies
    out = tiny_project / "data/generated/big5chat.csv"
    frame = pd.read_csv(out, keep_default_na=False)
    assert list(frame.columns) == list(dlg.OFFICIAL_COLUMNS) and list(frame["original_index"]) == [20, 20, 21, 21]
    assert list(frame["level"]) == ["high", "low", "high", "low"] and frame["train_input"].nunique() == 2
    assert first.record["generated_tokens"] > 0 and first.record["prefix_reuse"] is not None
    assert first.metrics["scenarios"] == 2 and set(first.metrics["postprocess_changed"]) == {"after_colon", "quotes"}
    assert len(first.first_replies) == 2 and first.turn0 == frame["train_input"].iloc[0]
    csv_bytes = out.read_bytes()
    again = stage.run(cfg)  # every row in the checkpoint: nothing is generated, the same file is written
    assert again.counts == {"rows": 4, "resumed": 6, "generated": 0, "processes": 1, "shards": 1}
    assert out.read_bytes() == csv_bytes and again.metrics == first.metrics
