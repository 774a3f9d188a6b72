"""The bad-input matrix (docs/troubleshooting.md): every input a user can get wrong is named by the check that
`make repro` runs before `dvc repro` (`python -m big5chat validate`), and nothing already produced is touched.

Each case edits a copy of the project, runs the check, and compares every file under data/ and reports/ before and
after. The stage-level failures (a model folder the loading policy refuses, a failing notebook cell) are in
test_pipeline.py, where a finished smoke run exists to lose."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from conftest import copy_project, run

Edit = Callable[[Path, dict], None]


def _param(section: str, key: str, value: object) -> Edit:
    def edit(project: Path, params: dict) -> None:
        params[section][key] = value

    return edit


def _posts(content: bytes) -> Edit:
    def edit(project: Path, params: dict) -> None:
        (project / "bad_posts.csv").write_bytes(content)
        params["data"]["posts"]["path"] = "bad_posts.csv"

    return edit


HEADER = b"message_id,message,ope_z,con_z,ext_z,agr_z,neu_z\n"
GOOD = b"p1,I love trying new recipes from far away places,1.2,0.1,0.3,0.2,-0.4\n"


def _scenarios(text: str) -> Edit:
    def edit(project: Path, params: dict) -> None:
        (project / "bad_scenarios.jsonl").write_text(text, encoding="utf-8")
        params["data"]["scenarios"]["path"] = "bad_scenarios.jsonl"

    return edit


def _benchmark(line: str) -> Edit:
    def edit(project: Path, params: dict) -> None:
        (project / "bad_piqa.jsonl").write_text(line + "\n", encoding="utf-8")
        params["data"]["benchmarks"]["piqa"]["path"] = "bad_piqa.jsonl"

    return edit


def _instrument_without_column(project: Path, params: dict) -> None:
    inst = project / "data/instruments"
    lines = (inst / "bfi44.csv").read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    keep = [i for i, h in enumerate(header) if h != "reverse"]
    (inst / "bfi44.csv").write_text("\n".join(",".join(c for i, c in enumerate(r.split(",")) if i in keep) for r in lines) + "\n", encoding="utf-8")


CASES: dict[str, tuple[Edit, str]] = {
    "param: missing key": (lambda p, d: d["models"].pop("base"), "models.base: missing key"),
    "param: typo": (
        lambda p, d: d["prepare_data"].update(splitmethod=d["prepare_data"].pop("split_method")),
        "did you mean 'prepare_data.split_method'",
    ),
    "param: wrong type": (_param("train_sft", "learning_rate", "fast"), "train_sft.learning_rate: expected float"),
    "param: out of range": (_param("prepare_data", "test_size", 1.5), "prepare_data.test_size: 1.5 is out of range"),
    "param: unknown trait": (lambda p, d: d.update(traits=["openess"]), "traits[0]: unknown trait 'openess'"),
    "param: unknown method": (
        _param("assess_personality", "methods", ["direct", "prompt_foo"]),
        "assess_personality.methods[1]: unknown method 'prompt_foo'",
    ),
    "param: unknown task": (_param("evaluate_reasoning", "tasks", ["arc"]), "evaluate_reasoning.tasks[0]: unknown value 'arc'"),
    "model: missing folder": (
        lambda p, d: d["models"].update(base={**d["models"]["base"], "kind": "local", "name": "no/such/model"}),
        "models.base.name: folder not found",
    ),
    "data: missing file": (lambda p, d: d["data"]["posts"].update(path="data/nope.csv"), "data.posts.path: file not found: data/nope.csv"),
    "data: empty file": (_posts(b""), "bad_posts.csv: the file is empty"),
    "data: missing column": (_posts(b"message_id,message,ope_z,con_z,ext_z,agr_z\np1,hello there friend,1,1,1,1\n"), "missing column(s) neu_z"),
    "data: malformed row": (_posts(HEADER + GOOD + b"p2,too few fields,1\n"), "bad_posts.csv, row 2 (line 3)"),
    "data: bad value": (_posts(HEADER + GOOD + b"p2,a post with a bad score,high,0,0,0,0\n"), "ope_z"),
    "data: wrong encoding": (_posts(HEADER + GOOD + "p2,caf\xe9 time with friends today,0,0,0,0,0\n".encode("latin-1")), "line 3: not valid UTF-8"),
    "data: duplicate ids": (_posts(HEADER + GOOD + GOOD), "duplicate message_id 'p1'"),
    "data: malformed JSON line": (_scenarios('{"narrative": "x"\n'), "bad_scenarios.jsonl, row 1 (line 1): malformed JSON"),
    "data: bad benchmark label": (_benchmark('{"goal": "g", "sol1": "a", "sol2": "b", "label": 2}'), "bad_piqa.jsonl"),
    "data: instrument missing a column": (_instrument_without_column, "bfi44.csv"),
}


def _snapshot(project: Path) -> dict[str, str]:
    return {
        f.relative_to(project).as_posix(): hashlib.sha256(f.read_bytes()).hexdigest()
        for top in ("data", "reports")
        for f in sorted((project / top).rglob("*"))
        if f.is_file()
    }


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = copy_project(tmp_path_factory.mktemp("bad_inputs") / "project")
    # Stand-ins for earlier outputs, to show the check leaves them alone.
    for rel in ("data/processed/posts.csv", "reports/metrics/prepare_data.json"):
        (p / rel).parent.mkdir(parents=True, exist_ok=True)
        (p / rel).write_text(f"an earlier output: {rel}\n", encoding="utf-8")
    return p


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_named_before_anything_runs(project: Path, case: str) -> None:
    edit, words = CASES[case]
    params_file = project / "params.yaml"
    original = params_file.read_text(encoding="utf-8")
    instruments = {f: f.read_bytes() for f in (project / "data/instruments").iterdir()}
    params = yaml.safe_load(original)
    edit(project, params)
    params_file.write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    before = _snapshot(project)
    try:
        proc = run(["python", "-m", "big5chat", "validate"], project, timeout=300)
        after = _snapshot(project)
    finally:
        params_file.write_text(original, encoding="utf-8")
        for f, content in instruments.items():
            f.write_bytes(content)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert words in proc.stderr, proc.stderr
    assert after == before, "the check changed files"


def test_the_unedited_project_passes_the_check(project: Path) -> None:
    proc = run(["python", "-m", "big5chat", "validate"], project, timeout=300)
    assert proc.returncode == 0 and "local input files load" in proc.stdout, proc.stderr
