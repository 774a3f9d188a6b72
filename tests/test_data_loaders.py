"""Loaders: every bad input is an error naming file, row and column; good files load completely."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from big5chat.config import DataSource
from big5chat.data import loaders
from big5chat.data.tables import DataError

HEADER = "message_id,message,ope_z,con_z,ext_z,agr_z,neu_z\n"
GOOD = "p1,I love trying new recipes from far away places,1.2,0.1,0.0,-0.3,0.2\n"
LEVELS = "message_id,message,ope_level,con_level,ext_level,agr_level,neu_level\n"


def _write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    f = tmp_path / name
    if isinstance(content, bytes):
        f.write_bytes(content)
    else:
        f.write_text(content, encoding="utf-8")
    return f


@pytest.mark.parametrize(
    ("content", "where", "words"),
    [
        ("", "posts.csv", "the file is empty"),
        (HEADER, "posts.csv", "has a header but no rows"),
        ("message_id,message,ope_z,con_z,ext_z,agr_z\n" + "p1,hi there,1,1,1,1\n", "posts.csv", "missing column(s) neu_z"),
        (HEADER + GOOD + "p2,too few fields,1,2\n", "posts.csv, row 2 (line 3)", "has 4 fields but the header has 7"),
        (HEADER + GOOD + "p2,a fine message here,abc,0,0,0,0\n", "posts.csv, row 2 (line 3), column 'ope_z'", "expected a number, got 'abc'"),
        (HEADER + GOOD + "p2,a fine message here,nan,0,0,0,0\n", "column 'ope_z'", "expected a finite number"),
        (HEADER + GOOD + "p2,,0,0,0,0,0\n", "posts.csv, row 2 (line 3), column 'message'", "is empty"),
        (HEADER + GOOD + GOOD, "posts.csv, row 2 (line 3)", "duplicate message_id 'p1' (first seen in row 1)"),
        (HEADER + 'p1,"an unclosed quote,1,1,1,1,1\n', "posts.csv", "has 2 fields but the header has 7"),
        ("message_id,message,message,ope_z\n", "posts.csv, line 1", "duplicate column name(s)"),
        ("message_id,message,score\np1,hello there friends,1\n", "posts.csv", "no trait label columns: needs z-scores or levels"),
        ("message,ope_level,con_level\nhello there friends,high,\n", "posts.csv", "missing column(s) ext_level, agr_level, neu_level"),
        (LEVELS + "p1,a fine message here,higher,,,,\n", "posts.csv, row 1 (line 2), column 'ope_level'", "unknown level 'higher'"),
        (LEVELS + "p1,a fine message here,3,,,,\n", "column 'ope_level'", "expected high, median or low, or 0/1/2"),
    ],
)
def test_bad_posts_files(tmp_path: Path, content: str, where: str, words: str) -> None:
    f = _write(tmp_path, "posts.csv", content)
    with pytest.raises(DataError) as exc:
        loaders.load_posts(f)
    msg = str(exc.value)
    assert where in msg and words in msg, msg


def test_wrong_encoding_names_the_line(tmp_path: Path) -> None:
    f = _write(tmp_path, "posts.csv", (HEADER + GOOD + "p2,caf\xe9 time with friends today,0,0,0,0,0\n").encode("latin-1"))
    with pytest.raises(DataError, match=r"posts.csv, line 3: not valid UTF-8 \(byte 0xe9\)"):
        loaders.load_posts(f)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="nope.csv: file not found"):
        loaders.load_posts(tmp_path / "nope.csv")


def test_good_posts_keep_unicode_and_extra_columns(tmp_path: Path) -> None:
    f = _write(tmp_path, "posts.csv", "message_id,message,ope_z,con_z,ext_z,agr_z,neu_z,source\n"
               "p1,\"Café, crêpes & 🎉 — what a day\",1.5,0,0,0,0,blog\n")  # fmt: skip
    t = loaders.load_posts(f)
    assert t.rows[0]["message"] == "Café, crêpes & 🎉 — what a day"
    assert t.rows[0]["source"] == "blog" and t.extra_columns == ["source"]
    assert t.rows[0]["author_id"] is None


def test_missing_trait_values_are_unlabelled_not_invented(tmp_path: Path) -> None:
    f = _write(tmp_path, "posts.csv", HEADER + GOOD + "p2,only one trait is known here,,-0.8,,,\n")
    rows = loaders.load_posts(f).rows
    assert rows[1]["con_z"] == -0.8 and rows[1]["ope_z"] is None and rows[1]["neu_z"] is None


def test_level_files_in_both_layouts(tmp_path: Path) -> None:
    ours = _write(tmp_path, "ours.csv", LEVELS + "p1,a fine message here,HIGH,,Median,low,\n")
    row = loaders.load_posts(ours).rows[0]
    assert (row["ope_level"], row["con_level"], row["ext_level"], row["agr_level"], row["neu_level"]) == ("high", None, "median", "low", None)
    # PsychGenerator's level files: 0/1/2 = low/median/high, no message_id, an unnamed index column.
    pg = _write(tmp_path, "pg.csv", ",message,ope_z_label,con_z_label,ext_z_label,agr_z_label,neu_z_label\n"
                "0,first real post here,0,2,1,0,2\n1,second real post here,2,2,2,2,0\n")  # fmt: skip
    rows = loaders.load_posts(pg).rows
    assert [r["message_id"] for r in rows] == ["row_000001", "row_000002"]
    assert (rows[0]["ope_level"], rows[0]["con_level"], rows[0]["ext_level"]) == ("low", "high", "median")
    assert "ope_z_label" not in rows[0] and "ope_z" not in rows[0]
    jl = _write(tmp_path, "pg.jsonl", json.dumps({"message": "a json post here", "ope_z_label": 2, "con_z_label": 0,
                                                   "ext_z_label": None, "agr_z_label": 1, "neu_z_label": "2"}) + "\n")  # fmt: skip
    row = loaders.load_posts(jl).rows[0]
    assert (row["ope_level"], row["con_level"], row["ext_level"], row["neu_level"]) == ("high", "low", None, "high")


@pytest.mark.parametrize(
    ("lines", "where", "words"),
    [
        (['{"head": "x"', ""], "scen.jsonl, row 1 (line 1)", "malformed JSON"),
        (["[1, 2]"], "scen.jsonl, row 1 (line 1)", "must be a JSON object"),
        (['{"original_index": 1, "head": "h"}'], "scen.jsonl, row 1 (line 1), column 'relation'", "missing field"),
    ],
)
def test_bad_scenarios_files(tmp_path: Path, lines: list[str], where: str, words: str) -> None:
    f = _write(tmp_path, "scen.jsonl", "\n".join(lines) + "\n")
    with pytest.raises(DataError) as exc:
        loaders.load_scenarios(f)
    assert where in str(exc.value) and words in str(exc.value), str(exc.value)


def _dialogue_row(**over: object) -> dict[str, object]:
    row: dict[str, object] = {
        "original_index": 7, "env_idx": 0, "trait": "O", "level": "High", "relation": "xIntent", "head": "h",
        "tail": "t", "literal": "l", "narrative": "n", "personx": "Ann", "persony": "Bo",
        "train_instruction": "i", "train_input": "hello", "train_output": "hi",
    }  # fmt: skip
    row.update(over)
    return row


def test_dialogues_normalise_trait_and_level_and_reject_unknown(tmp_path: Path) -> None:
    import pandas as pd

    f = tmp_path / "d.csv"
    pd.DataFrame([_dialogue_row(), _dialogue_row(trait="Neuroticism", level="low")]).to_csv(f, index=False)
    t = loaders.load_dialogues(f)
    assert [(r["trait"], r["level"]) for r in t.rows] == [("openness", "high"), ("neuroticism", "low")]
    pd.DataFrame([_dialogue_row(), _dialogue_row(trait="humour")]).to_csv(f, index=False)
    with pytest.raises(DataError, match=r"d.csv, row 2 \(line 3\), column 'trait': unknown trait 'humour'"):
        loaders.load_dialogues(f)
    pd.DataFrame([_dialogue_row(), _dialogue_row()]).to_csv(f, index=False)
    with pytest.raises(DataError, match=r"duplicate original_index, trait, level \(7, 'openness', 'high'\)"):
        loaders.load_dialogues(f)


def test_json_table_must_be_a_list(tmp_path: Path) -> None:
    f = _write(tmp_path, "t.json", json.dumps({"rows": []}))
    with pytest.raises(DataError, match="must be a list of objects"):
        loaders.load_scenarios(f)


@pytest.mark.parametrize(
    ("task", "item", "column", "words"),
    [
        ("mmlu", {"question": "q", "subject": "s", "choices": ["a", "b", "c"], "answer": 0}, "choices", "needs 4 choices"),
        ("mmlu", {"question": "q", "subject": "s", "choices": ["a", "b", "c", "d"], "answer": 4}, "answer", "is not one of"),
        ("piqa", {"goal": "g", "sol1": "a", "sol2": "b", "label": 2}, "label", "is not one of"),
        ("gsm8k", {"question": "q", "answer": "42"}, "answer", "no '#### <answer>' line"),
        (
            "truthfulqa_mc",
            {"question": "q", "mc1_targets": {"choices": ["a"], "labels": [0]}, "mc2_targets": {"choices": ["a"], "labels": [1]}},
            "mc1_targets",
            "at least one 1",
        ),  # fmt: skip
    ],
)
def test_bad_benchmark_items(tmp_path: Path, task: str, item: dict, column: str, words: str) -> None:
    f = _write(tmp_path, f"{task}.jsonl", json.dumps(item) + "\n")
    with pytest.raises(DataError) as exc:
        loaders.load_benchmark(task, f)
    assert f"column '{column}'" in str(exc.value) and words in str(exc.value), str(exc.value)


def test_hub_source_offline_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    src = DataSource(hub_id="big5chat-tests/no-such-dataset", revision="main")
    with pytest.raises(DataError) as exc:
        loaders.load_scenarios(src)
    assert "hub:big5chat-tests/no-such-dataset@main[train]" in str(exc.value)
    assert "HF_HUB_OFFLINE=1" in str(exc.value)


def test_project_sample_data_loads_completely() -> None:
    assert len(loaders.load_posts("data/sample/posts.csv")) >= 500
    assert len(loaders.load_scenarios("data/sample/soda_scenarios.jsonl")) >= 60
    for task in ("gsm8k", "mathqa", "commonsense_qa", "piqa", "social_iqa", "truthfulqa_mc", "mmlu", "gpqa"):
        assert len(loaders.load_benchmark(task, f"data/sample/benchmarks/{task}.jsonl")) >= 25, task
    q = loaders.load_questionnaires("data/instruments")
    assert len(q["BFI"]["items"]) == 44 and len(q["IPIP-NEO"]["items"]) == 120


@pytest.mark.shared
@pytest.mark.parametrize(
    ("task", "rel", "n"),
    [
        ("commonsense_qa", "commonsenseqa/dev_rand_split.jsonl", 1221),
        ("piqa", "piqa/valid.jsonl", 1838),
        ("social_iqa", "socialiqa/dev.jsonl", 1954),
        ("truthfulqa_mc", "truthfulqa/mc_task.json", 817),
        ("mathqa", "mathqa/test_subset_1000.jsonl", 1000),
        ("gsm8k", "gsm8k/test.jsonl", 1319),
    ],
)
def test_official_benchmark_layouts_map_to_hub_schema(shared_data: Path, task: str, rel: str, n: int) -> None:
    t = loaders.load_benchmark(task, shared_data / "benchmarks" / rel)
    assert len(t) == n


def test_jsonl_lines_split_on_newlines_only(tmp_path: Path) -> None:
    """U+0085 and U+2028 may stand unescaped inside a JSON string (real MMLU has U+0085): they are not line breaks."""
    import json as _json

    from big5chat.data.tables import read_records
    from big5chat.storage import jsonl_lines, read_jsonl

    rows = [{"q": "first\u0085line", "a": 1}, {"q": "second\u2028part\u2029end", "a": 2}]
    text = "".join(_json.dumps(r, ensure_ascii=False) + "\r\n" for r in rows)
    assert len(jsonl_lines(text)) == 3 and len(text.splitlines()) > 3
    f = tmp_path / "items.jsonl"
    f.write_text(text, encoding="utf-8")
    assert read_jsonl(f) == rows
    _, _, got = read_records(f)
    assert [r for *_, r in got] == rows
