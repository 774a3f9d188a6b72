"""End-to-end: `dvc repro` of every existing stage on a fresh copy of the project, with the network blocked."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml

from conftest import project_env, run

NETBLOCK = Path(__file__).parent / "netblock"


def _blocked_env(log: Path) -> dict[str, str]:
    return project_env({"PYTHONPATH": str(NETBLOCK), "BIG5CHAT_NETLOG": str(log)})


def _compose(project: Path, profile: str) -> None:
    proc = run(["python", "-m", "big5chat", "params", "--profile", profile], project)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.slow
def test_smoke_pipeline_runs_offline_and_is_a_noop_the_second_time(project_copy: Path, tmp_path: Path) -> None:
    _compose(project_copy, "smoke")
    log = tmp_path / "net.log"
    proc = run(["dvc", "repro"], project_copy, env=_blocked_env(log))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert not log.exists(), f"network connections attempted:\n{log.read_text()}"
    for out in ("data/models/base/model.safetensors", "data/models/encoder/card.json", "data/processed/posts.csv",
                "data/processed/scenarios.jsonl", "reports/notebooks/prepare_models.ipynb",
                "reports/notebooks/prepare_data.ipynb", "reports/figures/prepare_data/z_distributions.png", "dvc.lock",
                "data/models/classifier/heads.safetensors", "reports/plots/train_classifier/loss.csv",
                "data/models/experts/openness/adapter_model.safetensors", "data/models/experts/neuroticism/train_config.json",
                "reports/plots/train_experts/extraversion.csv", "reports/eval_experts/completions.csv",
                "reports/figures/eval_experts/expert_vs_prompting.png"):  # fmt: skip
        assert (project_copy / out).is_file(), out
    metrics = json.loads((project_copy / "reports/metrics/prepare_data.json").read_text())
    assert metrics["scenarios"]["sampled"] == 8
    assert json.loads((project_copy / "reports/metrics/prepare_models.json").read_text())["base"]["kind"] == "tiny"
    ev = json.loads((project_copy / "reports/metrics/eval_experts.json").read_text())
    assert ev["n_completions"] == 2 * 5 * ev["n_prefixes"] and 0 <= ev["accuracy"]["overall"]["expert"] <= 1
    start = time.perf_counter()
    again = run(["dvc", "repro"], project_copy)
    assert again.returncode == 0 and "Data and pipelines are up to date" in again.stdout, again.stdout
    assert time.perf_counter() - start < 30  # the 3-second target is measured in the closing note, not asserted here


@pytest.mark.slow
def test_a_typo_in_params_fails_before_any_work(project_copy: Path) -> None:
    params = project_copy / "params.yaml"
    data = yaml.safe_load(params.read_text())
    data["prepare_data"]["splt"] = "median"
    params.write_text(yaml.safe_dump(data))
    proc = run(["dvc", "repro", "prepare_data"], project_copy)
    assert proc.returncode != 0
    assert "prepare_data.splt: unknown key" in proc.stderr
    assert not (project_copy / "reports/notebooks/prepare_data.ipynb").exists()


@pytest.mark.slow
def test_default_pipeline_opens_no_network_connection(project_copy: Path, tmp_path: Path) -> None:
    """The default profile's own code paths (embedded wheels, sample data) with the network blocked. The later
    stages run the same code on tiny models in the smoke test above, also blocked; running them here on the
    135M model would take the whole pipeline's 30 minutes."""
    log = tmp_path / "net.log"
    proc = run(["dvc", "repro", "prepare_models", "prepare_data"], project_copy, env=_blocked_env(log))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert not log.exists(), f"network connections attempted:\n{log.read_text()}"
    card = json.loads((project_copy / "data/models/base/card.json").read_text())
    assert card["name"] == "smollm2-135m-instruct" and card["parameters"] == 134_515_008


def test_the_network_block_catches_a_connection(tmp_path: Path) -> None:
    log = tmp_path / "net.log"
    code = "import socket\ntry:\n    socket.create_connection(('93.184.216.34', 80), timeout=2)\nexcept OSError as e:\n    print(e)"
    proc = run(["python", "-c", code], tmp_path, env=_blocked_env(log))
    assert "blocked by the big5chat test" in proc.stdout
    assert "93.184.216.34" in log.read_text()
