"""Run a stage's notebook with papermill, after validating params.yaml.

The notebook receives exactly the params its dvc.yaml stage declares (so DVC's dependency tracking is
exact by construction: a notebook cannot read a param its stage does not declare), one papermill parameter
per top-level section. A failing cell leaves the executed notebook, failing cell included, in
``reports/notebooks/`` and the stage exits non-zero with the cell's error in the log.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from big5chat import paths
from big5chat.config import ConfigError, load_params


class StageError(RuntimeError):
    pass


def read_dvc_stages(dvc_file: Path | None = None) -> dict[str, Any]:
    f = dvc_file or paths.DVC_FILE
    data = yaml.safe_load(f.read_text(encoding="utf-8")) or {}
    return data.get("stages", {})


def declared_params(stage: str, dvc_file: Path | None = None) -> list[str]:
    """The params.yaml keys a dvc.yaml stage declares (dotted), foreach/matrix bodies included."""
    stages = read_dvc_stages(dvc_file)
    if stage not in stages:
        raise StageError(f"dvc.yaml has no stage {stage!r} (stages: {', '.join(stages)})")
    body = stages[stage]
    body = body.get("do", body)
    keys: list[str] = []
    for entry in body.get("params", []) or []:
        if isinstance(entry, str):
            keys.append(entry)
        elif isinstance(entry, dict):
            for file, names in entry.items():
                if Path(file).name == "params.yaml":
                    keys.extend(names or [])
    return keys


def select(data: dict[str, Any], keys: list[str]) -> dict[str, Any]:
    """The nested sub-dict of ``data`` holding only the dotted ``keys``."""
    out: dict[str, Any] = {}
    for key in keys:
        parts = key.split(".")
        src: Any = data
        for part in parts:
            if not isinstance(src, dict) or part not in src:
                raise StageError(f"dvc.yaml declares param {key!r}, which params.yaml does not have")
            src = src[part]
        dst = out
        for part in parts[:-1]:
            dst = dst.setdefault(part, {})
        dst[parts[-1]] = src
    return out


def notebook_paths(stage: str, item: str | None = None) -> tuple[Path, Path]:
    source = paths.NOTEBOOKS / f"{stage}.ipynb"
    name = f"{stage}@{item}" if item else stage
    return source, paths.REPORT_NOTEBOOKS / f"{name}.ipynb"


def run_stage(stage: str, item: str | None = None, params_file: Path | None = None) -> int:
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    from big5chat.runtime import stage_environment

    pfile = params_file or paths.PARAMS_FILE
    try:
        params = load_params(pfile)
    except ConfigError as exc:
        print(f"[big5chat] {stage}: bad parameters, nothing was run.\n{exc}", file=sys.stderr)
        return 2
    data = yaml.safe_load(pfile.read_text(encoding="utf-8"))
    try:
        parameters = select(data, declared_params(stage))
    except StageError as exc:
        print(f"[big5chat] {stage}: {exc}", file=sys.stderr)
        return 2
    if item is not None:
        parameters["item"] = item
    source, output = notebook_paths(stage, item)
    if not source.is_file():
        print(f"[big5chat] {stage}: notebook not found: {paths.relative(source)}", file=sys.stderr)
        return 2
    env = stage_environment(params.runtime.hf_hub_offline, omp_wait_policy=params.runtime.omp_wait_policy, device=params.runtime.device)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    os.environ.clear()
    os.environ.update(env)
    output.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    label = f"{stage}@{item}" if item else stage
    print(f"[big5chat] {label}: running {paths.relative(source)} -> {paths.relative(output)}", file=sys.stderr, flush=True)
    try:
        pm.execute_notebook(
            str(source),
            str(output),
            parameters=parameters,
            kernel_name="python3",
            language="python",
            cwd=str(paths.ROOT),
            progress_bar=False,
            log_output=True,
            stdout_file=sys.stderr,
            stderr_file=sys.stderr,
            request_save_on_cell_execute=True,
            # the kernel app's own log (its TCP-transport notice; "KeyboardInterrupt caught" when it is shut down
            # after a stage that succeeded) is noise here: a failing cell or a dead kernel is reported by papermill
            extra_arguments=["--IPKernelApp.log_level=CRITICAL"],
        )
    except PapermillExecutionError as exc:
        print(
            f"[big5chat] {label}: FAILED in cell {exc.exec_count} after {time.perf_counter() - start:.1f} s: "
            f"{exc.ename}: {exc.evalue}\n  the executed notebook with the failing cell is {paths.relative(output)}",
            file=sys.stderr,
        )
        return 1
    print(f"[big5chat] {label}: done in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return 0
