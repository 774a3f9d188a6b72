"""Check every local input table that params.yaml names, before any stage runs (``python -m big5chat validate``).

DVC removes a stage's outputs before it runs the stage's command, so an input that fails inside a stage leaves
the workspace without that stage's earlier outputs (they stay in DVC's cache: ``dvc checkout`` restores them).
Checking the inputs first, as ``make repro`` does, means a bad file stops the run before anything is touched.
Hub sources are skipped (they are checked when the stage downloads them).
"""

from __future__ import annotations

from typing import Any

from big5chat.data import loaders
from big5chat.data.tables import DataError


def _local(source: Any) -> bool:
    return source is not None and getattr(source, "path", None) is not None


def check_inputs(params: Any) -> list[str]:
    """Problems with the local input files of ``params`` (a config.Params), one message each; [] when all load."""
    problems: list[str] = []

    def attempt(what: str, fn: Any, *args: Any) -> None:
        try:
            fn(*args)
        except (DataError, OSError, ValueError, KeyError) as exc:
            problems.append(f"{what}: {exc}")

    if _local(params.data.posts):
        attempt("data.posts", loaders.load_posts, params.data.posts)
    if _local(params.data.heldout_posts):
        attempt("data.heldout_posts", loaders.load_posts, params.data.heldout_posts)
    if _local(params.data.scenarios):
        attempt("data.scenarios", loaders.load_scenarios, params.data.scenarios)
    attempt("data.instruments_dir", loaders.load_questionnaires, params.data.instruments_dir)
    for task, source in params.data.benchmarks.items():
        if task in params.evaluate_reasoning.tasks and _local(source):
            attempt(f"data.benchmarks.{task}", loaders.load_benchmark, task, source)
    released = params.generate_dialogues.released
    if params.generate_dialogues.source == "released" and _local(released):
        attempt("generate_dialogues.released", loaders.load_dialogues, released)
    return problems
