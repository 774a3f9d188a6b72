"""Stage dependencies that cannot drift: dvc.yaml's ``src/`` deps of every stage are exactly the modules its notebook
and stage module reach through their imports (``big5chat.stage_deps``); ``python -m big5chat deps`` rewrites them."""

from __future__ import annotations

from pathlib import Path

import pytest

from big5chat import paths, stage_deps


def test_dvc_yaml_deps_are_the_derived_ones() -> None:
    changed = stage_deps.sync(write=False)
    lines = [f"{stage}: listed {sorted(set(a) - set(b))} extra, {sorted(set(b) - set(a))} missing" for stage, (a, b) in changed.items()]
    assert not changed, "dvc.yaml deps differ from the derived ones (run `python -m big5chat deps`):\n" + "\n".join(lines)


def test_the_import_walk_follows_lazy_and_dunder_imports() -> None:
    src = 'def f():\n    from big5chat.generation.dexperts import generate\nx = __import__("big5chat.psychometrics.logprob", fromlist=["x"])\n'
    got = stage_deps.reached(src)
    assert {"big5chat.generation.dexperts", "big5chat.generation.prefix_cache", "big5chat.psychometrics.logprob"} <= got
    assert "big5chat.generation.growing_cache" in got, "dexperts imports it: followed transitively"


def test_infrastructure_is_neither_counted_nor_followed() -> None:
    got = stage_deps.reached("from big5chat import config, storage, paths\n")
    assert got == set(), f"the runner's infrastructure decides no number: {got}"


def test_a_folder_stands_for_its_files_only_when_all_are_reached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = tmp_path / "src" / "big5chat" / "pkg"
    pkg.mkdir(parents=True)
    for name in ("__init__.py", "a.py", "b.py"):
        (pkg / name).write_text('"""x"""\n', encoding="utf-8")
    monkeypatch.setattr(paths, "ROOT", tmp_path)
    every = {"src/big5chat/pkg/__init__.py", "src/big5chat/pkg/a.py", "src/big5chat/pkg/b.py"}
    assert stage_deps.collapse(every) == ["src/big5chat/pkg"]
    assert stage_deps.collapse(every - {"src/big5chat/pkg/b.py"}) == ["src/big5chat/pkg/__init__.py", "src/big5chat/pkg/a.py"]


def test_sync_rewrites_only_the_src_entries_and_keeps_comments(tmp_path: Path) -> None:
    nb = paths.ROOT / "notebooks" / "prepare_models.ipynb"
    dvc = tmp_path / "dvc.yaml"
    dvc.write_text(
        "# a comment that stays\nstages:\n  prepare_models:\n    cmd: python -m big5chat stage prepare_models\n"
        f"    deps:\n      - {nb.relative_to(paths.ROOT).as_posix()}\n      - src/big5chat/nothing.py\n      - data/sample\n",
        encoding="utf-8",
    )
    changed = stage_deps.sync(dvc, write=True)
    assert "prepare_models" in changed
    text = dvc.read_text(encoding="utf-8")
    assert text.startswith("# a comment that stays\n") and "src/big5chat/nothing.py" not in text
    assert "      - data/sample\n" in text and "      - src/big5chat/models/loading.py\n" in text
    assert stage_deps.sync(dvc, write=False) == {}, "a second sync finds nothing to change"
