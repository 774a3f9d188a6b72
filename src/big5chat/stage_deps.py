"""Each stage's code dependencies, derived from its imports instead of kept by hand.

A stage depends on its notebook and on every project module that can decide a number, reached from the notebook by
following imports (function-level and ``__import__`` ones included, a module's parent packages too). Runner
infrastructure (paths, atomic writes, progress bars, the typed config, the CLI) decides no number and is left out, so
that adding a section for a new stage does not rerun the old ones; params are tracked by dvc.yaml's ``params``.

``python -m big5chat deps`` rewrites the ``src/`` entries of every stage's ``deps`` in dvc.yaml (comments and the
other entries kept); ``--check`` only reports stages whose lists differ (the test suite runs it).
"""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

from big5chat import paths

PACKAGE = "big5chat"
INFRASTRUCTURE = frozenset({
    "big5chat", "big5chat.__main__", "big5chat.paths", "big5chat.storage", "big5chat.progress", "big5chat.runtime",
    "big5chat.config", "big5chat.stage_runner", "big5chat.stage_deps", "big5chat.cli", "big5chat.plan",
    "big5chat.profiles",
})  # fmt: skip
SRC_PREFIX = "src/big5chat"


def src_root() -> Path:
    return paths.ROOT / "src"


def module_file(name: str) -> Path | None:
    """The file of a ``big5chat`` module (``a/b.py`` or ``a/b/__init__.py``), None if there is none."""
    rel = Path(*name.split("."))
    for f in (src_root() / rel.with_suffix(".py"), src_root() / rel / "__init__.py"):
        if f.is_file():
            return f
    return None


def imported_modules(source: str, package: str) -> set[str]:
    """The project modules a piece of code imports anywhere (function-level imports and ``__import__`` included)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith(PACKAGE)}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            if base.startswith(PACKAGE):
                out.add(base)
                out |= {f"{base}.{a.name}" for a in node.names if module_file(f"{base}.{a.name}")}
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "__import__" and node.args:
            arg = node.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and arg.value.startswith(PACKAGE):
                out.add(arg.value)
    return {m for m in out if module_file(m)}


def docstring_only(f: Path) -> bool:
    body = ast.parse(f.read_text(encoding="utf-8")).body
    return all(isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant) for n in body)


def reached(source: str) -> set[str]:
    """Every project module that can decide a number, reached from ``source`` through imports: parents of a module
    included (importing ``a.b.c`` runs ``a/__init__``) unless they hold only a docstring; infrastructure is neither
    counted nor followed."""
    todo, seen = list(imported_modules(source, PACKAGE)), set()
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
    """The code of a notebook's code cells (shell and magic lines left out)."""
    nb = json.loads(nb_path.read_text(encoding="utf-8"))
    cells = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
    return "\n".join(line for cell in cells for line in cell.splitlines() if not line.lstrip().startswith(("%", "!")))


def stage_module(stage: str) -> str | None:
    """``big5chat.stages.<stage>`` when that module exists: a stage depends on its module even before its notebook
    imports it by name."""
    name = f"{PACKAGE}.stages.{stage}"
    return name if module_file(name) else None


def code_deps(stage: str, notebook: Path) -> list[str]:
    """The sorted ``src/`` paths a stage depends on: its module and every module reached from its notebook; a
    package folder stands for its files when all of them are reached."""
    source = notebook_source(notebook)
    own = stage_module(stage)
    if own:
        source += f"\nimport {own}\n"
    files = {module_file(m).relative_to(paths.ROOT).as_posix() for m in reached(source)}  # type: ignore[union-attr]
    if own:
        files.add(module_file(own).relative_to(paths.ROOT).as_posix())  # type: ignore[union-attr]
    return collapse(files)


def collapse(files: set[str]) -> list[str]:
    """Replace the files of a package folder by the folder when every ``.py`` file below it is listed (an
    ``__init__.py`` that holds only a docstring need not be)."""
    out = set(files)
    folders = sorted({str(Path(f).parent) for f in files}, key=lambda d: d.count("/"))
    for folder in folders:
        if folder == SRC_PREFIX or not folder.startswith(SRC_PREFIX + "/"):
            continue
        below = {p.relative_to(paths.ROOT).as_posix() for p in (paths.ROOT / folder).rglob("*.py")}
        below = {f for f in below if "__pycache__" not in Path(f).parts and not (f.endswith("/__init__.py") and docstring_only(paths.ROOT / f))}
        if below and below <= files:
            out = {f for f in out if not f.startswith(folder + "/")} | {folder}
    return sorted(out)


def stage_bodies(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: body.get("do", body) for name, body in (data.get("stages") or {}).items()}


def derived_deps(body: dict[str, Any], stage: str) -> list[str]:
    """A stage's deps with the ``src/`` entries derived: the notebook first, then the code, then the rest as listed."""
    deps = [str(d) for d in body.get("deps") or []]
    notebooks = [d for d in deps if d.startswith("notebooks/") and d.endswith(".ipynb")]
    if not notebooks:
        raise ValueError(f"dvc.yaml stage {stage!r}: no notebook among its deps")
    others = [d for d in deps if d not in notebooks and not d.startswith(SRC_PREFIX)]
    return notebooks + code_deps(stage, paths.ROOT / notebooks[0]) + others


def _yaml() -> Any:
    from ruamel.yaml import YAML

    y = YAML()
    y.preserve_quotes = True
    y.width = 4096
    y.indent(mapping=2, sequence=4, offset=2)
    return y


def sync(dvc_file: Path | None = None, *, write: bool = True) -> dict[str, tuple[list[str], list[str]]]:
    """Derive every stage's ``src/`` deps; returns {stage: (listed, derived)} for the stages that differ and, with
    ``write``, rewrites dvc.yaml (atomically, comments kept)."""
    import io

    from big5chat import storage

    f = dvc_file or paths.DVC_FILE
    y = _yaml()
    data = y.load(f.read_text(encoding="utf-8"))
    changed: dict[str, tuple[list[str], list[str]]] = {}
    for name, body in stage_bodies(data).items():
        listed = [str(d) for d in body.get("deps") or []]
        derived = derived_deps(body, name)
        if listed != derived:
            changed[name] = (listed, derived)
            if write:
                deps = body["deps"]
                del deps[:]
                deps.extend(derived)
    if write and changed:
        buf = io.StringIO()
        y.dump(data, buf)
        storage.write_text(f, buf.getvalue())
    return changed
