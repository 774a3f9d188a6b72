"""The project's BFI-44 and IPIP-NEO-120 files: internally consistent, and item by item equal to shared/."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from big5chat.data.loaders import load_questionnaires

BFI_REVERSE = {6, 21, 31, 2, 12, 27, 37, 8, 18, 23, 43, 9, 24, 34, 35, 41}  # PAPER.md 2.8


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
