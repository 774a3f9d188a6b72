"""Build the project's sample trait corpus (data/sample/posts.csv) from the posts the project wrote.

Each authored post expresses one trait at one level (``data/sample/authored/posts_{trait}.jsonl``). Its
z-scores are drawn with a fixed seed: the expressed trait at |z| = 0.8 + |N(0, 0.5)| with the level's sign,
the other four N(0, 0.3). The output uses the PsychGenerator schema, so the pipeline reads it exactly as
it would read the real corpus. Run ``python -m big5chat build-sample`` after editing the authored posts.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np

from big5chat import paths
from big5chat.data.tables import DataError
from big5chat.traits import TRAITS, Z_COLUMN, normalize_level, normalize_trait

SEED = 42
TARGET_OFFSET, TARGET_SD, OTHER_SD = 0.8, 0.5, 0.3


def read_authored(folder: Path) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    for trait in TRAITS:
        f = folder / f"posts_{trait}.jsonl"
        if not f.is_file():
            raise DataError(paths.relative(f), "file not found")
        for line_no, line in enumerate(f.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            rec = json.loads(line)
            if normalize_trait(rec["trait"]) != trait:
                raise DataError(paths.relative(f), f"trait {rec['trait']!r} in the {trait} file", line=line_no)
            rows.append({"trait": trait, "level": normalize_level(rec["level"]), "message": rec["message"].strip()})
    return rows


def build_rows(authored: list[dict[str, str]], seed: int = SEED) -> list[dict[str, object]]:
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(authored))
    out: list[dict[str, object]] = []
    for n, i in enumerate(order, start=1):
        rec = authored[i]
        row: dict[str, object] = {"message_id": f"sample_{n:04d}", "message": rec["message"]}
        for trait in TRAITS:
            if trait == rec["trait"]:
                z = TARGET_OFFSET + abs(rng.normal(0.0, TARGET_SD))
                z = z if rec["level"] == "high" else -z
            else:
                z = rng.normal(0.0, OTHER_SD)
            row[Z_COLUMN[trait]] = round(float(z), 4)
        out.append(row)
    return out


def write_csv(rows: list[dict[str, object]], path: Path) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(buf.getvalue(), encoding="utf-8")


def build_sample_posts(folder: Path | None = None, out: Path | None = None) -> Path:
    folder = folder or paths.SAMPLE / "authored"
    out = out or paths.SAMPLE / "posts.csv"
    write_csv(build_rows(read_authored(folder)), out)
    return out
