"""Reading a Likert answer out of a reply, the study's way (a leading integer), with failures counted."""

from __future__ import annotations

import re

_LEADING_INT = re.compile(r"^\d+")


def parse_score(reply: str, lo: int = 1, hi: int = 5) -> int | None:
    """The leading integer of the stripped reply (PsychoBench's ``^\\d+``), or None when there is none or it is
    outside ``lo..hi``. The study scored a failed generation as 3; here a failure stays a failure."""
    m = _LEADING_INT.match(str(reply).strip())
    if not m:
        return None
    value = int(m.group())
    return value if lo <= value <= hi else None
