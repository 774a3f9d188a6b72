"""Project task YAMLs for lm-evaluation-harness: the built-in tasks' logic (``include:``: same prompts, choices,
filters and metrics) reading local files or hub datasets.

The YAMLs are written at run time (``write_tasks``) because ``include:`` needs the installed lm-eval's folder,
which is found from ``lm_eval.tasks.__file__``. A local source is validated and mapped to the task's hub schema
by ``big5chat.data.loaders.load_benchmark`` and written as JSON lines beside the YAML.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

PROJECT_TASK = "b5c_{task}"


@dataclass(frozen=True)
class TaskSpec:
    builtin: str  # the built-in YAML, relative to lm_eval/tasks
    split: str  # the split the task scores
    metric: str  # the study's reported metric: "acc" or "exact_match,flexible-extract"
    num_fewshot: int = 0
    extra: tuple[tuple[str, Any], ...] = ()  # overrides of the built-in YAML


SPECS: dict[str, TaskSpec] = {
    "social_iqa": TaskSpec("siqa/siqa.yaml", "validation", "acc"),
    "commonsense_qa": TaskSpec("commonsense_qa/default.yaml", "validation", "acc"),
    "piqa": TaskSpec("piqa/piqa.yaml", "validation", "acc"),
    "gsm8k": TaskSpec("gsm8k/gsm8k.yaml", "test", "exact_match,flexible-extract", 5, (("fewshot_split", "test"),)),
    "mathqa": TaskSpec("mathqa/mathqa.yaml", "test", "acc"),
    "truthfulqa_mc": TaskSpec("truthfulqa/truthfulqa_mc2.yaml", "validation", "acc"),
    "mmlu": TaskSpec("mmlu/default/_default_template_yaml", "test", "acc", 0,
                     (("description", "The following are multiple choice questions (with answers).\n\n"), ("fewshot_split", None))),  # fmt: skip
    "gpqa": TaskSpec("gpqa/zeroshot/_gpqa_zeroshot_yaml", "train", "acc"),
}  # fmt: skip
HUB_DEFAULTS = {"gpqa": ("Idavidrein/gpqa", "gpqa_main")}


def builtin_dir() -> Path:
    import lm_eval.tasks

    return Path(lm_eval.tasks.__file__).parent


def task_yaml(task: str, source: Any, data_file: Path | None) -> dict[str, Any]:
    """The project YAML of one task: the built-in task, the split it scores, and where its data come from."""
    spec = SPECS[task]
    doc: dict[str, Any] = {"include": str(builtin_dir() / spec.builtin), "task": PROJECT_TASK.format(task=task)}
    doc.update({"training_split": None, "validation_split": None, "test_split": None, "tag": None})
    split_key = "test_split" if spec.split == "test" else "validation_split"
    if data_file is not None:
        doc.update({"dataset_path": "json", "dataset_name": None, "dataset_kwargs": {"data_files": {spec.split: str(data_file)}}})
        doc[split_key] = spec.split
    else:  # a hub dataset, at a pinned revision
        doc.update({"dataset_path": source.hub_id, "dataset_name": source.config_name or HUB_DEFAULTS.get(task, (None, None))[1],
                    "dataset_kwargs": {"revision": source.revision}})  # fmt: skip
        doc[split_key] = source.split
        if source.split != spec.split:
            doc["fewshot_split"] = doc.get("fewshot_split")
    for k, v in spec.extra:
        doc[k] = v
    doc["num_fewshot"] = spec.num_fewshot
    return doc


SHARED_FILES: dict[str, str] = {  # the real sets under ../shared/data/benchmarks (MMLU and GPQA have no copy there)
    "social_iqa": "socialiqa/dev.jsonl",
    "commonsense_qa": "commonsenseqa/dev_rand_split.jsonl",
    "piqa": "piqa/valid.jsonl",
    "gsm8k": "gsm8k/test.jsonl",
    "mathqa": "mathqa/test_subset_1000.jsonl",
    "truthfulqa_mc": "truthfulqa/mc_task.json",
}


def shared_sources(tasks: list[str] | tuple[str, ...], root: Path | None = None) -> dict[str, Any]:
    """{task: DataSource} of the shared real sets, read in place on each task's split (benches and tests)."""
    from big5chat import paths
    from big5chat.config import DataSource

    root = root or paths.SHARED_DATA / "benchmarks"
    return {t: DataSource(path=str(root / SHARED_FILES[t]), split=SPECS[t].split) for t in tasks}


def write_tasks(sources: dict[str, Any], out_dir: Path) -> dict[str, dict[str, Any]]:
    """Write a YAML (and, for local sources, the mapped JSON lines) per task, each atomically (a reader never
    sees half a file); returns {task: record}."""
    from big5chat import storage
    from big5chat.data.loaders import load_benchmark

    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, dict[str, Any]] = {}
    for task, source in sources.items():
        if task not in SPECS:
            raise ValueError(f"no lm-eval task for {task!r} (known: {', '.join(SPECS)})")
        data_file = None
        n = None
        if getattr(source, "path", None):
            table = load_benchmark(task, source)
            data_file = out_dir / f"{task}.jsonl"
            storage.write_text(data_file, "".join(json.dumps({k: v for k, v in r.items()}, ensure_ascii=False) + "\n" for r in table.rows))
            n = len(table)
        doc = task_yaml(task, source, data_file)
        storage.write_text(task_yaml_file(task, out_dir), yaml.safe_dump(doc, sort_keys=False))
        written[task] = {"task": doc["task"], "items": n, "source": source.describe() if hasattr(source, "describe") else str(source)}
    return written


def task_yaml_file(task: str, out_dir: Path) -> Path:
    """Where ``write_tasks`` writes ``task``'s lm-eval YAML."""
    return out_dir / f"{PROJECT_TASK.format(task=task)}.yaml"


def task_files(task: str, out_dir: Path) -> list[Path]:
    """What ``write_tasks`` wrote for ``task``: its YAML and, for a local source, its JSON lines."""
    return [f for f in (task_yaml_file(task, out_dir), out_dir / f"{task}.jsonl") if f.is_file()]


def task_manager(out_dir: Path) -> Any:
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=str(out_dir), include_defaults=False)
