"""Rules every SODA-format scenario the project writes must follow (issue 31 item 1).

A scenario is a SODA record (Kim et al., 2023): a commonsense triple (``head``, ``relation``, ``tail``) about two
people, its sentence form (``literal``), a short narrative and a seed dialogue between them. The study's dialogues are
generated from the narrative, so the scenarios must be neutral: everyday situations that never name a trait, a
trait adjective or a questionnaire word (the same list as the posts, ``authored_rules.FORBIDDEN_WORDS``); the trait
comes later, from the generation. A fixed held-out set (``split == "test"``) is kept apart from the training
scenarios: no held-out head is a training head, nor a near copy of one (the same content words, mostly).

Run ``python -m big5chat.data.scenario_rules [file]`` to list every violation (default: the study's scenarios,
``data/sample/scenarios/soda_scenarios_study.jsonl``; its heads are also compared with the training heads of
``data/sample/soda_scenarios.jsonl``). Every problem reads ``file:row: [rule] what is wrong``.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from big5chat import paths
from big5chat.data.authored_rules import FORBIDDEN
from big5chat.storage import read_jsonl

STUDY_FILE = paths.SAMPLE / "scenarios" / "soda_scenarios_study.jsonl"
SAMPLE_FILE = paths.SAMPLE / "soda_scenarios.jsonl"

# The fields of data/sample/soda_scenarios.jsonl (the official SODA columns the loaders read) and their types.
FIELDS: dict[str, type] = {
    "head": str, "relation": str, "tail": str, "literal": str, "narrative": str, "dialogue": list, "speakers": list,
    "PersonX": str, "PersonY": str, "PersonZ": str, "original_index": int, "split": str, "head_answer": str,
    "pmi_head_answer": str, "relation_tail_answer": str, "pmi_relation_tail_answer": str,
}  # fmt: skip
# SODA's relations (ATOMIC-2020's social and event relations).
RELATIONS: tuple[str, ...] = (
    "xIntent", "xNeed", "xWant", "xReact", "xEffect", "xAttr", "oReact", "oWant", "oEffect",
    "HinderedBy", "isAfter", "isBefore", "xReason", "Causes",
)  # fmt: skip
SPLITS = ("train", "test")
HELDOUT_SCENARIOS = 140  # the fixed held-out set of the study file
MIN_TRAIN_SCENARIOS = 500
MIN_NARRATIVE_WORDS, MAX_NARRATIVE_WORDS = 18, 80
MIN_SENTENCES, MAX_SENTENCES = 2, 4
MIN_TURNS, MAX_TURNS = 2, 6
MAX_PAIR_USES = 2  # the same two names (either order) in at most this many scenarios
NEAR_COPY = 0.5  # a held-out head sharing this share of content words (Jaccard) with a training head is a near copy

_SENTENCE_END = re.compile(r"[.!?]+[\"')]*(?=\s+[A-Z\"']|\s*$)")
_STOPWORDS = frozenset(
    "a an the and or but to of in on at for with from by into onto up down over after before about as is are be "
    "his her their its him them they he she it that this while when who whom whose own".split()
)


def problem(where: str, row: int, rule: str, message: str) -> str:
    return f"{where}:{row}: [{rule}] {message}"


def sentences(text: str) -> int:
    """Number of sentences in a narrative (ends at . ! ? before a capital or the end)."""
    return len(_SENTENCE_END.findall(text.strip()))


def head_words(head: str) -> frozenset[str]:
    """The content words of a head, placeholders and possessives dropped, a plural -s folded."""
    words = re.findall(r"[a-z]+", head.lower().replace("personx", " ").replace("persony", " ").replace("'s", " "))
    return frozenset(w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w for w in words if w not in _STOPWORDS)


def similarity(a: frozenset[str], b: frozenset[str]) -> float:
    """Jaccard similarity of two heads' content words (``head_words``)."""
    return len(a & b) / len(a | b) if a | b else 1.0


def filled(text: str, rec: dict[str, Any]) -> str:
    return text.replace("PersonX", str(rec["PersonX"])).replace("PersonY", str(rec["PersonY"]))


def record_problems(rec: dict[str, Any], where: str = "scenario", row: int = 1) -> list[str]:
    """Everything wrong with one scenario on its own (empty when it follows the rules)."""
    out: list[str] = []
    missing = [f for f in FIELDS if f not in rec]
    if missing:
        return [problem(where, row, "fields", f"missing field(s) {missing}")]
    extra = sorted(set(rec) - set(FIELDS))
    if extra:
        out.append(problem(where, row, "fields", f"unknown field(s) {extra}"))
    wrong = [f"{f} is {type(rec[f]).__name__}, not {t.__name__}" for f, t in FIELDS.items() if not isinstance(rec[f], t) or isinstance(rec[f], bool)]
    if wrong:
        return out + [problem(where, row, "types", "; ".join(wrong))]
    x, y = rec["PersonX"].strip(), rec["PersonY"].strip()
    if not x or not y or x == y:
        out.append(problem(where, row, "names", f"PersonX {x!r} and PersonY {y!r} must be two different non-empty names"))
    if rec["PersonZ"] != "":
        out.append(problem(where, row, "names", f"PersonZ {rec['PersonZ']!r} (these scenarios have two people)"))
    if "PersonX" not in rec["head"]:
        out.append(problem(where, row, "head", f"head {rec['head']!r} does not contain 'PersonX'"))
    if rec["relation"] not in RELATIONS:
        out.append(problem(where, row, "relation", f"relation {rec['relation']!r} is not one of {list(RELATIONS)}"))
    if not rec["tail"].strip():
        out.append(problem(where, row, "tail", "empty tail"))
    literal = rec["literal"]
    if x not in literal or y not in literal:
        out.append(problem(where, row, "literal", f"literal does not name both PersonX {x!r} and PersonY {y!r}"))
    if re.search(r"Person[XYZ]", literal):
        out.append(problem(where, row, "literal", "literal still holds a PersonX/PersonY placeholder"))
    head = filled(rec["head"], rec)
    if not literal.lower().startswith(head.lower()):
        out.append(problem(where, row, "literal", f"literal does not start with the head {head!r}"))
    narrative = rec["narrative"].strip()
    n = len(narrative.split())
    if not MIN_NARRATIVE_WORDS <= n <= MAX_NARRATIVE_WORDS:
        out.append(problem(where, row, "narrative-length", f"narrative has {n} words (need {MIN_NARRATIVE_WORDS}-{MAX_NARRATIVE_WORDS})"))
    s = sentences(narrative)
    if not MIN_SENTENCES <= s <= MAX_SENTENCES:
        out.append(problem(where, row, "narrative-sentences", f"narrative has {s} sentences (need {MIN_SENTENCES}-{MAX_SENTENCES})"))
    if x not in narrative or y not in narrative:
        out.append(problem(where, row, "narrative-names", f"narrative does not name both {x!r} and {y!r}"))
    turns, speakers = rec["dialogue"], rec["speakers"]
    if not MIN_TURNS <= len(turns) <= MAX_TURNS:
        out.append(problem(where, row, "dialogue-turns", f"dialogue has {len(turns)} turns (need {MIN_TURNS}-{MAX_TURNS})"))
    if not all(isinstance(t, str) and t.strip() for t in turns):
        out.append(problem(where, row, "dialogue-turns", "a dialogue turn is empty or not a string"))
    expected = [x if i % 2 == 0 else y for i in range(len(turns))]
    if speakers != expected:
        out.append(problem(where, row, "speakers", f"speakers {speakers} should alternate PersonX/PersonY from PersonX: {expected}"))
    text = " ".join([rec["head"], rec["tail"], literal, narrative] + [t for t in turns if isinstance(t, str)])
    hits = sorted({m.group(0).lower() for m in FORBIDDEN.finditer(text)})
    if hits:
        out.append(problem(where, row, "forbidden-words", f"forbidden word(s) {hits}"))
    if rec["split"] not in SPLITS:
        out.append(problem(where, row, "split", f"split {rec['split']!r} is not one of {list(SPLITS)}"))
    return out


def file_problems(
    records: Sequence[dict[str, Any]],
    where: str = "scenarios",
    *,
    reference_train: Iterable[str] = (),
    n_test: int | None = HELDOUT_SCENARIOS,
    min_train: int | None = MIN_TRAIN_SCENARIOS,
) -> list[str]:
    """Every problem of a scenarios file: each record's, then the rules across records.

    ``reference_train``: heads of other training scenarios (e.g. data/sample/soda_scenarios.jsonl) that no head may
    repeat and that held-out heads must also stay apart from. ``n_test`` / ``min_train``: the split sizes the file
    must have (None: unchecked). A problem about the whole file names row 0.
    """
    out: list[str] = []
    for row, rec in enumerate(records, start=1):
        out += record_problems(rec, where, row)
    ok = [(row, r) for row, r in enumerate(records, start=1) if all(f in r for f in FIELDS)]
    first_index: dict[Any, int] = {}
    reference_train = list(reference_train)
    first_head: dict[str, int] = {" ".join(h.lower().split()): 0 for h in reference_train}
    pairs: Counter[frozenset[str]] = Counter()
    for row, r in ok:
        idx = r["original_index"]
        if idx in first_index:
            out.append(problem(where, row, "unique-index", f"original_index {idx} already used in row {first_index[idx]}"))
        first_index.setdefault(idx, row)
        key = " ".join(str(r["head"]).lower().split())
        if key in first_head:
            source = f"row {first_head[key]}" if first_head[key] else "a reference training scenario"
            out.append(problem(where, row, "unique-head", f"head {r['head']!r} already used in {source}"))
        first_head.setdefault(key, row)
        pair = frozenset((str(r["PersonX"]), str(r["PersonY"])))
        pairs[pair] += 1
        if pairs[pair] == MAX_PAIR_USES + 1:
            out.append(problem(where, row, "name-pair", f"names {sorted(pair)} used together in more than {MAX_PAIR_USES} scenarios"))
    train_heads = [(row, str(r["head"])) for row, r in ok if r["split"] == "train"] + [(0, h) for h in reference_train]
    train_words = [(train_row, head, head_words(head)) for train_row, head in train_heads]
    for row, r in ok:
        if r["split"] != "test":
            continue
        words = head_words(str(r["head"]))
        for train_row, head, other in train_words:
            sim = similarity(words, other)
            if sim >= NEAR_COPY:
                source = f"train row {train_row}" if train_row else "a reference training scenario"
                out.append(problem(where, row, "heldout-head", f"held-out head {r['head']!r} is {sim:.0%} the same as {source} {head!r}"))
                break
    counts = Counter(r["split"] for _, r in ok)
    if n_test is not None and counts["test"] != n_test:
        out.append(problem(where, 0, "split-counts", f"{counts['test']} held-out scenarios (need exactly {n_test})"))
    if min_train is not None and counts["train"] < min_train:
        out.append(problem(where, 0, "split-counts", f"{counts['train']} training scenarios (need at least {min_train})"))
    return out


def summary(records: Sequence[dict[str, Any]], where: str = "scenarios") -> str:
    splits = Counter(str(r.get("split")) for r in records)
    lines = [f"{where}: {len(records)} scenarios, {dict(sorted(splits.items()))}"]
    by_relation = Counter((str(r.get("relation")), str(r.get("split"))) for r in records)
    for rel in sorted({rel for rel, _ in by_relation}, key=lambda r: RELATIONS.index(r) if r in RELATIONS else len(RELATIONS)):
        lines.append(f"  {rel:<11} train {by_relation[rel, 'train']:>3}  test {by_relation[rel, 'test']:>3}")
    words = [len(str(r.get("narrative", "")).split()) for r in records]
    turns = Counter(len(r.get("dialogue", [])) for r in records)
    names = Counter(n for r in records for n in (r.get("PersonX"), r.get("PersonY")))
    if words:
        lines.append(f"  narrative words {min(words)}-{max(words)} (mean {sum(words) / len(words):.1f}); turns {dict(sorted(turns.items()))}")
        lines.append(f"  {len(names)} distinct names, most used {names.most_common(1)[0][1]}x")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    path = Path(args[0]) if args else STUDY_FILE
    records = read_jsonl(path)
    study = path.resolve() == STUDY_FILE.resolve()
    reference = (
        [str(r["head"]) for r in read_jsonl(SAMPLE_FILE) if r.get("split", "train") == "train"]
        if SAMPLE_FILE.is_file() and path.resolve() != SAMPLE_FILE.resolve()
        else []
    )
    problems = file_problems(
        records, str(path), reference_train=reference, n_test=HELDOUT_SCENARIOS if study else None, min_train=MIN_TRAIN_SCENARIOS if study else None
    )
    print(summary(records, str(path)))
    for p in problems:
        print(p)
    print(f"{len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
