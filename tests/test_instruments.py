"""The project's BFI-44 and IPIP-NEO-120 files: internally consistent, and item by item equal to shared/."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from big5chat.data.loaders import load_questionnaires

BFI_REVERSE = {6, 21, 31, 2, 12, 27, 37, 8, 18, 23, 43, 9, 24, 34, 35, 41}  # docs/paper.md §2.8


@pytest.fixture(scope="module")
def project() -> dict:
    return load_questionnaires("data/instruments")


def test_bfi_keys_and_domains(project: dict) -> None:
    rows = project["BFI"]["items"].rows
    assert {r["item"] for r in rows if r["reverse"]} == BFI_REVERSE
    by_domain = {d: [r["item"] for r in rows if r["domain"] == d] for d in "OCEAN"}
    assert by_domain["E"] == list(range(1, 37, 5))
    assert by_domain["O"] == [*range(5, 41, 5), 41, 44]


def test_ipip_cyclic_order_and_facets(project: dict) -> None:
    rows = project["IPIP-NEO"]["items"].rows
    assert sum(r["reverse"] for r in rows) == 55
    for r in rows:
        i = r["item"]
        assert r["domain"] == "NEOAC"[(i - 1) % 5]
        assert r["facet_code"] == f"{r['domain']}{((i - 1) % 30) // 5 + 1}"
        assert r["text"] == f"You {r['mpi_text'].lower()}."


@pytest.mark.shared
def test_instruments_match_shared_item_by_item(shared_data: Path, project: dict) -> None:
    d = shared_data / "instruments"
    bfi = list(csv.DictReader(open(d / "bfi44_items.csv", encoding="utf-8")))
    ours = project["BFI"]["items"].rows
    assert len(bfi) == len(ours) == 44
    for theirs, mine in zip(bfi, ours):
        assert int(theirs["item"]) == mine["item"]
        assert theirs["text"] == mine["text"]
        assert theirs["trait"][0] == mine["domain"]
        assert int(theirs["reverse_keyed"]) == mine["reverse"]
    ipip = list(csv.DictReader(open(d / "ipip_neo_120_items.csv", encoding="utf-8")))
    ours = project["IPIP-NEO"]["items"].rows
    assert len(ipip) == len(ours) == 120
    for theirs, mine in zip(ipip, ours):
        # Facet names: MPI writes "Self-efficacy", the shared derived file "Self-Efficacy".
        assert (int(theirs["item"]), theirs["text"], theirs["domain"], theirs["facet_code"], theirs["facet"].lower()) == (
            mine["item"], mine["mpi_text"], mine["domain"], mine["facet_code"], mine["facet"].lower())  # fmt: skip
        assert (theirs["key"] == "-1") == bool(mine["reverse"])
    study = {q["name"]: q for q in json.loads((d / "questionnaires_big5chat_psychobench.json").read_text())}
    for name in ("BFI", "IPIP-NEO"):
        assert study[name]["prompt"] == project[name]["prompt"]
        assert sorted(study[name]["reverse"]) == sorted(r["item"] for r in project[name]["items"].rows if r["reverse"])
        for item in project[name]["items"].rows:
            assert study[name]["questions"][str(item["item"])] == item["text"], (name, item["item"])
        for cat in study[name]["categories"]:
            crowd = cat["crowd"][0]
            dom = cat["cat_name"][0]
            assert project[name]["norms"]["mean"][dom] == crowd["mean"]
            assert project[name]["norms"]["sd"][dom] == crowd["std"]
            assert sorted(cat["cat_questions"]) == [r["item"] for r in project[name]["items"].rows if r["domain"] == dom]


def fork_rendered_items(questionnaire: dict, tmp: Path) -> list[str]:
    """The study fork's path from questionnaire to item text, redone here: ``generate_testfile`` writes
    ``"{index}. {question}"`` into a CSV column (csv.writer, original order), ``example_generator`` reads the column
    back with pandas and sends ``q.split('.')[1]`` of each cell."""
    import pandas as pd

    path = tmp / "testfile.csv"
    questions = [f"{i}. {questionnaire['questions'][k]}" for i, k in enumerate(questionnaire["questions"], 1)]
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(zip(*[[f"Prompt: {questionnaire['prompt']}", *questions], ["order-0", *questionnaire["questions"]]]))
    column = pd.read_csv(path).iloc[:, 0].astype(str)
    return [q.split(".")[1] for q in column]


@pytest.mark.parametrize("name", ["BFI", "IPIP-NEO"])
def test_items_render_as_the_study_fork_sends_them(shared_data: Path, project: dict, name: str, tmp_path: Path) -> None:
    from big5chat.psychometrics.conditions import Condition, messages, prefix

    study = {q["name"]: q for q in json.loads((shared_data / "instruments" / "questionnaires_big5chat_psychobench.json").read_text())}
    expected = fork_rendered_items(study[name], tmp_path)
    items = project[name]["items"].rows
    assert len(expected) == len(items) == len(study[name]["questions"])
    cond = Condition("prompt_inst", "extraversion", "high")
    for item, theirs in zip(items, expected):
        # the fork's user message: prompt_prefix + "\n" + (questionnaire["prompt"] + "\n" + item); direct: no prefix
        assert messages(Condition("direct"), project[name]["prompt"], item["text"]) == [
            {"role": "user", "content": study[name]["prompt"] + "\n" + theirs}]  # fmt: skip
        assert messages(cond, project[name]["prompt"], item["text"])[0]["content"] == prefix(cond) + "\n" + study[name]["prompt"] + "\n" + theirs
    assert expected[0] == (" Is talkative" if name == "BFI" else " You worry about things")


def test_item_rendering_values(project: dict) -> None:
    from big5chat.psychometrics.conditions import Condition, messages, rendered_item

    assert rendered_item("Is talkative.") == " Is talkative"
    assert rendered_item("Is talkative.", "plain") == "Is talkative."
    assert rendered_item("Tends to be lazy") == " Tends to be lazy"
    assert messages(Condition("direct"), "Rate it.", "Is talkative.", rendering="plain")[0]["content"] == "Rate it.\nIs talkative."
    for name in ("BFI", "IPIP-NEO"):  # every item ends in its only period: the study's rendering drops just that
        assert all(rendered_item(r["text"]) == " " + r["text"][:-1] for r in project[name]["items"].rows)


def _with_tipi(tmp_path: Path) -> Path:
    """The project's instruments plus a third, 7-point questionnaire (TIPI-like items written here)."""
    import shutil

    folder = tmp_path / "instruments"
    shutil.copytree("data/instruments", folder)
    items = [("Extraverted, enthusiastic.", "E", 0), ("Critical, quarrelsome.", "A", 1), ("Dependable, self-disciplined.", "C", 0),
             ("Anxious, easily upset.", "N", 0), ("Open to new experiences, complex.", "O", 0), ("Reserved, quiet.", "E", 1)]  # fmt: skip
    with open(folder / "tipi.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["item", "text", "domain", "reverse"])
        w.writerows((i, t, d, r) for i, (t, d, r) in enumerate(items, start=1))
    meta = json.loads((folder / "questionnaires.json").read_text())
    meta["instruments"]["TIPI"] = {"items_file": "tipi.csv", "prompt": "Rate the statement from 1 to 7.", "scale_min": 1, "scale_max": 7}
    (folder / "questionnaires.json").write_text(json.dumps(meta))
    return folder


def test_a_new_instrument_is_discovered_from_its_files(tmp_path: Path) -> None:
    """Adding a questionnaire is an entry in questionnaires.json and its item file: its item count, scale and keys are
    read from the data, params accept its name, and its reverse-keyed items score as (min + max) - x."""
    from big5chat.data.loaders import instrument_names
    from big5chat.psychometrics.administer import administer, score_answers
    from big5chat.psychometrics.conditions import Condition

    folder = _with_tipi(tmp_path)
    assert instrument_names(folder) == ["BFI", "IPIP-NEO", "TIPI"]
    tipi = load_questionnaires(folder, ["TIPI"])
    assert list(tipi) == ["TIPI"] and tipi["TIPI"]["n_items"] == 6 and len(tipi["TIPI"]["option_labels"]) == 7

    def sample(groups: list) -> list[list[str]]:
        return [["7"] * len(convs) for convs, _ in groups]

    out = score_answers(administer(None, None, [Condition("direct")], tipi, mode="generate", runs=1, sampler=sample), tipi)
    scores = dict(zip(out["item"], out["score"]))
    assert scores[1] == 7 and scores[2] == 1 and scores[6] == 1  # reverse-keyed on a 1..7 scale: 8 - 7


@pytest.mark.parametrize(
    "change, words",
    [
        (lambda m: m["instruments"]["TIPI"].update(n_items=5), "n_items 5 but"),
        (lambda m: m["instruments"]["TIPI"].update(scale_max=1), "must be below scale_max"),
        (lambda m: m["instruments"]["TIPI"].update(option_labels=["a", "b"]), "2 option_labels for a 1..7 scale"),
        (lambda m: m["instruments"]["TIPI"].pop("prompt"), "'prompt' must be a str"),
    ],
)
def test_a_bad_instrument_entry_is_named(tmp_path: Path, change, words: str) -> None:  # type: ignore[no-untyped-def]
    from big5chat.data.tables import DataError

    folder = _with_tipi(tmp_path)
    meta = json.loads((folder / "questionnaires.json").read_text())
    change(meta)
    (folder / "questionnaires.json").write_text(json.dumps(meta))
    with pytest.raises(DataError, match="TIPI") as exc:
        load_questionnaires(folder)
    assert words in str(exc.value)
    with pytest.raises(DataError, match="has no questionnaire 'MMPI'"):
        load_questionnaires("data/instruments", ["BFI", "MMPI"])
