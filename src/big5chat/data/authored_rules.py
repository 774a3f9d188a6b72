"""Rules every post the project writes must follow (issue 14): what the trait corpus may and may not contain.

A post expresses its trait through what the writer does, thinks and says: never by naming the trait, a trait
adjective or a questionnaire word (BFI-44 / IPIP-NEO-120 descriptors), so that a judge trained on it learns
behaviour, not vocabulary. Training posts and the held-out test posts use disjoint topics, so the held-out
accuracy measures a judge that generalises beyond the topics it saw.

Run ``python -m big5chat.data.authored_rules`` to list every violation in ``data/sample/authored/`` and
``data/sample/heldout/``.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path

from big5chat.storage import read_jsonl

MIN_WORDS, MAX_WORDS = 5, 60

TRAINING_TOPICS: tuple[str, ...] = (
    "work", "school", "friends", "family", "home", "food", "money", "travel", "sport", "entertainment",
    "pets", "weather", "dating", "health", "shopping", "commute",
)  # fmt: skip
HELDOUT_TOPICS: tuple[str, ...] = (
    "gardening", "cars", "weddings", "neighbours", "technology", "crafts", "camping", "volunteering",
    "moving house", "haircuts",
)  # fmt: skip

# Trait names, trait adjectives and the questionnaires' own descriptors (matched case-insensitively as words).
FORBIDDEN_WORDS: tuple[str, ...] = (
    # trait names and labels
    r"personality", r"big ?five", r"openness", r"open[- ]minded\w*", r"close[- ]minded\w*", r"conscientious\w*",
    r"extraversion", r"extra[vo]ert\w*", r"introvert\w*", r"introversion", r"ambivert\w*", r"agreeabl\w*",
    r"disagreeabl\w*", r"neurotic\w*",
    # extraversion descriptors
    r"talkative", r"reserved", r"assertive\w*", r"shy", r"shyness", r"outgoing", r"sociable", r"unsociable",
    r"enthusias\w*", r"full of energy", r"inhibited", r"bubbly", r"loner",
    # agreeableness descriptors
    r"considerate", r"inconsiderate", r"forgiving", r"unforgiving", r"trusting", r"helpful", r"unselfish",
    r"selfish\w*", r"aloof", r"quarrel\w*", r"cooperative", r"uncooperative", r"rude\w*", r"kindness",
    r"kind[- ]hearted", r"warm[- ]hearted", r"cold[- ]hearted", r"compassion\w*", r"empath\w*",
    # conscientiousness descriptors
    r"thorough\w*", r"careless\w*", r"reliab\w*", r"unreliab\w*", r"disorgani[sz]ed", r"organi[sz]ed",
    r"lazy", r"laziness", r"efficient\w*", r"inefficien\w*", r"persever\w*", r"diligen\w*", r"procrastinat\w*",
    r"responsible", r"irresponsible", r"self[- ]disciplin\w*", r"perfectionis\w*",
    # neuroticism descriptors
    r"moody", r"depressed", r"depression", r"tense", r"nervous\w*", r"anxious\w*", r"anxiety", r"worr(?:y|ied|ies|ying|ier)",
    r"calm\w*", r"relaxed", r"stress\w*", r"emotionally stable", r"insecur\w*", r"panic\w*", r"overthink\w*",
    # openness descriptors
    r"curious", r"curiosity", r"imaginati\w*", r"inventive", r"ingenious", r"artistic", r"unartistic",
    r"aesthetic\w*", r"sophisticated", r"creative", r"creativity", r"adventurous", r"unadventurous",
    r"conventional", r"unconventional", r"traditional", r"philosophical",
)  # fmt: skip
FORBIDDEN = re.compile(r"\b(?:" + "|".join(FORBIDDEN_WORDS) + r")\b", re.IGNORECASE)

AUTHORED_FIELDS = ("trait", "level", "topic", "message")
TRAIT_NAMES = ("openness", "conscientiousness", "extraversion", "agreeableness", "neuroticism")


def word_count(text: str) -> int:
    return len(text.split())


def record_problems(rec: dict[str, object], *, heldout: bool) -> list[str]:
    """Everything wrong with one authored record (empty when it follows the rules)."""
    out: list[str] = []
    missing = [f for f in AUTHORED_FIELDS if f not in rec]
    if missing:
        return [f"missing field(s) {missing}"]
    msg = str(rec["message"]).strip()
    n = word_count(msg)
    if not MIN_WORDS <= n <= MAX_WORDS:
        out.append(f"{n} words (need {MIN_WORDS}-{MAX_WORDS})")
    hits = sorted({m.group(0).lower() for m in FORBIDDEN.finditer(msg)})
    if hits:
        out.append(f"forbidden word(s) {hits}")
    topics = HELDOUT_TOPICS if heldout else TRAINING_TOPICS
    if rec["topic"] not in topics:
        out.append(f"topic {rec['topic']!r} is not a {'held-out' if heldout else 'training'} topic {list(topics)}")
    if rec["level"] not in ("high", "low"):
        out.append(f"level {rec['level']!r}")
    return out


def folder_problems(folder: Path, *, heldout: bool) -> list[str]:
    out: list[str] = []
    for trait in TRAIT_NAMES:
        f = folder / f"posts_{trait}.jsonl"
        if not f.is_file():
            out.append(f"{f}: file not found")
            continue
        for n, rec in enumerate(read_jsonl(f), start=1):
            if rec.get("trait") != trait:
                out.append(f"{f}:{n}: trait {rec.get('trait')!r} in the {trait} file")
            out += [f"{f}:{n}: {p}" for p in record_problems(rec, heldout=heldout)]
    return out


def summary(folder: Path) -> str:
    lines = []
    for trait in TRAIT_NAMES:
        f = folder / f"posts_{trait}.jsonl"
        if not f.is_file():
            continue
        recs = read_jsonl(f)
        arms = Counter(str(r.get("level")) for r in recs)
        lengths = [word_count(str(r.get("message", ""))) for r in recs]
        short = sum(n <= 12 for n in lengths) / max(len(lengths), 1)
        long_ = sum(n >= 30 for n in lengths) / max(len(lengths), 1)
        lines.append(f"{f}: {dict(arms)}; <=12 words {short:.0%}, >=30 words {long_:.0%}")
    return "\n".join(lines)


def main() -> int:
    root = Path(__file__).resolve().parents[3] / "data" / "sample"
    problems = folder_problems(root / "authored", heldout=False) + folder_problems(root / "heldout", heldout=True)
    print(summary(root / "authored"))
    print(summary(root / "heldout"))
    for p in problems:
        print(p)
    print(f"{len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
