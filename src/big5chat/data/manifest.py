"""A record of each input a stage read: where it came from, its sha256, its row count."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from big5chat import paths
from big5chat.storage import sha256_file


def describe_input(name: str, source: Any, rows: int) -> dict[str, Any]:
    if isinstance(source, (str, Path)):
        p = paths.resolve(source)
        return {"input": name, "source": paths.relative(p), "sha256": sha256_file(p), "rows": rows}
    if getattr(source, "path", None):
        p = paths.resolve(source.path)
        return {"input": name, "source": source.path, "sha256": sha256_file(p), "rows": rows}
    return {"input": name, "source": source.describe(), "sha256": None, "rows": rows}
