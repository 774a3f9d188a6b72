"""Loaders for the study's data: each takes a config.DataSource (local file or hub dataset) or a path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from big5chat import paths
from big5chat.data import schemas
from big5chat.data.tables import DataError, Table, load_table, read_records, validate_records
from big5chat.traits import LEVEL_COLUMN, Z_COLUMN


def posts_label_layout(columns: list[str], name: str) -> tuple[str, dict[str, str]]:
    """('z' | 'level', {trait: column}) of a posts file from its column names; an error names what is missing."""
    for kind, cols in schemas.POST_LABEL_LAYOUTS:
        present = [c for c in cols.values() if c in columns]
        if present:
            missing = [c for c in cols.values() if c not in columns]
            if missing:
                raise DataError(name, f"missing column(s) {', '.join(missing)} (needed for trait-labelled posts; header: {', '.join(columns)})")
            return kind, cols
    wanted = " or ".join(", ".join(cols.values()) for _, cols in schemas.POST_LABEL_LAYOUTS)
    raise DataError(name, f"no trait label columns: needs z-scores or levels ({wanted}); header: {', '.join(columns)}")


def load_posts(source: Any, *, limit: int | None = None) -> Table:
    """Trait-labelled posts: z-scores (the PsychGenerator schema) or levels, each trait possibly unlabelled.

    Rows come back with canonical columns: ``message_id`` (``row_000001``... when the file has none), ``message``,
    and either the z columns (``ope_z``...: float or None) or the level columns (``ope_level``...: 'high', 'median',
    'low' or None), whichever the file carries; ``Table.schema`` names which.
    """
    name, header, records = read_records(source)
    records = list(records)
    columns = header if header is not None else (list(records[0][2]) if records else [])
    kind, label_columns = posts_label_layout(columns, name)
    with_id = "message_id" in columns
    table = validate_records(name, header, records, schemas.posts_schema(kind, label_columns, with_id=with_id), limit=limit)
    canonical = Z_COLUMN if kind == "z" else LEVEL_COLUMN
    rows = []
    for i, row in enumerate(table.rows, start=1):
        out = {"message_id": row["message_id"] if with_id else f"row_{i:06d}", "message": row["message"]}
        out.update({canonical[t]: row[c] for t, c in label_columns.items()})
        out.update({k: v for k, v in row.items() if k not in out and k not in label_columns.values()})
        rows.append(out)
    return Table(table.source, table.schema, rows, [c for c in table.extra_columns if c not in ("message_id",)])


def load_scenarios(source: Any) -> Table:
    """SODA scenarios (narrative, PersonX, PersonY, ...)."""
    return load_table(source, schemas.SCENARIOS)


def load_dialogues(source: Any) -> Table:
    """A BIG5-CHAT dialogue CSV in the official schema (trait and level spellings normalised)."""
    return load_table(source, schemas.DIALOGUES)


def _instrument_index(folder: Path) -> tuple[Path, dict[str, Any]]:
    meta_file = folder / "questionnaires.json"
    if not meta_file.is_file():
        raise DataError(paths.relative(meta_file), "file not found")
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))["instruments"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise DataError(paths.relative(meta_file), f"not a questionnaire file ({exc})") from None
    if not isinstance(meta, dict) or not meta:
        raise DataError(paths.relative(meta_file), "'instruments' must map each questionnaire's name to its settings")
    return meta_file, meta


def instrument_names(instruments_dir: str | Path) -> list[str]:
    """The questionnaires ``instruments_dir/questionnaires.json`` lists, in its order (what params may name)."""
    return list(_instrument_index(paths.resolve(instruments_dir))[1])


_INSTRUMENT_KEYS = {"items_file": str, "prompt": str, "scale_min": int, "scale_max": int}


def load_questionnaires(instruments_dir: str | Path, names: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """The questionnaires of ``instruments_dir`` (``names`` only, in that order; None = every one, in the order
    ``questionnaires.json`` lists them): {name: {prompt, inner_setting, scale_min, scale_max, option_labels, norms,
    n_items, 'items': Table}}.

    The instruments are discovered, not named in code: an entry of ``questionnaires.json`` and its item file
    (``item, text, domain, reverse``; facets optional) is a new questionnaire. Its item count, scale and keys are
    read from the files (``n_items``, when given, must agree with the item file).
    """
    folder = paths.resolve(instruments_dir)
    meta_file, meta = _instrument_index(folder)
    where = paths.relative(meta_file)
    unknown = [n for n in names or [] if n not in meta]
    if unknown:
        raise DataError(where, f"has no questionnaire {', '.join(map(repr, unknown))} (it lists: {', '.join(meta)})")
    out: dict[str, dict[str, Any]] = {}
    for name in names if names is not None else list(meta):
        raw = meta[name]
        if not isinstance(raw, dict):
            raise DataError(where, f"instrument {name!r}: expected a mapping of settings")
        for key, kind in _INSTRUMENT_KEYS.items():
            if not isinstance(raw.get(key), kind) or isinstance(raw.get(key), bool):
                raise DataError(where, f"instrument {name!r}: {key!r} must be a {kind.__name__} (got {raw.get(key)!r})")
        info = dict(raw)
        lo, hi = info["scale_min"], info["scale_max"]
        if lo >= hi:
            raise DataError(where, f"instrument {name!r}: scale_min {lo} must be below scale_max {hi}")
        labels = info.setdefault("option_labels", [str(k) for k in range(lo, hi + 1)])
        if len(labels) != hi - lo + 1:
            raise DataError(where, f"instrument {name!r}: {len(labels)} option_labels for a {lo}..{hi} scale")
        info.setdefault("inner_setting", "")
        table = load_table(folder / info["items_file"], schemas.QUESTIONNAIRE_ITEMS)
        numbers = [r["item"] for r in table.rows]
        if numbers != list(range(1, len(numbers) + 1)):
            raise DataError(table.source, "items must be numbered 1..n in order")
        if info.setdefault("n_items", len(numbers)) != len(numbers):
            raise DataError(where, f"instrument {name!r}: n_items {info['n_items']} but {table.source} has {len(numbers)} items")
        info["items"] = table
        out[name] = info
    return out


# ---------------------------------------------------------------- benchmark items


def _official_to_hub(task: str, rec: dict[str, Any]) -> dict[str, Any]:
    """Map the layouts of the official task files (as released by their authors) to the hub schemas."""
    if task == "commonsense_qa" and isinstance(rec.get("question"), dict):
        q = rec["question"]
        return {
            "id": rec.get("id"),
            "question": q.get("stem"),
            "question_concept": q.get("question_concept", ""),
            "choices": {"label": [c["label"] for c in q.get("choices", [])], "text": [c["text"] for c in q.get("choices", [])]},
            "answerKey": rec.get("answerKey"),
        }
    if task == "social_iqa" and "options" in rec and "answerA" not in rec:
        opts = list(rec["options"])
        label = str(opts.index(rec["answer"]) + 1) if rec.get("answer") in opts else None
        return {"context": rec.get("context"), "question": rec.get("question"), "answerA": opts[0] if len(opts) > 0 else None,
                "answerB": opts[1] if len(opts) > 1 else None, "answerC": opts[2] if len(opts) > 2 else None, "label": label}  # fmt: skip
    if task == "truthfulqa_mc":
        out = dict(rec)
        for k in ("mc1_targets", "mc2_targets"):
            if isinstance(rec.get(k), dict) and "choices" not in rec[k]:
                out[k] = {"choices": list(rec[k]), "labels": list(rec[k].values())}
        return out
    if task == "mathqa" and "problem" in rec and "Problem" not in rec:
        out = dict(rec)
        out["Problem"] = out.pop("problem")
        out["Rationale"] = out.pop("rationale", "")
        return out
    return rec


def load_benchmark(task: str, source: Any, *, limit: int | None = None) -> Table:
    """Items of a reasoning task in its hub schema; official file layouts are mapped first.

    PIQA's official release keeps labels in a separate ``*-labels.lst`` file beside the ``.jsonl``: it is
    read when present and the items carry no ``label``.
    """
    if task not in schemas.BENCHMARKS:
        raise DataError(str(source), f"unknown benchmark task {task!r} (known: {', '.join(schemas.BENCHMARKS)})")
    schema = schemas.BENCHMARKS[task]
    path = getattr(source, "path", source)
    if path is None:  # hub dataset: already in the hub schema
        return load_table(source, schema, limit=limit)
    resolved = paths.resolve(path)
    name, header, records = read_records(resolved)
    rows = [(i, line, _official_to_hub(task, rec)) for i, line, rec in records]
    if task == "piqa" and rows and "label" not in rows[0][2]:
        labels_file = resolved.with_name(resolved.stem + "-labels.lst")
        if not labels_file.is_file():
            raise DataError(name, f"PIQA items have no 'label' and {labels_file.name} is not beside them")
        labels = labels_file.read_text(encoding="utf-8").split()
        if len(labels) != len(rows):
            raise DataError(paths.relative(labels_file), f"has {len(labels)} labels for {len(rows)} items")
        for (_, _, row), label in zip(rows, labels):
            row["label"] = label
    return validate_records(name, None, rows, schema, limit=limit)
