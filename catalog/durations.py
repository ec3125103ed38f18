"""Human durations ("30s", "5m", "1h", "1d", "500ms") to seconds: the one parser of the catalog, the CLI and alerting.

Numbers are seconds; strings need a unit (``"5"`` is refused: it is too easy to mean minutes). Every failure is
a :class:`DurationError` (a ``ValueError``). :data:`Duration` and :data:`OptionalDuration` are the pydantic field
types every schema uses, so no model writes its own duration validator.

Examples
--------
>>> parse_duration("5m")
300.0
>>> parse_duration("1h30m"), parse_duration(45)
(5400.0, 45.0)
>>> parse_duration(90)
90.0
>>> format_duration(3600.0)
'1h'
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

__all__ = ["Duration", "DurationError", "OptionalDuration", "format_duration", "parse_duration"]

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")


class DurationError(ValueError):
    """A duration could not be parsed."""


def parse_duration(value: Any) -> float:
    """Return ``value`` in seconds; numbers are taken as seconds."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise DurationError(f"expected a duration like '30s' or '5m', got {value!r}")
    if isinstance(value, int | float):
        if not math.isfinite(value) or value < 0:
            raise DurationError(f"duration must be a finite number >= 0, got {value!r}")
        return float(value)
    text, pos, total = value.strip().lower(), 0, 0.0
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if not text or pos != len(text):
        raise DurationError(f"bad duration {value!r}: use a number with a unit, e.g. 500ms, 30s, 5m, 1h, 1d, 1w")
    return total


def _optional(value: Any) -> float | None:
    return None if value is None else parse_duration(value)


#: A pydantic field of seconds written as ``30s``, ``5m``, ``1h30m`` or a number of seconds.
Duration = Annotated[float, BeforeValidator(parse_duration), Field(ge=0)]
#: The same, or ``None`` (unset).
OptionalDuration = Annotated[float | None, BeforeValidator(_optional)]


def format_duration(seconds: float) -> str:
    """Shortest exact spelling of ``seconds`` with the units above (falls back to seconds)."""
    for unit in ("w", "d", "h", "m", "s"):
        size = _UNITS[unit]
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    if seconds == 0:
        return "0s"
    return f"{seconds:g}s"
