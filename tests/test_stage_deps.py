"""Stage dependencies that cannot drift: every project module a stage's notebook reaches, through its imports and
theirs, is a dependency of that stage in dvc.yaml (the file itself or a folder above it).

Runner infrastructure (paths, atomic writes, progress bars, the typed config and its validation, the CLI) decides no
number and is left out; params are tracked by dvc.yaml's ``params``.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from big5chat import paths
from big5chat.stage_runner import read_dvc_stages

PACKAGE = paths.ROOT / "src" / "big5chat"
INFRASTRUCTURE = {
    "big5chat", "big5chat.__main__", "big5chat.paths", "big5chat.storage", "big5chat.progress", "big5chat.runtime",
    "big5chat.strict", "big5chat.config", "big5chat.stage_runner", "big5chat.cli", "big5chat.plan", "big5chat.profiles",
}  # fmt: skip


def module_file(name: str) -> Path | None:
    rel = Path(*name.split("."))
    for f in (paths.ROOT / "src" / rel.with_suffix(".py"), paths.ROOT / "src" / rel / "__init__.py"):
        if f.is_file():
            return f
    return None


def imported_modules(source: str, package: str) -> set[str]:
    """big5chat modules a piece of code imports anywhere (function-level imports and ``__import__`` included)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("big5chat")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            if base.startswith("big5chat"):
                out.add(base)
                out |= {f"{base}.{a.name}" for a in node.names if module_file(f"{base}.{a.name}")}
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "__import__" and node.args:
            arg = node.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and arg.value.startswith("big5chat"):
                out.add(arg.value)
    return {m for m in out if module_file(m)}


def docstring_only(f: Path) -> bool:
    body = ast.parse(f.read_text(encoding="utf-8")).body
    return all(isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant) for n in body)


def reached(source: str) -> set[str]:
    """Every big5chat module that can decide a number, reached from ``source`` by following imports: parents of a
    module included (importing ``a.b.c`` runs ``a/__init__``) unless they hold only a docstring; infrastructure is
    neither counted nor followed (it imports, e.g., the backend names to type its config)."""
    todo, seen = list(imported_modules(source, "big5chat")), set()
    while todo:
        name = todo.pop()
        parts = name.split(".")
        for k in range(1, len(parts) + 1):
            parent = ".".join(parts[:k])
            f = module_file(parent)
            if parent in seen or parent in INFRASTRUCTURE or f is None:
                continue
            seen.add(parent)
            pkg = parent if f.name == "__init__.py" else ".".join(parts[: k - 1])
            todo += imported_modules(f.read_text(encoding="utf-8"), pkg)
    return {m for m in seen if not (module_file(m).name == "__init__.py" and docstring_only(module_file(m)))}  # type: ignore[union-attr]


def notebook_source(nb_path: Path) -> str:
    nb = json.loads(nb_path.read_text(encoding="utf-8"))
    cells = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
    return "\n".join(line for cell in cells for line in cell.splitlines() if not line.lstrip().startswith(("%", "!")))


def covered(module: str, deps: list[str]) -> bool:
    f = module_file(module)
    assert f is not None
    rel = f.relative_to(paths.ROOT).as_posix()
    return any(rel == d or rel.startswith(d.rstrip("/") + "/") for d in deps)


def stage_bodies() -> dict[str, dict]:
    return {name: body.get("do", body) for name, body in read_dvc_stages().items()}


@pytest.mark.parametrize("stage", sorted(stage_bodies()))
def test_stage_lists_every_module_its_notebook_reaches(stage: str) -> None:
    body = stage_bodies()[stage]
    deps = [str(d) for d in body.get("deps", [])]
    notebooks = [d for d in deps if d.startswith("notebooks/") and d.endswith(".ipynb")]
    assert notebooks, f"{stage}: no notebook among its deps"
    missing = sorted(m for m in reached(notebook_source(paths.ROOT / notebooks[0])) if not covered(m, deps))
    files = [str(module_file(m).relative_to(paths.ROOT)) for m in missing]  # type: ignore[union-attr]
    assert not files, f"dvc.yaml stage {stage!r} does not list modules its notebook reaches: {files}"


def test_the_import_walk_follows_lazy_and_dunder_imports() -> None:
    src = 'def f():\n    from big5chat.generation.dexperts import generate\nx = __import__("big5chat.psychometrics.logprob", fromlist=["x"])\n'
    got = reached(src)
    assert {"big5chat.generation.dexperts", "big5chat.generation.prefix_cache", "big5chat.psychometrics.logprob"} <= got
    assert "big5chat.generation.growing_cache" in got, "dexperts imports it: followed transitively"
