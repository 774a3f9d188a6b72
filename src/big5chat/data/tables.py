"""Validated reading of tables: local CSV / JSONL / JSON files or hub datasets, checked against a schema.

Every problem names the file, the row and the column. Nothing is dropped silently: a loader that filters
on purpose counts what it filtered and reports it.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from big5chat import paths
from big5chat.storage import jsonl_lines

Kind = Literal["str", "text", "int", "float", "list", "dict", "any"]


class DataError(ValueError):
    """A problem in a data file, naming the file and, where known, the row and the column."""

    def __init__(self, file: str, message: str, row: int | None = None, column: str | None = None, line: int | None = None):
        self.file, self.row, self.column, self.line, self.detail = file, row, column, line, message
        where = file
        if row is not None:
            where += f", row {row}" + (f" (line {line})" if line is not None else "")
        elif line is not None:
            where += f", line {line}"
        if column is not None:
            where += f", column '{column}'"
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class Column:
    """One column: its kind, whether it must be present and non-empty, allowed values, extra checks."""

    name: str
    kind: Kind = "text"
    required: bool = True
    nonempty: bool = True
    choices: tuple[Any, ...] | None = None
    normalize: Callable[[Any], Any] | None = None  # may raise ValueError with a message
    check: Callable[[Any], str | None] | None = None  # returns a problem description or None


@dataclass(frozen=True)
class Schema:
    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...] = ()  # columns whose combination must be unique

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]


@dataclass
class Table:
    """Validated rows (dicts holding the schema's columns, then any extra columns) and where they came from."""

    source: str
    schema: str
    rows: list[dict[str, Any]]
    extra_columns: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.rows)

    def to_frame(self) -> Any:
        import pandas as pd

        return pd.DataFrame(self.rows)


# ---------------------------------------------------------------- raw readers


def _decode(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataError(
            paths.relative(path),
            f"not valid UTF-8 (byte 0x{data[exc.start]:02x}); re-save the file as UTF-8",
            line=line,
        ) from None


def _read_csv(path: Path, text: str) -> tuple[list[str], Iterator[tuple[int, int, dict[str, Any]]]]:
    import io

    csv.field_size_limit(1 << 30)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise DataError(paths.relative(path), "the file is empty") from None
    except csv.Error as exc:
        raise DataError(paths.relative(path), f"malformed CSV header: {exc}", line=1) from None
    name = paths.relative(path)
    if len(set(header)) != len(header):
        dupes = sorted({h for h in header if header.count(h) > 1})
        raise DataError(name, f"duplicate column name(s) in the header: {', '.join(dupes)}", line=1)

    def rows() -> Iterator[tuple[int, int, dict[str, Any]]]:
        i = 0
        while True:
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise DataError(name, f"malformed CSV: {exc}", row=i + 1, line=reader.line_num) from None
            if not values:  # a blank line
                continue
            i += 1
            if len(values) != len(header):
                raise DataError(name, f"has {len(values)} fields but the header has {len(header)}", row=i, line=reader.line_num)
            yield i, reader.line_num, dict(zip(header, values))

    return header, rows()


def _read_jsonl(path: Path, text: str) -> Iterator[tuple[int, int, dict[str, Any]]]:
    name = paths.relative(path)
    i = 0
    for line_no, line in enumerate(jsonl_lines(text), start=1):
        if not line.strip():
            continue
        i += 1
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(name, f"malformed JSON: {exc.msg} (at character {exc.pos + 1})", row=i, line=line_no) from None
        if not isinstance(obj, dict):
            raise DataError(name, f"each line must be a JSON object, got {type(obj).__name__}", row=i, line=line_no)
        yield i, line_no, obj


def _read_json(path: Path, text: str) -> Iterator[tuple[int, int | None, dict[str, Any]]]:
    name = paths.relative(path)
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(name, f"malformed JSON: {exc.msg}", line=exc.lineno) from None
    if not isinstance(obj, list):
        raise DataError(name, f"a .json table must be a list of objects, got {type(obj).__name__}")
    for i, rec in enumerate(obj, start=1):
        if not isinstance(rec, dict):
            raise DataError(name, f"each entry must be a JSON object, got {type(rec).__name__}", row=i)
        yield i, None, rec


def _read_hub(source: Any) -> Iterator[tuple[int, None, dict[str, Any]]]:
    from big5chat.models.materialize import hub_offline

    try:
        import datasets

        ds = datasets.load_dataset(source.hub_id, source.config_name, revision=source.revision, split=source.split)
    except Exception as exc:
        hint = (
            " HF_HUB_OFFLINE=1 is set: only datasets already in the local cache can be read (the default profile "
            "runs offline; set runtime.hf_hub_offline: false on a machine with network access)."
            if hub_offline()
            else ""
        )
        raise DataError(source.describe(), f"could not load the hub dataset: {type(exc).__name__}: {exc}.{hint}") from None
    for i, rec in enumerate(ds, start=1):
        yield i, None, dict(rec)


def read_records(source: Any) -> tuple[str, list[str] | None, Iterable[tuple[int, int | None, dict[str, Any]]]]:
    """(name, header or None, iterator of (row number, line number, record)) of a DataSource or a path."""
    if isinstance(source, (str, Path)):
        path: Path | None = paths.resolve(source)
    elif getattr(source, "path", None):
        path = paths.resolve(source.path)
    else:
        return source.describe(), None, _read_hub(source)
    assert path is not None
    name = paths.relative(path)
    if not path.is_file():
        raise DataError(name, "file not found")
    if path.stat().st_size == 0:
        raise DataError(name, "the file is empty")
    text = _decode(path)
    if not text.strip():
        raise DataError(name, "the file is empty")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        header, rows = _read_csv(path, text)
        return name, header, rows
    if suffix == ".jsonl":
        return name, None, _read_jsonl(path, text)
    if suffix == ".json":
        return name, None, _read_json(path, text)
    raise DataError(name, f"unsupported file type {suffix!r} (use .csv, .jsonl or .json)")


# ---------------------------------------------------------------- validation


def _convert(col: Column, value: Any, from_csv: bool) -> Any:
    """The value converted to the column's kind; raises ValueError with a short reason."""
    if value is None or (isinstance(value, str) and value.strip() == "" and col.kind not in ("str",)):
        if col.nonempty:
            raise ValueError("is empty")
        return None
    kind = col.kind
    if kind in ("str", "text"):
        if isinstance(value, (int, float)) and not isinstance(value, bool) and kind == "str":
            value = str(value)
        if not isinstance(value, str):
            raise ValueError(f"expected text, got {type(value).__name__}")
        if col.nonempty and not value.strip():
            raise ValueError("is empty")
        return value
    if kind == "int":
        if isinstance(value, bool):
            raise ValueError(f"expected an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
        raise ValueError(f"expected an integer, got {value!r}")
    if kind == "float":
        if isinstance(value, bool):
            raise ValueError(f"expected a number, got {value!r}")
        try:
            out = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"expected a number, got {value!r}") from None
        if not math.isfinite(out):
            raise ValueError(f"expected a finite number, got {value!r}")
        return out
    if kind in ("list", "dict"):
        if from_csv and isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                raise ValueError(f"expected a JSON {kind}, got {value[:40]!r}") from None
        want = list if kind == "list" else dict
        if not isinstance(value, want):
            raise ValueError(f"expected a {kind}, got {type(value).__name__}")
        return value
    return value


def load_table(source: Any, schema: Schema, *, limit: int | None = None) -> Table:
    """Read ``source`` (a config.DataSource or a path) and validate every row against ``schema``."""
    name, header, records = read_records(source)
    return validate_records(name, header, records, schema, limit=limit)


def validate_records(
    name: str,
    header: list[str] | None,
    records: Iterable[tuple[int, int | None, dict[str, Any]]],
    schema: Schema,
    *,
    limit: int | None = None,
) -> Table:
    """Validate (row number, line number, record) triples against ``schema``; errors name ``name``."""
    from_csv = header is not None
    if header is not None:
        missing = [c.name for c in schema.columns if c.required and c.name not in header]
        if missing:
            raise DataError(name, f"missing column(s) {', '.join(missing)} (needed for {schema.name}; header: {', '.join(header)})")
    rows: list[dict[str, Any]] = []
    seen: dict[tuple[Any, ...], int] = {}
    extra: list[str] = []
    for i, line, rec in records:
        row: dict[str, Any] = {}
        for col in schema.columns:
            if col.name not in rec:
                if col.required:
                    raise DataError(name, f"missing field (needed for {schema.name})", row=i, column=col.name, line=line)
                row[col.name] = None
                continue
            try:
                value = _convert(col, rec[col.name], from_csv)
                if value is not None and col.normalize is not None:
                    value = col.normalize(value)
                if value is not None and col.choices is not None and value not in col.choices:
                    raise ValueError(f"{value!r} is not one of {', '.join(map(repr, col.choices))}")
                if value is not None and col.check is not None:
                    problem = col.check(value)
                    if problem:
                        raise ValueError(problem)
            except ValueError as exc:
                raise DataError(name, str(exc), row=i, column=col.name, line=line) from None
            row[col.name] = value
        for k, v in rec.items():
            if k not in row:
                row[k] = v
                if k not in extra:
                    extra.append(k)
        if schema.key:
            k = tuple(row[c] for c in schema.key)
            if k in seen:
                cols = ", ".join(schema.key)
                raise DataError(name, f"duplicate {cols} {k if len(k) > 1 else k[0]!r} (first seen in row {seen[k]})", row=i, line=line)
            seen[k] = i
        rows.append(row)
        if limit is not None and len(rows) >= limit:
            break
    if not rows:
        raise DataError(name, "has a header but no rows" if from_csv else "has no rows")
    return Table(source=name, schema=schema.name, rows=rows, extra_columns=extra)
