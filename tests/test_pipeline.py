"""End-to-end on fresh copies of the project: the smoke DAG with the network blocked, no-op reruns, byte-identical
forced reruns, crash safety (SIGKILL during generation and training), failure visibility, bad params."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import yaml
from conftest import copy_project, project_env, run

NETBLOCK = Path(__file__).parent / "netblock"


def _blocked_env(log: Path) -> dict[str, str]:
    return project_env({"PYTHONPATH": str(NETBLOCK), "BIG5CHAT_NETLOG": str(log)})


def _compose(project: Path, profile: str, *overrides: str) -> None:
    proc = run(["python", "-m", "big5chat", "params", "--profile", profile, *overrides], project)
    assert proc.returncode == 0, proc.stderr


def _metrics(project: Path) -> dict[str, bytes]:
    return {p.relative_to(project).as_posix(): p.read_bytes() for p in sorted((project / "reports/metrics").rglob("*.json"))}


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    project = copy_project(tmp_path_factory.mktemp("smoke") / "project")
    _compose(project, "smoke")
    log = project.parent / "net.log"
    start = time.perf_counter()
    proc = run(["dvc", "repro"], project, env=_blocked_env(log))
    return SimpleNamespace(project=project, proc=proc, log=log, seconds=time.perf_counter() - start)


@pytest.mark.slow
def test_smoke_pipeline_runs_every_stage_offline(smoke: SimpleNamespace) -> None:
    p = smoke.project
    assert smoke.proc.returncode == 0, smoke.proc.stdout[-3000:] + smoke.proc.stderr[-3000:]
    assert not smoke.log.exists(), f"network connections attempted:\n{smoke.log.read_text()}"
    for out in ("data/models/base/model.safetensors", "data/models/encoder/card.json", "data/processed/posts.csv",
                "reports/figures/prepare_data/labels.png", "dvc.lock", "data/models/classifier/heads.safetensors",
                "reports/plots/train_classifier/loss.csv", "data/models/experts/openness/high/adapter_model.safetensors",
                "reports/eval_experts/completions.csv", "data/generated/big5chat.csv", "reports/eval_dialogues/baseline.csv",
                "data/models/sft/adapter_model.safetensors", "data/models/dpo/train_config.json",
                "reports/assess_personality/scores.csv", "reports/evaluate_reasoning/results.csv",
                "reports/figures/paper/05_questionnaire_summary.pdf", "reports/README.md", "data/models/steering/vectors.safetensors",
                "reports/assess_personality/acquiescence.csv", "reports/figures/paper/09_acquiescence.png"):  # fmt: skip
        assert (p / out).is_file(), out
    # method steer everywhere a method appears: questionnaires (with every method's gap split), reasoning, free replies
    assessed = json.loads((p / "reports/metrics/assess_personality.json").read_text())
    assert {"direct", "prompt_inst", "sft", "steer"} <= set(assessed["acquiescence"]) | {"direct"} and "steer" in assessed["summary"]
    assert {c["method"] for c in pd.read_csv(p / "reports/evaluate_reasoning/results.csv").to_dict("records")} == {"direct", "sft", "steer"}
    steered = json.loads((p / "reports/metrics/eval_dialogues.json").read_text())["steer"]
    assert steered["n"] == 10 and 0 <= steered["accuracy"]["overall"] <= 1 and "degenerate_rate" in steered
    ev = json.loads((p / "reports/metrics/eval_experts.json").read_text())
    assert ev["n_completions"] == 2 * sum(ev["n_prefixes"].values()) and set(ev["design"].values()) == {"per_level"}
    assert json.loads((p / "reports/metrics/generate_dialogues.json").read_text())["rows"] == 2 * 5 * 2
    assert "## The paper's findings, checked" in (p / "reports/README.md").read_text()
    # the human reference ships with the install (no ../shared beside the copy); mode agreement; behavioural validity
    assert assessed["human_n"] == 2796 and "psych::bfi" in assessed["human_source"] and assessed["frobenius"]["BFI"]["sft"] > 0
    agreement = assessed["mode_agreement"]
    n_items = yaml.safe_load((p / "params.yaml").read_text())["assess_personality"]["mode_agreement_items"]
    assert agreement["items"] == {"BFI": n_items} and set(agreement["by_method"]) == {"direct", "prompt_inst", "sft", "steer"}
    assert all(v["BFI"]["answers"] > 0 for v in agreement["by_method"].values())
    behaviour = json.loads((p / "reports/metrics/behavioural_validity.json").read_text())
    assert behaviour["scenarios"] == 1 and set(behaviour["accuracy"]) == set(behaviour["separation"]) == {"prompt_inst", "sft", "steer"}
    assert set(behaviour["validity"]["BFI"]) == {"prompt_inst", "sft", "steer", "all"}
    pv = assessed["prompt_variants"]
    assert list(pv["variants"]) == ["study", "plain_item", "statement_first"] and set(pv["spread"]) == {"direct", "prompt_inst"}
    for fig in ("10_behaviour", "11_mode_agreement", "12_prompt_variants"):
        assert (p / f"reports/figures/paper/{fig}.png").is_file(), fig
    page_text = (p / "reports/README.md").read_text()
    assert all(f"## {h}" in page_text for h in ("Behavioural validity", "Mode agreement", "Prompt variation"))
    assert '"image/png"' in (p / "reports/notebooks/make_figures.ipynb").read_text()  # figures inline in the executed notebooks
    print(f"smoke pipeline: {smoke.seconds:.0f} s")


@pytest.mark.slow
def test_second_repro_is_a_noop(smoke: SimpleNamespace) -> None:
    again = run(["dvc", "repro"], smoke.project)
    assert again.returncode == 0 and "Data and pipelines are up to date" in again.stdout, again.stdout


@pytest.mark.slow
def test_forced_rerun_gives_byte_identical_metrics(smoke: SimpleNamespace) -> None:
    before = _metrics(smoke.project)
    forced = run(["dvc", "repro", "--force"], smoke.project)
    assert forced.returncode == 0, forced.stderr[-3000:]
    after = _metrics(smoke.project)
    assert before.keys() == after.keys() and len(before) >= 10
    changed = [k for k in before if before[k] != after[k]]
    assert not changed, f"metrics differ between two runs: {changed}"


def _kill_when(cmd: list[str], project: Path, ready, timeout: float = 300):  # type: ignore[no-untyped-def]
    proc = subprocess.Popen(cmd, cwd=project, env=project_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None and not ready():
        time.sleep(0.2)
    assert proc.poll() is None, "the stage finished before it could be killed; make it slower"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return proc


@pytest.mark.slow
def test_generation_killed_midway_resumes_from_finished_rows(smoke: SimpleNamespace) -> None:
    p = smoke.project
    _compose(p, "smoke", "generate_dialogues.n_scenarios=8", "generate_dialogues.max_new_tokens=24", "generate_dialogues.batch_size=2")
    ckpt_dir = p / ".scratch/generate_dialogues"
    earlier = set(ckpt_dir.glob("*.jsonl")) if ckpt_dir.is_dir() else set()  # the smoke run's own checkpoint

    def some_rows() -> bool:
        files = set(ckpt_dir.glob("*.jsonl")) - earlier if ckpt_dir.is_dir() else set()
        return any(len(f.read_text().splitlines()) >= 20 for f in files)

    _kill_when(["dvc", "repro", "generate_dialogues"], p, some_rows)
    assert not (p / "data/generated/big5chat.csv").exists(), "a killed run must not leave an output that looks complete"
    status = run(["dvc", "status", "generate_dialogues"], p)
    assert "generate_dialogues" in status.stdout
    resumed = run(["dvc", "repro", "generate_dialogues"], p)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    done = [
        int(line.split(": ")[1].split(" of ")[0]) for line in resumed.stderr.splitlines() + resumed.stdout.splitlines() if "rows already done" in line
    ]
    assert done and done[0] >= 20, "the rerun must start from the finished rows"
    assert json.loads((p / "reports/metrics/generate_dialogues.json").read_text())["rows"] == 8 * 10


@pytest.mark.slow
def test_training_killed_midway_leaves_no_finished_output(smoke: SimpleNamespace) -> None:
    p = smoke.project
    _compose(p, "smoke", "train_sft.max_steps=2000", "train_sft.max_records=8")
    shutil.rmtree(p / ".scratch/trainer/sft", ignore_errors=True)  # the earlier runs' folder: wait for this run's training
    _kill_when(["dvc", "repro", "train_sft"], p, lambda: (p / ".scratch/trainer/sft").is_dir() and time.sleep(3) is None)
    assert not (p / "data/models/sft").exists(), "the adapter folder appears only once it is complete"
    _compose(p, "smoke")
    rerun = run(["dvc", "repro", "train_sft"], p)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert (p / "data/models/sft/adapter_model.safetensors").is_file()


@pytest.mark.slow
def test_failing_cell_leaves_its_executed_notebook(smoke: SimpleNamespace) -> None:
    p = smoke.project
    nb_path = p / "notebooks/eval_experts.ipynb"
    nb = json.loads(nb_path.read_text())
    nb["cells"].insert(3, {"cell_type": "code", "execution_count": None, "id": "boom", "metadata": {}, "outputs": [],
                           "source": ["raise RuntimeError('deliberate failure for the test')"]})  # fmt: skip
    nb_path.write_text(json.dumps(nb))
    proc = run(["dvc", "repro", "eval_experts"], p)
    assert proc.returncode != 0
    assert "FAILED in cell" in proc.stderr and "deliberate failure for the test" in proc.stderr
    executed = (p / "reports/notebooks/eval_experts.ipynb").read_text()
    assert "deliberate failure for the test" in executed and '"output_type": "error"' in executed
    subprocess.run(["git", "checkout", "--", "notebooks/eval_experts.ipynb"], cwd=p, check=True)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("files", "words"),
    [({"config.json": "{}", "pytorch_model.bin": ""}, "pickle-based weights can run code when loaded and are refused"),
     ({"pytorch_model.bin": ""}, "no config.json, so this is not a model folder")],
    ids=["pickle weights", "no config"],
)  # fmt: skip
def test_refused_model_folder_fails_its_stage_and_checkout_restores(smoke: SimpleNamespace, files: dict[str, str], words: str) -> None:
    """A model folder the loading policy refuses fails prepare_models with the reason. DVC removes a stage's outputs
    before running it, so the earlier models leave the workspace; dvc.lock is unchanged and `dvc checkout --force` brings
    them back byte for byte from the cache."""
    p = smoke.project
    _compose(p, "smoke")
    assert run(["dvc", "repro", "prepare_models"], p).returncode == 0
    before = {f.relative_to(p).as_posix(): f.read_bytes() for f in sorted((p / "data/models/base").rglob("*")) if f.is_file()}
    bad = p / "bad_model"
    shutil.rmtree(bad, ignore_errors=True)
    bad.mkdir()
    for name, text in files.items():
        (bad / name).write_text(text)
    _compose(p, "smoke", "models.base.kind=local", "models.base.name=bad_model")
    proc = run(["dvc", "repro", "prepare_models"], p)
    assert proc.returncode != 0
    assert words in proc.stderr + proc.stdout
    _compose(p, "smoke")
    # --force: the failed run left its executed notebook (with the error) where the earlier one was
    assert run(["dvc", "checkout", "--force", "prepare_models"], p).returncode == 0
    after = {f.relative_to(p).as_posix(): f.read_bytes() for f in sorted((p / "data/models/base").rglob("*")) if f.is_file()}
    assert after == before
    assert "Data and pipelines are up to date" in run(["dvc", "repro", "prepare_models"], p).stdout


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
    stages run the same code on tiny models in the smoke run above, also blocked; running them here on the
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


@pytest.mark.slow
def test_train_classifier_stage_on_a_real_level_labelled_corpus(shared_data: Path, tmp_path: Path) -> None:
    """The stage, not only train(): PsychGenerator's 0/1/2 level file as data.posts (median rows left out per trait)."""
    import pandas as pd

    level_file = shared_data / "psychgenerator_samples" / "posts_5trait_zlevels_998.csv"
    p = copy_project(tmp_path / "project")
    _compose(p, "smoke", f"data.posts.path={level_file}")
    proc = run(["dvc", "repro", "train_classifier"], p)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    manifest = json.loads((p / "data/processed/manifest.json").read_text())
    raw = pd.read_csv(level_file)
    for trait in ("openness", "conscientiousness", "extraversion", "agreeableness", "neuroticism"):
        col = raw[f"{trait[:3]}_z_label"]
        info = manifest["split"]["traits"][trait]
        assert info["dropped_middle"] == int((col == 1).sum())
        assert sum(info["counts"][s][lvl] for s in ("train", "test") for lvl in ("high", "low")) == int((col != 1).sum())
    metrics = json.loads((p / "reports/metrics/train_classifier.json").read_text())
    assert metrics["labels"] == "level" and metrics["heldout"]["n"] == 250
    for trait, m in metrics["test"]["traits"].items():
        assert 0 < m["n"] < metrics["test"]["n_test"] and 0.0 <= m["accuracy"] <= 1.0, (trait, m)
