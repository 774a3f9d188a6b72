"""params.yaml validation: every bad key is named before any work starts; profiles compose."""

from __future__ import annotations

import copy
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from big5chat import paths, profiles
from big5chat.config import ConfigError, load_params, stage_config, stage_value, to_dict


def _params_data() -> dict:
    return yaml.safe_load(paths.PARAMS_FILE.read_text(encoding="utf-8"))


def _problems(tmp_path: Path, mutate) -> list[str]:  # type: ignore[no-untyped-def]
    data = copy.deepcopy(_params_data())
    mutate(data)
    f = tmp_path / "params.yaml"
    f.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        load_params(f)
    return exc.value.problems


def test_committed_params_validate() -> None:
    params = load_params()
    assert params.profile == "default"
    assert params.models.base.kind == "embedded"
    assert params.traits == ["openness", "conscientiousness", "extraversion", "agreeableness", "neuroticism"]


def test_params_yaml_is_the_default_composition(tmp_path: Path) -> None:
    out = profiles.compose("default", out=tmp_path / "params.yaml")
    assert out.read_text() == paths.PARAMS_FILE.read_text(), "run `python -m big5chat params` after editing configs/"


@pytest.mark.parametrize(
    ("mutate", "key", "words"),
    [
        (lambda d: d["prepare_data"].update(splt="median"), "prepare_data.splt", "unknown key"),
        (lambda d: d["prepare_data"].update(splitmethod="median"), "prepare_data.splitmethod", "did you mean 'prepare_data.split_method'"),
        (lambda d: d["prepare_data"].update(test_size="abc"), "prepare_data.test_size", "expected float"),
        (lambda d: d["prepare_data"].update(test_size=1.5), "prepare_data.test_size", "out of range"),
        (lambda d: d["prepare_data"].update(n_scenarios=True), "prepare_data.n_scenarios", "expected int"),
        (lambda d: d["prepare_data"].update(n_scenarios=0), "prepare_data.n_scenarios", "out of range"),
        (lambda d: d["prepare_data"].update(split_method="quartile"), "prepare_data.split_method", "unknown value 'quartile'"),
        (lambda d: d.update(traits=["openess", "neuroticism"]), "traits[0]", "unknown trait 'openess'"),
        (lambda d: d.update(levels=["high", "medium"]), "levels[1]", "unknown level 'medium'"),
        (lambda d: d["prepare_data"].pop("seed") and d.pop("runtime"), "runtime", "missing key"),
        (lambda d: d["data"]["posts"].update(path="data/nope.csv"), "data.posts.path", "file not found: data/nope.csv"),
        (lambda d: d["data"].update(instruments_dir="data/no_such_dir"), "data.instruments_dir", "folder not found"),
        (lambda d: d["data"]["posts"].update(hub_id="org/x"), "data.posts", "exactly one of 'path'"),
        (lambda d: d["data"]["benchmarks"].update(arc={"path": "data/sample/posts.csv"}), "data.benchmarks.arc", "unknown benchmark task"),
        (lambda d: d["models"]["base"].update(kind="hub", name="org/model"), "models.base.revision", "pinned revision"),
        (lambda d: d["models"]["base"].update(name="gpt-5"), "models.base.name", "unknown embedded model"),
        (lambda d: d["models"]["base"].update(dtype="fp8"), "models.base.dtype", "unknown value 'fp8'"),
        (lambda d: d["runtime"].update(threads=None), "runtime.threads", "must not be null"),
        (
            lambda d: d["assess_personality"].update(methods=["direct", "sfft"]),
            "assess_personality.methods[1]",
            "unknown method 'sfft' (known: direct",
        ),
        (lambda d: d["assess_personality"].update(methods=["direct", "sfft"]), "assess_personality.methods[1]", "did you mean 'sft'"),
        (
            lambda d: d["generate_dialogues"].update(processes=6, tensor_parallel=4) or d["compute"].update(launcher="torchrun"),
            "generate_dialogues.tensor_parallel",
            "4 does not divide processes=6",
        ),
        (
            lambda d: d["generate_dialogues"].update(processes=2, tensor_parallel=2, mixed_adapters=True) or d["compute"].update(launcher="torchrun"),
            "generate_dialogues.tensor_parallel",
            "cannot be combined with mixed_adapters",
        ),
        (lambda d: d["generate_dialogues"].update(tensor_parallel=0), "generate_dialogues.tensor_parallel", "out of range"),
        (
            lambda d: d["assess_personality"].update(questionnaires=["BFI", "NEO-FFI"]),
            "assess_personality.questionnaires[1]",
            "unknown questionnaire 'NEO-FFI'",
        ),
    ],
)
def test_bad_params_are_named(tmp_path: Path, mutate, key: str, words: str) -> None:  # type: ignore[no-untyped-def]
    problems = _problems(tmp_path, mutate)
    assert any(p.startswith(f"{key}:") and words in p for p in problems), problems


def test_all_problems_reported_together(tmp_path: Path) -> None:
    def mutate(d: dict) -> None:
        d["prepare_data"]["splt"] = 1
        d["traits"] = ["openness", "humour"]
        d["runtime"]["threads"] = "two"

    problems = _problems(tmp_path, mutate)
    assert {p.split(":")[0] for p in problems} >= {"prepare_data.splt", "traits[1]", "runtime.threads"}


def test_numbers_written_as_strings_are_read() -> None:
    from big5chat.config import PrepareDataConfig, validate

    cfg = validate(PrepareDataConfig, {"test_size": "5e-2"})
    assert cfg.test_size == pytest.approx(0.05)


def test_stage_config_rebuilds_sections_and_reads_missing_ones() -> None:
    data = _params_data()
    out = stage_config(prepare_data=data["prepare_data"], runtime=None)
    assert out["prepare_data"].split_method == data["prepare_data"]["split_method"]
    assert out["runtime"].hf_hub_offline is True
    with pytest.raises(ConfigError, match=r"prepare_data.split_method: unknown value"):
        stage_config(prepare_data={**data["prepare_data"], "split_method": "x"})


def test_stage_value_types_one_key_below_a_section() -> None:
    data = _params_data()
    assert stage_value("compute.launcher", data["compute"]) == data["compute"]["launcher"]
    heldout = stage_value("data.heldout_posts", {"heldout_posts": data["data"]["heldout_posts"]})
    assert heldout.path == data["data"]["heldout_posts"]["path"]
    with pytest.raises(ConfigError, match=r"compute.accelerate_config: file not found: nope.yaml"):
        stage_value("compute.accelerate_config", {"accelerate_config": "nope.yaml"})
    with pytest.raises(ConfigError, match=r"compute.nope: missing"):
        stage_value("compute.nope", data["compute"])


@pytest.mark.parametrize("profile", ["default", "smoke", "paper_8b", "paper_70b"])
def test_profiles_compose(tmp_path: Path, profile: str) -> None:
    out = profiles.compose(profile, out=tmp_path / "params.yaml")
    if profile in ("default", "smoke"):
        assert load_params(out).profile == profile
        return
    # The paper profiles need the PsychGenerator corpus, which is not public: that, and only that, is missing.
    with pytest.raises(ConfigError) as exc:
        load_params(out)
    assert exc.value.problems == ["data.posts.path: file not found: data/external/big5_training_data.csv"]
    params = load_params(out, check_paths=False)
    assert params.models.base.kind == "hub" and params.models.base.revision
    assert params.prepare_data.n_scenarios == 10000


def test_unknown_profile_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown profile 'paper_9b'"):
        profiles.compose("paper_9b", out=tmp_path / "p.yaml")


def test_cli_validate_names_a_typo_at_once(tmp_path: Path) -> None:
    data = _params_data()
    data["prepare_data"]["splt"] = "median"
    f = tmp_path / "params.yaml"
    f.write_text(yaml.safe_dump(data))
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "big5chat", "validate", "--params", str(f)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "prepare_data.splt: unknown key" in proc.stderr
    assert time.perf_counter() - start < 30


def _stage_outputs() -> list[str]:
    """Every stage output DVC caches (``cache: false`` ones, the committed results/, are git's)."""
    stages = yaml.safe_load(paths.DVC_FILE.read_text(encoding="utf-8"))["stages"]
    traits = _params_data()["traits"]
    outs: list[str] = []
    for body in stages.values():
        items, do = (traits, body["do"]) if "foreach" in body else ([None], body)
        for item in items:
            for key in ("outs", "metrics", "plots"):
                for entry in do.get(key, []):
                    path = next(iter(entry)) if isinstance(entry, dict) else entry
                    if isinstance(entry, dict) and (entry[path] or {}).get("cache") is False:
                        continue
                    outs.append(path.replace("${item}", str(item)))
    return outs


def test_no_stage_output_is_tracked_by_git() -> None:
    """DVC refuses to run a stage whose cached output git tracks; a stray `git add` of one broke CI once."""
    if not (paths.ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    outs = _stage_outputs()
    tracked = subprocess.run(["git", "ls-files", "--", *outs], cwd=paths.ROOT, capture_output=True, text=True, check=True).stdout.split()
    assert not tracked, f"stage outputs tracked by git (git rm -r --cached them): {tracked}"
    ignored = subprocess.run(["git", "check-ignore", "--no-index", *outs], cwd=paths.ROOT, capture_output=True, text=True).stdout.split()
    assert sorted(set(outs) - set(ignored)) == [], "stage outputs that git would pick up with `git add -A`"


def test_backend_defaults() -> None:
    """Questionnaires on hf; reasoning on hf_prefix (HFLM running each shared context once), in params and dataclasses."""
    from big5chat.config import AssessPersonalityConfig, EvaluateReasoningConfig

    params = load_params()
    assert params.assess_personality.backend == "hf" and params.evaluate_reasoning.backend == "hf_prefix"
    assert AssessPersonalityConfig().backend == "hf" and EvaluateReasoningConfig().backend == "hf_prefix"


def _vllm_everywhere(d: dict) -> None:
    d["assess_personality"].update(backend="vllm", mode="generate", mode_agreement_items=0)  # log-prob's side runs on hf
    d["evaluate_reasoning"]["backend"] = "vllm"
    for stage in ("assess_personality", "evaluate_reasoning"):  # steer needs hooks on an HF model
        d[stage]["methods"] = [m for m in d[stage]["methods"] if m != "steer"]


def test_vllm_backend_is_refused_where_vllm_is_absent(tmp_path: Path) -> None:
    from big5chat.generation import backends

    if backends.vllm_available():
        pytest.skip("vLLM is installed here")
    problems = _problems(tmp_path, _vllm_everywhere)
    for key in ("assess_personality.backend", "evaluate_reasoning.backend"):
        assert any(p.startswith(f"{key}: vllm is not installed here") and "pip install vllm" in p for p in problems), problems
    with pytest.raises(ConfigError, match=r"evaluate_reasoning.backend: vllm is not installed"):
        stage_config(evaluate_reasoning={**_params_data()["evaluate_reasoning"], "backend": "vllm"})
    # `big5chat plan` validates a profile for another machine (no environment checks): vllm passes there
    data = copy.deepcopy(_params_data())
    _vllm_everywhere(data)
    f = tmp_path / "offline.yaml"
    f.write_text(yaml.safe_dump(data), encoding="utf-8")
    assert load_params(f, check_paths=False).evaluate_reasoning.backend == "vllm"


def test_vllm_backend_serves_generation_mode_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from big5chat.generation import backends

    monkeypatch.setattr(backends, "vllm_available", lambda: True)
    problems = _problems(tmp_path, lambda d: d["assess_personality"].update(backend="vllm", mode="logprob"))
    assert problems == [
        "assess_personality.backend: vllm serves generation mode only (mode: generate); log-prob scoring runs on hf",
        "assess_personality.methods: steer needs residual-stream hooks, which vLLM has not: use backend 'hf' or leave it out",
        "assess_personality.mode_agreement_items: the log-prob side of the comparison runs on hf: use backend 'hf' or set 0 with vllm",
    ]
    problems = _problems(tmp_path, lambda d: d["evaluate_reasoning"].update(backend="vllm"))
    assert problems == ["evaluate_reasoning.methods: steer needs residual-stream hooks, which vLLM has not: use backend 'hf' or 'hf_prefix', "
                        "or leave it out"]  # fmt: skip
    data = copy.deepcopy(_params_data())
    _vllm_everywhere(data)
    f = tmp_path / "ok.yaml"
    f.write_text(yaml.safe_dump(data), encoding="utf-8")
    params = load_params(f)
    assert (params.assess_personality.backend, params.assess_personality.mode, params.evaluate_reasoning.backend) == ("vllm", "generate", "vllm")


def _required(cls: type) -> list[str]:
    import dataclasses

    return [f.name for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]


def test_defaults_are_the_values_in_configs_params_yaml() -> None:
    """One place per default: a section built from its required keys alone equals the section of configs/params.yaml."""
    from big5chat.config import SECTIONS, validate

    raw = yaml.safe_load((paths.CONFIGS / "params.yaml").read_text(encoding="utf-8"))
    for name, cls in SECTIONS.items():
        if name in ("profile", "traits", "levels"):
            continue
        built = validate(cls, {k: raw[name][k] for k in _required(cls)}, key=name)
        assert built == validate(cls, raw[name], key=name), name
    assert _required(SECTIONS["models"]) == ["base", "encoder"]
    assert _required(SECTIONS["data"]) == ["posts", "scenarios", "heldout_posts", "benchmarks"]


def test_a_default_is_read_from_configs_params_yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from big5chat import config

    raw = yaml.safe_load((paths.CONFIGS / "params.yaml").read_text(encoding="utf-8"))
    raw["train_dpo"]["beta"] = 0.25
    raw["train_dpo"]["lora"]["r"] = 4
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw), encoding="utf-8")
    monkeypatch.setattr(paths, "CONFIGS", tmp_path)
    config._defaults_document.cache_clear()
    try:
        dpo = config.TrainDpoConfig(seed=7)
        assert (dpo.beta, dpo.lora.r, dpo.seed, config.TrainSftConfig().lora.r) == (0.25, 4, 7, 8)
    finally:
        monkeypatch.undo()
        config._defaults_document.cache_clear()
    assert config.TrainDpoConfig().beta == 0.1


def test_a_section_declares_no_default_of_its_own() -> None:
    from big5chat.config import section

    with pytest.raises(TypeError, match=r"Bad.seed: its default belongs in configs/params.yaml \(steer.seed\)"):

        @section("steer")
        class Bad:
            seed: int = 3


def test_sections_built_in_code_follow_the_same_rules() -> None:
    """A section built in code is validated like params (not the files: those only where params are loaded)."""
    from pydantic import ValidationError

    from big5chat.config import DataSource, EvaluateReasoningConfig, ModelSpec, SteerConfig

    assert ModelSpec("tiny", "tiny-llama").dtype == "float32"
    assert DataSource(path="data/no_such_file.csv").describe() == "data/no_such_file.csv"
    with pytest.raises(ValidationError):
        SteerConfig(layers=[])
    with pytest.raises(ValidationError):
        EvaluateReasoningConfig(methods=["prompt_demo"])
    assert to_dict(SteerConfig(layers=[3])) == {**_params_data()["steer"], "layers": [3]}
