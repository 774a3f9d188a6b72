"""Progress bars for long work: tqdm to stderr (the stage log), throttled by TQDM_MININTERVAL under papermill."""

from __future__ import annotations

import os
import sys
from typing import Any


def progress(total: int | None = None, desc: str = "", **kwargs: Any) -> Any:
    from tqdm import tqdm

    mininterval = float(os.environ.get("TQDM_MININTERVAL", "0.5"))
    return tqdm(total=total, desc=desc, file=sys.stderr, mininterval=mininterval, dynamic_ncols=False, ncols=100, **kwargs)
