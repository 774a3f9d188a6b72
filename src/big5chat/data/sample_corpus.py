"""Build the project's sample trait corpus from the posts the project wrote.

Each authored post expresses one trait at one level (``data/sample/authored/posts_{trait}.jsonl``). It is
labelled for that trait only: its other four traits are unlabelled (empty cells), never invented. The output
uses the level layout of ``data.posts`` (``message_id, message, topic, ope_level ... neu_level``), so the
pipeline reads it as it reads any level-labelled corpus. The out-of-topic test posts
(``data/sample/heldout/``, topics no training post uses) are built the same way into ``posts_heldout.csv``;
nothing trains on them. Both follow the rules in ``authored_rules`` (no trait words, 5-60 words, the topic
lists), which the build checks. Run ``python -m big5chat build-sample`` after editing the authored posts.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np

from big5chat import paths
from big5chat.data.authored_rules import folder_problems
from big5chat.data.tables import DataError
from big5chat.traits import LEVEL_COLUMN, TRAITS, normalize_level, normalize_trait

SEED = 42
POSTS_FILE, HELDOUT_FILE = "posts.csv", "posts_heldout.csv"


def read_authored(folder: Path) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    for trait in TRAITS:
        f = folder / f"posts_{trait}.jsonl"
        if not f.is_file():
            raise DataError(paths.relative(f), "file not found")
        for line_no, line in enumerate(f.read_text(encoding="utf-8").split("\n"), start=1):
            if not line.strip():
                continue
            rec = json.loads(line)
            if normalize_trait(rec["trait"]) != trait:
                raise DataError(paths.relative(f), f"trait {rec['trait']!r} in the {trait} file", line=line_no)
            rows.append({"trait": trait, "level": normalize_level(rec["level"]), "topic": str(rec.get("topic", "")),
                         "message": rec["message"].strip()})  # fmt: skip
    return rows


def build_rows(authored: list[dict[str, str]], seed: int = SEED, id_prefix: str = "sample") -> list[dict[str, object]]:
    """Shuffled (seeded) rows: the expressed trait's level, the other traits left empty."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(authored))
    out: list[dict[str, object]] = []
    for n, i in enumerate(order, start=1):
        rec = authored[i]
        row: dict[str, object] = {"message_id": f"{id_prefix}_{n:04d}", "message": rec["message"], "topic": rec["topic"]}
        row.update({LEVEL_COLUMN[t]: (rec["level"] if t == rec["trait"] else "") for t in TRAITS})
        out.append(row)
    return out


def write_csv(rows: list[dict[str, object]], path: Path) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(buf.getvalue(), encoding="utf-8")


def build_sample_posts(root: Path | None = None) -> list[Path]:
    """Check the authored posts against the rules, then write posts.csv and posts_heldout.csv under ``root``."""
    root = root or paths.SAMPLE
    problems = folder_problems(root / "authored", heldout=False) + folder_problems(root / "heldout", heldout=True)
    if problems:
        shown = "\n  ".join(problems[:20])
        raise DataError(paths.relative(root), f"{len(problems)} authored post(s) break the corpus rules:\n  {shown}")
    written = []
    for folder, name, prefix in (("authored", POSTS_FILE, "sample"), ("heldout", HELDOUT_FILE, "heldout")):
        rows = build_rows(read_authored(root / folder), id_prefix=prefix)
        write_csv(rows, root / name)
        written.append(root / name)
    return written
