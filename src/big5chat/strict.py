"""Strict construction of typed dataclasses from plain YAML data.

Every problem is reported with its dotted key: unknown keys (with a "did you mean"), missing keys, wrong
types, values outside a Literal, a registry or a range, and paths that must exist. All problems of one document are
collected and raised together as one :class:`ConfigError`, before any work starts.
"""

from __future__ import annotations

import contextvars
import dataclasses
import difflib
import re
import types
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

_FLOAT_RE = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


class ConfigError(ValueError):
    """One or more problems in a configuration document, each naming its key."""

    def __init__(self, problems: list[str], source: str = "params.yaml"):
        self.problems = list(problems)
        self.source = source
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{source}: {len(self.problems)} problem(s):\n{lines}")


@dataclass(frozen=True)
class MustExist:
    """Annotated marker: the string is a path (project-relative) that must exist."""

    kind: Literal["file", "dir", "any"] = "any"


@dataclass(frozen=True)
class Range:
    """Annotated marker: a number within [lo, hi] (either bound optional; strict bounds by flag)."""

    lo: float | None = None
    hi: float | None = None
    lo_strict: bool = False
    hi_strict: bool = False

    def describe(self) -> str:
        left = "" if self.lo is None else f"{self.lo} {'<' if self.lo_strict else '<='} "
        right = "" if self.hi is None else f" {'<' if self.hi_strict else '<='} {self.hi}"
        return f"{left}value{right}"

    def ok(self, v: float) -> bool:
        if self.lo is not None and (v <= self.lo if self.lo_strict else v < self.lo):
            return False
        if self.hi is not None and (v >= self.hi if self.hi_strict else v > self.hi):
            return False
        return True


@dataclass(frozen=True)
class OneOf:
    """Annotated marker: a name from a registry read at validation time (``names()``, e.g. the methods of
    ``big5chat.methods.METHODS``), so that adding a registry entry is all it takes for params to accept it."""

    names: Callable[[], Iterable[str]]
    what: str = "value"


class _Problems:
    def __init__(self, root: Path | None):
        self.items: list[str] = []
        self.root = root

    def add(self, key: str, message: str) -> None:
        self.items.append(f"{key or '<top level>'}: {message}")


_MISSING = object()
_CHECK_PATHS: contextvars.ContextVar[bool] = contextvars.ContextVar("check_paths", default=True)


def paths_checked() -> bool:
    """Whether the build in progress checks that paths exist (``check()`` methods consult this)."""
    return _CHECK_PATHS.get()


def _typename(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is typing.Annotated:
        return _typename(get_args(tp)[0])
    if origin is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " | ".join(_typename(a) for a in get_args(tp))
    if origin in (list, tuple):
        return f"list of {_typename(get_args(tp)[0])}"
    if origin is dict:
        return f"mapping of {_typename(get_args(tp)[1])}"
    if tp is type(None):
        return "null"
    if dataclasses.is_dataclass(tp):
        return "mapping"
    return getattr(tp, "__name__", str(tp))


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _did_you_mean(value: Any, choices: list[str]) -> str:
    hint = difflib.get_close_matches(str(value), choices, n=1)
    return f"; did you mean {hint[0]!r}?" if hint else ""


def _convert(tp: Any, value: Any, key: str, problems: _Problems) -> Any:
    origin = get_origin(tp)
    if origin is typing.Annotated:
        base, *marks = get_args(tp)
        out = _convert(base, value, key, problems)
        if out is _MISSING or out is None:
            return out
        for mark in marks:
            if isinstance(mark, Range) and not mark.ok(out):
                problems.add(key, f"{out!r} is out of range (need {mark.describe()})")
            elif isinstance(mark, OneOf) and out not in (known := list(mark.names())):
                problems.add(key, f"unknown {mark.what} {_describe(out)} (known: {', '.join(known)}){_did_you_mean(out, known)}")
                return _MISSING  # as an unknown Literal: the section's own checks never see it
            elif isinstance(mark, MustExist):
                path = Path(out)
                if problems.root is not None and not path.is_absolute():
                    path = problems.root / path
                exists = {"file": path.is_file, "dir": path.is_dir, "any": path.exists}[mark.kind]()
                if not exists:
                    what = {"file": "file", "dir": "folder", "any": "path"}[mark.kind]
                    problems.add(key, f"{what} not found: {out}")
        return out
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            problems.add(key, f"must not be null (expected {_typename(tp)})")
            return _MISSING
        non_none = [a for a in args if a is not type(None)]
        if len(non_none) == 1:
            return _convert(non_none[0], value, key, problems)
        for a in non_none:  # first alternative that converts without problems
            trial = _Problems(problems.root)
            out = _convert(a, value, key, trial)
            if not trial.items:
                return out
        problems.add(key, f"expected {_typename(tp)}, got {_describe(value)}")
        return _MISSING
    if origin is Literal:
        allowed = get_args(tp)
        if value in allowed and not (isinstance(value, bool) and True in allowed and 1 in allowed):
            return value
        if tp is _trait_literal():
            problems.add(key, f"unknown trait {_describe(value)} (expected one of {', '.join(allowed)})")
        elif tp is _level_literal():
            problems.add(key, f"unknown level {_describe(value)} (expected one of {', '.join(allowed)})")
        else:
            extra = _did_you_mean(value, [str(a) for a in allowed])
            problems.add(key, f"unknown value {_describe(value)} (expected one of {', '.join(map(repr, allowed))}){extra}")
        return _MISSING
    if origin in (list, tuple):
        if not isinstance(value, list):
            problems.add(key, f"expected a list, got {_describe(value)}")
            return _MISSING
        (item_tp,) = get_args(tp)[:1]
        out = [_convert(item_tp, v, f"{key}[{i}]", problems) for i, v in enumerate(value)]
        if any(v is _MISSING for v in out):
            return _MISSING
        return out if origin is list else tuple(out)
    if origin is dict:
        if not isinstance(value, dict):
            problems.add(key, f"expected a mapping, got {_describe(value)}")
            return _MISSING
        _, val_tp = get_args(tp)
        converted = {str(k): _convert(val_tp, v, f"{key}.{k}", problems) for k, v in value.items()}
        return _MISSING if any(v is _MISSING for v in converted.values()) else converted
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, key, problems)
    if tp is Any:
        return value
    if value is None:
        problems.add(key, f"must not be null (expected {_typename(tp)})")
        return _MISSING
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str) and _FLOAT_RE.match(value.strip()):
            return float(value)  # YAML 1.1 reads "1e-5" as a string
    elif tp is str:
        if isinstance(value, str):
            return value
    else:  # pragma: no cover - a schema bug, not a user error
        raise TypeError(f"unsupported config type {tp!r} at {key}")
    problems.add(key, f"expected {_typename(tp)}, got {_describe(value)}")
    return _MISSING


def _trait_literal() -> Any:
    from big5chat.traits import Trait

    return Trait


def _level_literal() -> Any:
    from big5chat.traits import Level

    return Level


def _build(cls: type, data: Any, key: str, problems: _Problems) -> Any:
    if not isinstance(data, dict):
        problems.add(key, f"expected a mapping, got {_describe(data)}")
        return _MISSING
    hints = typing.get_type_hints(cls, include_extras=True)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    prefix = f"{key}." if key else ""
    for name in data:
        if name not in fields:
            hint = difflib.get_close_matches(str(name), list(fields), n=1, cutoff=0.6)
            extra = f"; did you mean '{prefix}{hint[0]}'?" if hint else f" (known keys: {', '.join(fields)})"
            problems.add(f"{prefix}{name}", f"unknown key{extra}")
    kwargs: dict[str, Any] = {}
    broken = False
    for name, field in fields.items():
        sub = f"{prefix}{name}"
        if name not in data:
            if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
                problems.add(sub, "missing key")
                broken = True
            continue
        value = _convert(hints[name], data[name], sub, problems)
        if value is _MISSING:
            broken = True
        else:
            kwargs[name] = value
    if broken:
        return _MISSING
    before = len(problems.items)
    obj = cls(**kwargs)
    check = getattr(obj, "check", None)
    if callable(check):
        for problem in check() or []:
            if isinstance(problem, tuple):  # (field name, message)
                problems.add(f"{prefix}{problem[0]}", problem[1])
            else:
                problems.add(key, problem)
    return obj if len(problems.items) == before else _MISSING


def build(cls: type, data: Any, *, source: str = "params.yaml", root: Path | None = None, key: str = "") -> Any:
    """Construct ``cls`` from ``data`` or raise one ConfigError listing every problem.

    ``root`` anchors relative paths of ``MustExist`` fields (None skips existence checks).
    A dataclass may define ``check(self)`` for cross-field rules, returning a list of messages
    (reported under the dataclass's key) or of ``(field, message)`` pairs (reported under that field).
    """
    problems = _Problems(root)
    token = _CHECK_PATHS.set(root is not None)
    try:
        obj = _build(cls, data, key, problems)
    finally:
        _CHECK_PATHS.reset(token)
    if problems.items or obj is _MISSING:
        raise ConfigError(problems.items or [f"{key or '<top level>'}: invalid"], source)
    return obj


def to_dict(obj: Any) -> Any:
    """A dataclass tree back to plain data (for records and papermill parameters)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj
