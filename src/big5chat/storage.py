"""Atomic writes: every output is written under a temporary name and renamed when complete."""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _tmp(path: Path) -> Path:
    return path.with_name(f".{path.name}.partial")


def write_text(path: str | Path, text: str) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp(p)
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, p)
    return p


def _clean(obj: Any) -> Any:
    """JSON-safe values: numpy scalars to Python, NaN/inf to None (JSON has no NaN)."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item) and getattr(obj, "ndim", 1) == 0:
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


@contextmanager
def atomic_file(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write to; renamed to ``path`` when the block ends without error,
    removed otherwise (for writers that take a file name, e.g. ``safetensors.save_file``)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp(p)
    try:
        yield tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, p)


def write_dir(out_dir: str | Path, write: Callable[[Path], Any]) -> Any:
    """Call ``write(tmp_folder)`` on an empty folder beside ``out_dir``, then replace ``out_dir`` with it: a crash
    never leaves a finished-looking folder. Returns what ``write`` returned."""
    out = Path(out_dir)
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        result = write(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    return result


def write_json(path: str | Path, obj: Any) -> Path:
    return write_text(path, json.dumps(_clean(obj), indent=2, sort_keys=False, ensure_ascii=False) + "\n")


def write_csv(path: str | Path, frame: Any) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp(p)
    frame.to_csv(tmp, index=False, lineterminator="\n")
    os.replace(tmp, p)
    return p


def write_jsonl(path: str | Path, records: list[dict[str, Any]]) -> Path:
    return write_text(path, "".join(json.dumps(_clean(r), ensure_ascii=False) + "\n" for r in records))


def save_figure(fig: Any, path: str | Path, dpi: int = 150) -> Path:
    """PNG (and the same figure as PDF with embedded fonts when the path ends in .pdf)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.stem}.partial{p.suffix}")
    fig.savefig(tmp, dpi=dpi, bbox_inches="tight", metadata={"Software": None} if p.suffix == ".png" else None)
    os.replace(tmp, p)
    return p


def jsonl_lines(text: str) -> list[str]:
    """The lines of a JSON-lines text: split on "\n" only. ``str.splitlines`` also splits on U+0085, U+2028 and
    other separators that JSON allows unescaped inside strings (real MMLU items hold U+0085)."""
    return [line.removesuffix("\r") for line in text.split("\n")]


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Every non-blank line of a JSON-lines file, parsed."""
    return [json.loads(line) for line in jsonl_lines(Path(path).read_text(encoding="utf-8")) if line.strip()]
