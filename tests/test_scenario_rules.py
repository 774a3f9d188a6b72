"""The project's own SODA-format scenarios (issue 31 item 1): the study file follows the rules, and each rule catches a bad row."""

from __future__ import annotations

import copy
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from big5chat.data import loaders
from big5chat.data.scenario_rules import (
    HELDOUT_SCENARIOS,
    MAX_PAIR_USES,
    RELATIONS,
    SAMPLE_FILE,
    STUDY_FILE,
    file_problems,
    head_words,
    main,
    record_problems,
    sentences,
)
from big5chat.storage import read_jsonl

GOOD: dict[str, Any] = {
    "head": "PersonX carries PersonY's shopping up the hill", "relation": "xIntent", "tail": "to spare PersonY the climb",
    "literal": "Ada carries Bo's shopping up the hill because Ada wants to spare Bo the climb.",
    "narrative": "Bo lived at the top of a steep hill and the bus was not running. Ada met her at the shop and took the two heaviest bags.",
    "dialogue": ["Give me the heavy ones.", "Are you sure? There are tins in that one.", "All the more reason."],
    "speakers": ["Ada", "Bo", "Ada"], "PersonX": "Ada", "PersonY": "Bo", "PersonZ": "", "original_index": 1, "split": "train",
    "head_answer": "Yes", "pmi_head_answer": "Yes", "relation_tail_answer": "Yes", "pmi_relation_tail_answer": "Yes",
}  # fmt: skip


def row(**changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(GOOD)
    out.update(changes)
    return out


def only(problems: list[str], rule: str, row_number: int = 1) -> str:
    """The one problem of a rule, checking that it names the row and the rule."""
    hits = [p for p in problems if f"[{rule}]" in p]
    assert len(hits) == 1, problems
    assert f":{row_number}: [{rule}]" in hits[0], hits[0]
    return hits[0]


# ------------------------------------------------------------------- the study file


@pytest.fixture(scope="module")
def study() -> list[dict[str, Any]]:
    return read_jsonl(STUDY_FILE)


def test_the_study_scenarios_follow_every_rule(study: list[dict[str, Any]]) -> None:
    reference = [r["head"] for r in read_jsonl(SAMPLE_FILE)]
    problems = file_problems(study, str(STUDY_FILE), reference_train=reference)
    assert problems == [], "\n".join(problems[:20])


def test_the_study_scenarios_have_a_fixed_held_out_set_and_spread_over_the_relations(study: list[dict[str, Any]]) -> None:
    splits = Counter(r["split"] for r in study)
    assert len(study) >= 640 and splits["test"] == HELDOUT_SCENARIOS and splits["train"] >= 500, splits
    by_relation = Counter((r["relation"], r["split"]) for r in study)
    for relation in RELATIONS:
        assert by_relation[relation, "train"] >= 30 and by_relation[relation, "test"] >= 8, (relation, by_relation)
    assert sorted(r["original_index"] for r in study) == list(range(910001, 910001 + len(study)))
    names = Counter(n for r in study for n in (r["PersonX"], r["PersonY"]))
    assert len(names) >= len(study) and max(names.values()) <= 5, names.most_common(3)


def test_the_study_scenarios_are_new_next_to_the_sample_scenarios(study: list[dict[str, Any]]) -> None:
    sample = read_jsonl(SAMPLE_FILE)
    assert not {r["head"] for r in study} & {r["head"] for r in sample}
    assert not {r["original_index"] for r in study} & {r["original_index"] for r in sample}
    assert set(study[0]) == set(sample[0]), "the same fields as data/sample/soda_scenarios.jsonl"


def test_the_study_scenarios_load_with_the_scenario_loader(study: list[dict[str, Any]]) -> None:
    table = loaders.load_scenarios(STUDY_FILE)
    assert len(table) == len(study)
    assert table.rows[0]["PersonX"] == study[0]["PersonX"] and table.rows[0]["original_index"] == 910001


def test_the_command_line_reports_no_problem_for_the_study_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    out = capsys.readouterr().out
    assert out.rstrip().endswith("0 problem(s)") and f"'test': {HELDOUT_SCENARIOS}" in out


# ------------------------------------------------------------------- each rule catches a bad row


def test_a_good_row_has_no_problem() -> None:
    assert record_problems(GOOD) == []
    assert file_problems([GOOD], n_test=None, min_train=None) == []


def test_missing_fields_and_wrong_types() -> None:
    bad = row()
    del bad["narrative"]
    assert "missing field(s) ['narrative']" in only(record_problems(bad, "f.jsonl", 3), "fields", 3)
    assert "original_index is str, not int" in only(record_problems(row(original_index="7"), "f.jsonl", 2), "types", 2)
    assert "dialogue is str" in only(record_problems(row(dialogue="Hello."), "f.jsonl", 5), "types", 5)
    assert "unknown field(s) ['mood']" in only(record_problems(row(mood="happy"), "f.jsonl", 4), "fields", 4)


def test_names_head_relation_and_literal() -> None:
    only(record_problems(row(PersonY="Ada"), "f", 2), "names", 2)
    assert "does not contain 'PersonX'" in only(record_problems(row(head="Ada carries the shopping"), "f", 2), "head", 2)
    assert "relation 'xFeels'" in only(record_problems(row(relation="xFeels"), "f", 6), "relation", 6)
    literal = record_problems(row(literal="Ada carries the shopping up the hill."), "f", 7)
    assert any("[literal]" in p and "both PersonX" in p for p in literal) and all(":7: [literal]" in p for p in literal if "[literal]" in p)
    assert "placeholder" in " ".join(record_problems(row(literal=GOOD["literal"] + " PersonY smiles."), "f", 8))


def test_narrative_length_sentences_and_names() -> None:
    long = " ".join(["Bo and Ada walked up the hill."] * 12)
    assert "words" in only(record_problems(row(narrative=long), "f", 9), "narrative-length", 9)
    one = "Bo lived at the top of a steep hill and Ada met her at the shop and took the two heaviest bags home."
    assert "1 sentences" in only(record_problems(row(narrative=one), "f", 9), "narrative-sentences", 9)
    nameless = "She lived at the top of a steep hill. Her friend met her at the shop and took the two heaviest bags for her."
    only(record_problems(row(narrative=nameless), "f", 10), "narrative-names", 10)
    assert sentences(GOOD["narrative"]) == 2 and sentences('He shouted "Welcome home!" at the door. She laughed.') == 2


def test_dialogue_turns_and_speakers() -> None:
    one = row(dialogue=["Hello."], speakers=["Ada"])
    assert "1 turns" in only(record_problems(one, "f", 11), "dialogue-turns", 11)
    seven = row(dialogue=["Hi."] * 7, speakers=["Ada", "Bo"] * 3 + ["Ada"])
    assert "7 turns" in only(record_problems(seven, "f", 12), "dialogue-turns", 12)
    only(record_problems(row(speakers=["Bo", "Ada", "Bo"]), "f", 13), "speakers", 13)
    only(record_problems(row(speakers=["Ada", "Bo"]), "f", 14), "speakers", 14)


def test_forbidden_trait_words_anywhere() -> None:
    assert "['nervous']" in only(record_problems(row(dialogue=["I'm so nervous.", "Why?", "Hills."]), "f", 15), "forbidden-words", 15)
    assert "['helpful']" in only(record_problems(row(tail="to be helpful"), "f", 16), "forbidden-words", 16)


def test_split_values() -> None:
    only(record_problems(row(split="dev"), "f", 17), "split", 17)


def test_unique_index_and_head_and_name_pairs() -> None:
    a, b = row(), row(original_index=2, PersonX="Cy", PersonY="Di", literal=GOOD["literal"].replace("Ada", "Cy").replace("Bo", "Di"),
                      narrative=GOOD["narrative"].replace("Ada", "Cy").replace("Bo", "Di"), speakers=["Cy", "Di", "Cy"])  # fmt: skip
    problems = file_problems(
        [a, row(head="PersonX walks PersonY home", literal="Ada walks Bo home because Ada wants to spare Bo the climb.")],
        "f",
        n_test=None,
        min_train=None,
    )
    assert "original_index 1 already used in row 1" in only(problems, "unique-index", 2)
    assert "already used in row 1" in only(file_problems([a, b], "f", n_test=None, min_train=None), "unique-head", 2)
    same_pair = [row(original_index=i, head=f"PersonX carries PersonY's shopping up hill {i}", literal=f"Ada carries Bo's shopping up hill {i} because Ada wants to spare Bo the climb.") for i in range(MAX_PAIR_USES + 1)]  # fmt: skip
    assert "['Ada', 'Bo']" in only(file_problems(same_pair, "f", n_test=None, min_train=None), "name-pair", MAX_PAIR_USES + 1)


def test_held_out_heads_stay_apart_from_training_heads() -> None:
    assert head_words("PersonX shares her umbrella with PersonY at the bus stop") == head_words(
        "PersonX shares his umbrella with PersonY at the bus stop"
    )
    train = row()
    near = row(original_index=2, split="test", head="PersonX carries PersonY's shopping bags up the hill", literal="Ada carries Bo's shopping bags up the hill because Ada wants to spare Bo the climb.")  # fmt: skip
    assert "train row 1" in only(file_problems([train, near], "f", n_test=None, min_train=None), "heldout-head", 2)
    apart = row(original_index=2, split="test", head="PersonX mends PersonY's bicycle tyre", literal="Ada mends Bo's bicycle tyre because Ada wants to spare Bo the climb.")  # fmt: skip
    assert file_problems([train, apart], "f", n_test=None, min_train=None) == []
    reference = file_problems(
        [row(split="test")], "f", reference_train=["PersonX carries PersonY's shopping bags up the hill"], n_test=None, min_train=None
    )
    assert "a reference training scenario" in only(reference, "heldout-head", 1)
    repeated = file_problems([row()], "f", reference_train=[GOOD["head"]], n_test=None, min_train=None)
    assert "already used in a reference training scenario" in only(repeated, "unique-head", 1)


def test_split_counts() -> None:
    problems = file_problems([row()], "f", n_test=140, min_train=500)
    assert any(":0: [split-counts] 0 held-out scenarios (need exactly 140)" in p for p in problems)
    assert any(":0: [split-counts] 1 training scenarios (need at least 500)" in p for p in problems)


def test_the_command_line_fails_on_a_bad_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "bad.jsonl"
    f.write_text(json.dumps(GOOD) + "\n" + json.dumps(row(original_index=2, head="PersonX is calm with PersonY", literal="Ada is calm with Bo because Ada wants to spare Bo the climb.")) + "\n")  # fmt: skip
    assert main([str(f)]) == 1
    out = capsys.readouterr().out
    assert f"{f}:2: [forbidden-words] forbidden word(s) ['calm']" in out and out.rstrip().endswith("1 problem(s)")
