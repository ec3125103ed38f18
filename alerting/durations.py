"""Durations as written in the catalog and on the command line: ``"30s"``, ``"5m"``, ``"1h30m"``, ``"1d"``.

A copy of ``kpimon.durations`` (same spelling, same errors): alerting may not import the shell.
"""

from __future__ import annotations

import math
import re
from typing import Any

__all__ = ["parse_duration"]

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")


def parse_duration(value: Any) -> float:
    """Seconds from ``"30s"``, ``"5m"``, ``"1h30m"``, ``"1d"`` or a number of seconds.

    >>> parse_duration("1h30m"), parse_duration(45)
    (5400.0, 45.0)
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"expected a duration like '30s' or '5m', got {value!r}")
    if isinstance(value, int | float):
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"duration must be a finite number >= 0, got {value!r}")
        return float(value)
    text, pos, total = value.strip().lower(), 0, 0.0
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if not text or pos != len(text):
        raise ValueError(f"bad duration {value!r}: use a number with a unit, e.g. 30s, 5m, 1h, 1d")
    return total
