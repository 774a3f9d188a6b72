"""Running the reasoning grid with lm-evaluation-harness: methods x conditions x tasks.

Direct and Prompt-Inst use the base model (Prompt-Inst puts ``You are a person with {level} {trait}.`` as the
system instruction); SFT and DPO load their adapters through lm-eval's ``peft=`` and get the trained trait
instruction as the system instruction, as the study ran them. One lm-eval model object per method serves all
of that method's conditions: HFLM (backend hf, the default), PrefixReuseLM (backend hf_prefix: HFLM that runs each
shared context once across a request's answer choices, ``big5chat.reasoning.prefix_lm``) or lm-eval's vLLM model
(backend vllm, GPU machines with vllm installed; adapters through ``enable_lora``/``lora_local_path``).
"""

from __future__ import annotations

import io
import json
import logging
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stderr
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from big5chat.generation import backends
from big5chat.methods import instruction_text, method_model, spec
from big5chat.reasoning.tasks import PROJECT_TASK, SPECS


@dataclass(frozen=True)
class Cell:
    method: str
    trait: str = ""
    level: str = ""

    @property
    def system_instruction(self) -> str | None:
        return instruction_text(self.method, self.trait, self.level) or None


def cells(methods: list[str], conditions: list[tuple[str, str]]) -> list[Cell]:
    """Direct once; every conditioned method at the given conditions (the study's grid runs SFT/DPO with their
    trained instruction only)."""
    out = []
    for m in methods:
        out += [Cell(m)] if not spec(m).conditioned else [Cell(m, t, lvl) for t, lvl in conditions]
    return out


def metric_value(task_result: dict[str, Any], metric: str) -> tuple[float, float | None]:
    key = metric if "," in metric else f"{metric},none"
    stderr_key = key.replace(",", "_stderr,", 1)
    value = task_result[key]
    stderr = task_result.get(stderr_key)
    return float(value), (float(stderr) if isinstance(stderr, (int, float)) else None)


def lm_spec(
    backend: backends.Backend, key: str, *, base_dir: Path, adapters: dict[str, Path], batch_size: int, dtype: str, device: str | None
) -> tuple[str, dict[str, Any]]:
    """(lm-eval model name, its arguments) for one method's model: ``key`` is ``base`` or an adapter's method."""
    adapter = None if key == "base" else str(adapters[key])
    name, args = backends.lm_eval_model_args(backend, str(base_dir), adapter, dtype, batch_size)
    if name in backends.HF_BACKENDS:
        args["device"] = device  # vLLM places itself (CUDA_VISIBLE_DEVICES)
        if device == "cuda":  # a model larger than one GPU: HFLM spreads it over this process's GPUs (models.placement)
            from big5chat.models.loading import ModelLoadError
            from big5chat.models.placement import PlacementError, placement_for

            try:
                args["parallelize"] = placement_for(base_dir, dtype).spread
            except PlacementError as exc:
                raise ModelLoadError(str(exc)) from None
    return name, args


def make_lm(name: str, args: dict[str, Any], batch_size: int) -> Any:
    """The lm-eval model object, built once and reused for every cell and task of a method."""
    if name == "hf":
        from lm_eval.models.huggingface import HFLM

        return HFLM(**args)
    if name == "hf_prefix":
        from big5chat.reasoning.prefix_lm import PrefixReuseLM

        return PrefixReuseLM(**args)
    from lm_eval.api.registry import get_model

    return get_model(name).create_from_arg_obj(args, {"batch_size": batch_size})


def collect_env_info_once() -> None:
    """lm-eval adds torch's environment report to every ``simple_evaluate`` result (``add_env_info``: subprocesses
    such as pip and nvidia-smi, about 2 s a call; the default grid makes 56 calls). The environment does not change
    within a run, so the report is collected on the first call and copied into later results."""
    import copy

    import lm_eval.evaluator as evaluator

    if getattr(evaluator.add_env_info, "collects_once", False):
        return
    original, report = evaluator.add_env_info, {}

    def add_env_info(storage: dict[str, Any]) -> None:
        if not report:
            original(report)
        storage.update(copy.deepcopy(report))

    add_env_info.collects_once = True  # type: ignore[attr-defined]
    evaluator.add_env_info = add_env_info


def unit_key(cell: Cell, task: str) -> str:
    """One unit of the grid: a cell's task (what a data-parallel process takes and a resumed run skips)."""
    return f"{cell.method}__{cell.trait or 'none'}__{cell.level or 'none'}__{task}"


def evaluate(
    cell_list: list[Cell],
    tasks: list[str],
    *,
    base_dir: Path,
    adapters: dict[str, Path],
    task_manager: Any,
    limits: dict[str, int | None],
    apply_chat_template: bool,
    fewshot_as_multiturn: bool,
    max_gen_toks: int,
    batch_size: int,
    dtype: str = "float32",
    backend: backends.Backend = "hf",
    vectors: Any = None,
    multiplier: float = 0.0,
    on_cell: Callable[[Cell, float], None] | None = None,
    store: Any = None,
    share: tuple[int, int] = (0, 1),
    run_missing: bool = True,
) -> tuple[pd.DataFrame, list[dict[str, Any]], dict[str, Any]]:
    """(one row per cell x task: score, stderr, n, seconds; per-item samples; versions and settings). Steer cells run
    the base model with the trait vector (``vectors``, ``multiplier``) added for the cell's tasks and removed after.
    With ``store`` (``reasoning.shards.UnitStore``) each finished unit (a cell's task) is kept and a unit already
    there is read, not rerun; a model is loaded only for a unit that runs. ``share`` (rank, processes): this process
    takes every processes-th unit of the grid, from its rank (data parallel). ``run_missing=False`` only reads the
    store (the merge after a data-parallel launch) and names a unit it lacks."""
    import lm_eval

    collect_env_info_once()
    rows: list[dict[str, Any]] = []
    samples: list[dict[str, Any]] = []
    versions: dict[str, Any] = {}
    harness_messages: dict[str, int] = {}  # lm-eval's log lines (quiet_harness), line -> count
    models: dict[str, Any] = {}
    from big5chat.models.loading import stage_device

    device = stage_device() if backend in backends.HF_BACKENDS else None  # vLLM places itself (CUDA_VISIBLE_DEVICES)

    def model_for(cell: Cell, messages: dict[str, int]) -> Any:
        key = cell.method if cell.method in adapters else "base"
        if key not in models:
            models.clear()  # one model in memory at a time
            lm_name, lm_args = lm_spec(backend, key, base_dir=base_dir, adapters=adapters, batch_size=batch_size, dtype=dtype, device=device)
            with quiet_harness(messages):
                models[key] = make_lm(lm_name, lm_args, batch_size)
        return models[key]

    if any(spec(c.method).model == "steered" for c in cell_list) and backend not in backends.HF_BACKENDS:
        raise ValueError(f"steer runs on the HF backends (hf, hf_prefix), not {backend!r}: vLLM has no residual-stream hooks")
    rank, processes = share
    for cell, task in [(c, t) for c in cell_list for t in tasks][rank::processes]:
        unit = store.get(unit_key(cell, task)) if store is not None else None
        if unit is None and not run_missing:
            raise ValueError(f"{unit_key(cell, task)} is in no process's results ({store.folder}): a process stopped early; "
                             "run the stage again (finished units are kept)")  # fmt: skip
        if unit is None:
            messages: dict[str, int] = {}  # the unit's own (and its model load's): the same whether run or read back
            unit = run_unit(model_for(cell, messages), cell, task, task_manager=task_manager, limit=limits.get(task),
                            apply_chat_template=apply_chat_template, fewshot_as_multiturn=fewshot_as_multiturn, max_gen_toks=max_gen_toks,
                            vectors=vectors, multiplier=multiplier, harness_messages=messages)  # fmt: skip
            unit["messages"] = messages
            unit = json.loads(json.dumps(unit))  # as the store keeps it (tuples as lists): a read unit equals a run one
            if store is not None:
                store.put(unit_key(cell, task), unit)
        rows.append(unit["row"])
        samples += unit["samples"]
        versions[task] = unit["version"]
        for line, n in unit["messages"].items():
            harness_messages[line] = harness_messages.get(line, 0) + n
        if on_cell:
            on_cell(cell, unit["row"]["seconds"])
    meta = {"lm_eval_version": lm_eval.__version__, "backend": backend, "task_versions": versions, "apply_chat_template": apply_chat_template,
            "fewshot_as_multiturn": fewshot_as_multiturn, "max_gen_toks": max_gen_toks, "limits": limits,
            "system_instructions": {f"{c.method}:{c.trait}:{c.level}": c.system_instruction for c in cell_list},
            "harness_messages": harness_messages}  # fmt: skip
    if any(spec(c.method).model == "steered" for c in cell_list):
        meta["steer"] = {"multiplier": multiplier, "layers": vectors.layers if vectors is not None else None}
    return pd.DataFrame(rows), samples, meta


def run_unit(
    lm: Any,
    cell: Cell,
    task: str,
    *,
    task_manager: Any,
    limit: int | None,
    apply_chat_template: bool,
    fewshot_as_multiturn: bool,
    max_gen_toks: int,
    vectors: Any,
    multiplier: float,
    harness_messages: dict[str, int],
) -> dict[str, Any]:
    """One cell's task through ``lm_eval.simple_evaluate``: {"row": score, stderr, n, seconds; "samples"; "version"}."""
    import time
    from contextlib import nullcontext

    import lm_eval

    name = PROJECT_TASK.format(task=task)
    start = time.perf_counter()
    as_method = (
        method_model(lm.model, cell.method, cell.trait, cell.level, vectors=vectors, multiplier=multiplier)
        if spec(cell.method).model == "steered"
        else nullcontext()
    )
    with as_method, quiet_harness(harness_messages):
        res = lm_eval.simple_evaluate(
            model=lm, tasks=[name], task_manager=task_manager, limit=limit,
            apply_chat_template=apply_chat_template, system_instruction=cell.system_instruction,
            fewshot_as_multiturn=fewshot_as_multiturn, gen_kwargs={"max_gen_toks": max_gen_toks},
            log_samples=True, bootstrap_iters=100,
        )  # fmt: skip
    secs = time.perf_counter() - start
    value, stderr = metric_value(res["results"][name], SPECS[task].metric)
    wanted = SPECS[task].metric.split(",")[1] if "," in SPECS[task].metric else "none"
    task_samples = [s for s in res["samples"][name] if s.get("filter", "none") == wanted]
    n = len({s["doc_id"] for s in task_samples})
    row = {"method": cell.method, "trait": cell.trait, "level": cell.level, "task": task, "score": value,
           "stderr": stderr, "n": n, "seconds": round(secs, 2), "items_per_s": round(n / secs, 3)}  # fmt: skip
    kept = [{"method": cell.method, "trait": cell.trait, "level": cell.level, "task": task, "doc_id": s["doc_id"],
             "target": s.get("target"), "filtered_resps": s.get("filtered_resps"),
             **{m: s[m] for m in ("acc", "exact_match") if m in s}} for s in task_samples]  # fmt: skip
    return {"row": row, "samples": kept, "version": res["versions"][name]}


_PROGRESS = re.compile(r"\d+%\|")  # a tqdm bar's frame


class _CountingHandler(logging.Handler):
    def __init__(self, messages: dict[str, int]) -> None:
        super().__init__(logging.WARNING)
        self.messages = messages

    def emit(self, record: logging.LogRecord) -> None:
        _count(self.messages, f"{record.levelname}: {record.getMessage()}")


def _count(messages: dict[str, int], line: str) -> None:
    messages[line[:300]] = messages.get(line[:300], 0) + 1


@contextmanager
def quiet_harness(messages: dict[str, int]) -> Iterator[None]:
    """lm-eval's own progress bars (per task: tokenizing, requests) and its warnings kept out of the executed
    notebook: its WARNING+ log records and the block's non-progress stderr lines are counted into ``messages``
    (recorded with the run's settings); when the block raises, its last stderr is printed before the error."""
    buffer = io.StringIO()
    logger = logging.getLogger("lm_eval")
    handler, propagate = _CountingHandler(messages), logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        with redirect_stderr(buffer):
            yield
    except BaseException:
        print(buffer.getvalue()[-4000:], file=sys.stderr)
        raise
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate
    for line in re.split(r"[\r\n]+", buffer.getvalue()):
        line = line.strip()
        if line and not _PROGRESS.search(line) and line != "\x1b[A":
            _count(messages, line)


def dump_samples(samples: list[dict[str, Any]], path: Path) -> None:
    from big5chat.storage import write_text

    write_text(path, "".join(json.dumps(s, default=str, ensure_ascii=False) + "\n" for s in samples))
