"""How numbers are written to the metrics files: one helper, used by every stage that writes metrics."""

from __future__ import annotations

import math
from typing import Any


def rounded(x: Any, digits: int = 4) -> float | None:
    """A number as the metrics files hold it: rounded, None where it is missing or NaN."""
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else round(float(x), digits)
