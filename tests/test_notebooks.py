"""Notebooks: parameters cell names <= params.yaml keys <= what dvc.yaml declares; stored without outputs."""

from __future__ import annotations

import ast
import json

import pytest
import yaml

from big5chat import paths
from big5chat.stage_runner import declared_params, read_dvc_stages, select

NOTEBOOKS = sorted(paths.NOTEBOOKS.glob("*.ipynb"))
FOREACH_ITEM = "item"  # the foreach item a stage receives beside its params (e.g. a trait)


def _parameters(nb: dict) -> list[str]:
    cells = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(cells) == 1, "exactly one cell tagged 'parameters'"
    tree = ast.parse("".join(cells[0]["source"]))
    names = []
    for node in tree.body:
        assert isinstance(node, ast.Assign), "the parameters cell holds plain assignments only"
        assert isinstance(node.value, ast.Constant), "parameters are plain literals"
        names += [t.id for t in node.targets if isinstance(t, ast.Name)]
    return names


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_parameters_are_declared_params(nb_path) -> None:  # type: ignore[no-untyped-def]
    nb = json.loads(nb_path.read_text())
    stages = read_dvc_stages()
    assert nb_path.stem in stages, f"{nb_path.name} has no dvc.yaml stage of the same name"
    params_data = yaml.safe_load(paths.PARAMS_FILE.read_text())
    declared = declared_params(nb_path.stem)
    select(params_data, declared)  # every declared key exists in params.yaml
    tops = {k.split(".")[0] for k in declared}
    names = _parameters(nb)
    is_foreach = "foreach" in stages[nb_path.stem]
    for name in names:
        if is_foreach and name == FOREACH_ITEM:
            continue
        assert name in params_data, f"{nb_path.name}: parameter {name!r} is not a params.yaml key"
        assert name in tops, f"{nb_path.name}: parameter {name!r} is not declared in dvc.yaml for this stage"
    assert set(names) >= tops, f"{nb_path.name}: declared but not received: {tops - set(names)}"


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebooks_are_stored_without_outputs(nb_path) -> None:  # type: ignore[no-untyped-def]
    nb = json.loads(nb_path.read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [] and cell.get("execution_count") is None, f"{nb_path.name} holds outputs"
    assert nb["metadata"]["kernelspec"]["name"] == "python3"


def test_every_stage_runs_its_notebook_through_the_runner() -> None:
    for name, body in read_dvc_stages().items():
        body = body.get("do", body)
        assert body["cmd"].startswith(f"python -m big5chat stage {name}"), name
        assert f"notebooks/{name}.ipynb" in body["deps"], name
        assert (paths.NOTEBOOKS / f"{name}.ipynb").is_file(), name


# Notebooks are the narrative: the logic lives in src/big5chat/stages/<stage>.py, linted and unit-tested there.
MAX_CELL_LINES = 10
MAX_TOTAL_LINES = 250


def _code_cells(nb_path) -> list[str]:  # type: ignore[no-untyped-def]
    nb = json.loads(nb_path.read_text())
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]


def _lines(source: str) -> int:
    return sum(1 for line in source.splitlines() if line.strip())


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebooks_hold_narrative_not_logic(nb_path) -> None:  # type: ignore[no-untyped-def]
    for i, source in enumerate(_code_cells(nb_path)):
        assert _lines(source) <= MAX_CELL_LINES, f"{nb_path.name}: code cell {i} has {_lines(source)} lines (at most {MAX_CELL_LINES})"
        for node in ast.walk(ast.parse(source)):
            kind = type(node).__name__
            assert not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)), f"{nb_path.name}: {kind} in cell {i}"
            assert not isinstance(node, (ast.For, ast.While, ast.AsyncFor)), f"{nb_path.name}: a {kind} loop in cell {i}"
    assert (paths.ROOT / "src" / "big5chat" / "stages" / f"{nb_path.stem}.py").is_file(), f"{nb_path.stem}: no stage module"


def test_notebooks_are_short_in_all() -> None:
    total = sum(_lines(s) for nb_path in NOTEBOOKS for s in _code_cells(nb_path))
    assert total <= MAX_TOTAL_LINES, f"{total} code lines across the notebooks (at most {MAX_TOTAL_LINES})"
