"""The upstream schemas the study's data come in, as validated table schemas.

- posts: PsychGenerator (`message_id, message, ope_z, con_z, ext_z, agr_z, neu_z`), optional `author_id`; or the
  same posts with trait levels instead of z-scores (`ope_level`... high/median/low, or PsychGenerator's level files'
  `ope_z_label`... 0/1/2 = low/median/high). An empty cell is a trait the post is not labelled for;
- scenarios: SODA (`allenai/soda`);
- dialogues: the official BIG5-CHAT CSV (`wenkai-li/big5_chat`);
- instruments: a questionnaire's item file (BFI-44, IPIP-NEO-120, or any Big Five inventory listed in
  `data/instruments/questionnaires.json`);
- benchmark items: the hub schema of each task, as lm-evaluation-harness reads it.
"""

from __future__ import annotations

from typing import Any

from big5chat.data.tables import Column, Schema
from big5chat.traits import LEVEL_COLUMN, LEVEL_LABEL_COLUMN, Z_COLUMN, normalize_corpus_level, normalize_level, normalize_trait

DOMAINS = ("O", "C", "E", "A", "N")


def _posts_schema(label_columns: tuple[Column, ...], what: str, *, with_id: bool) -> Schema:
    id_column = (Column("message_id", "str"),) if with_id else ()
    return Schema(
        f"trait-labelled posts ({what})",
        (*id_column, Column("message", "text"), *label_columns, Column("author_id", "str", required=False, nonempty=False)),
        key=("message_id",) if with_id else (),
    )


def posts_schema(label_kind: str, label_columns: dict[str, str], *, with_id: bool = True) -> Schema:
    """The posts schema for z-scores (``label_kind='z'``) or levels; ``label_columns`` maps trait -> column name.

    Every label column may be empty: a post is labelled only for the traits its source labelled.
    """
    if label_kind == "z":
        cols = tuple(Column(c, "float", nonempty=False) for c in label_columns.values())
        return _posts_schema(cols, "PsychGenerator schema, z-scores", with_id=with_id)
    cols = tuple(Column(c, "any", nonempty=False, normalize=normalize_corpus_level) for c in label_columns.values())
    return _posts_schema(cols, "levels high/median/low or 0/1/2", with_id=with_id)


# Where a posts file can carry its labels, in the order they are looked for.
POST_LABEL_LAYOUTS: tuple[tuple[str, dict[str, str]], ...] = (("z", Z_COLUMN), ("level", LEVEL_COLUMN), ("level", LEVEL_LABEL_COLUMN))

SCENARIOS = Schema(
    "SODA scenarios",
    (
        Column("original_index", "int"),
        Column("head"),
        Column("relation"),
        Column("tail"),
        Column("literal"),
        Column("narrative"),
        Column("PersonX"),
        Column("PersonY"),
    ),
    key=("original_index",),
)

DIALOGUE_COLUMNS = (
    "original_index", "env_idx", "trait", "level", "relation", "head", "tail", "literal", "narrative",
    "personx", "persony", "train_instruction", "train_input", "train_output",
)  # fmt: skip

DIALOGUES = Schema(
    "BIG5-CHAT dialogues (official CSV schema)",
    (
        Column("original_index", "int"),
        Column("env_idx", "int"),
        Column("trait", normalize=normalize_trait),
        Column("level", normalize=normalize_level),
        Column("relation"),
        Column("head"),
        Column("tail"),
        Column("literal"),
        Column("narrative"),
        Column("personx"),
        Column("persony"),
        Column("train_instruction"),
        Column("train_input"),
        Column("train_output", nonempty=False),  # an empty reply is data (counted downstream), not a file error
    ),
    key=("original_index", "trait", "level"),
)

_REVERSE = Column("reverse", "int", choices=(0, 1))

QUESTIONNAIRE_ITEMS = Schema(
    "questionnaire items",
    (
        Column("item", "int"),
        Column("text"),
        Column("domain", choices=DOMAINS),
        _REVERSE,
        Column("facet_code", required=False),  # IPIP-NEO's facets
        Column("facet", required=False),
        Column("mpi_text", required=False),
    ),
    key=("item",),
)


def _n_choices(n: int) -> Any:
    def check(value: list[Any]) -> str | None:
        if len(value) != n:
            return f"needs {n} choices, has {len(value)}"
        if any(not isinstance(v, str) or not v.strip() for v in value):
            return "has an empty or non-text choice"
        return None

    return check


def _choice_dict(value: dict[str, Any]) -> str | None:
    if set(value) != {"label", "text"} or len(value["label"]) != len(value["text"]) or not value["label"]:
        return "must be {'label': [...], 'text': [...]} with lists of equal, non-zero length"
    return None


def _mc_targets(value: dict[str, Any]) -> str | None:
    if set(value) != {"choices", "labels"} or len(value["choices"]) != len(value["labels"]) or not value["choices"]:
        return "must be {'choices': [...], 'labels': [...]} with lists of equal, non-zero length"
    if any(x not in (0, 1) for x in value["labels"]) or 1 not in value["labels"]:
        return "labels must be 0/1 with at least one 1"
    return None


def _gsm8k_answer(value: str) -> str | None:
    return None if "####" in value else "has no '#### <answer>' line"


BENCHMARKS: dict[str, Schema] = {
    "gsm8k": Schema("GSM8K (openai/gsm8k)", (Column("question"), Column("answer", check=_gsm8k_answer))),
    "mathqa": Schema(
        "MathQA (allenai/math_qa)",
        (
            Column("Problem"),
            Column("Rationale"),
            Column("options"),
            Column("correct", choices=("a", "b", "c", "d", "e")),
            Column("annotated_formula", required=False, nonempty=False),
            Column("linear_formula", required=False, nonempty=False),
            Column("category", required=False, nonempty=False),
        ),
    ),
    "commonsense_qa": Schema(
        "CommonsenseQA (tau/commonsense_qa)",
        (
            Column("id", "str"),
            Column("question"),
            Column("question_concept", required=False, nonempty=False),
            Column("choices", "dict", check=_choice_dict),
            Column("answerKey", choices=("A", "B", "C", "D", "E")),
        ),
        key=("id",),
    ),
    "piqa": Schema("PIQA (ybisk/piqa)", (Column("goal"), Column("sol1"), Column("sol2"), Column("label", "int", choices=(0, 1)))),
    "social_iqa": Schema(
        "SocialIQA (allenai/social_i_qa)",
        (
            Column("context"),
            Column("question"),
            Column("answerA"),
            Column("answerB"),
            Column("answerC"),
            Column("label", "str", choices=("1", "2", "3")),
        ),
    ),
    "truthfulqa_mc": Schema(
        "TruthfulQA multiple choice (truthfulqa/truthful_qa, multiple_choice)",
        (Column("question"), Column("mc1_targets", "dict", check=_mc_targets), Column("mc2_targets", "dict", check=_mc_targets)),
    ),
    "mmlu": Schema(
        "MMLU (cais/mmlu)",
        (Column("question"), Column("subject"), Column("choices", "list", check=_n_choices(4)), Column("answer", "int", choices=(0, 1, 2, 3))),
    ),
    "gpqa": Schema(
        "GPQA (Idavidrein/gpqa)",
        (
            Column("Question"),
            Column("Correct Answer"),
            Column("Incorrect Answer 1"),
            Column("Incorrect Answer 2"),
            Column("Incorrect Answer 3"),
            Column("Record ID", "str", required=False, nonempty=False),
        ),
    ),
}
