"""The seasonal detector's state codec: plain JSON of about 2 KB, restored bit for bit.

Scalars are JSON floats (exact); the profile, day-factor and hour knots and the hours channel are float32 in memory
and travel as base64 little-endian float32, so a restored detector is bit-identical (a holiday factor, learned only
with a business calendar, is one more float32 at the end of ``"knots"``; the calendar itself is never in the state). ``"version": 5``; a version 4
state (no lag channel) restores with the lag channel fresh; other versions (a different model) are refused with a
:class:`~detectors.base.DetectorError` that says so.

>>> from array import array
>>> knots = array("f", [0.5, -1.25, 3.0])
>>> _pack(knots)
'AAAAPwAAoL8AAEBA'
>>> _unpack(_pack(knots), 3, "knots") == knots
True
>>> _unpack(_pack(knots), 4, "knots")
Traceback (most recent call last):
...
ValueError: knots must hold 4 knots, got 3
"""

from __future__ import annotations

import base64
import math
import sys
from array import array
from typing import Any

from detectors.base import DetectorError
from detectors.seasonal.fields import Fields

__all__ = ["VERSION", "check_version", "dump_state", "load_state"]

VERSION = 5  # of the JSON state (5 added the lag channel; a version 4 state restores with it fresh)
_READS = (4, 5)

# The plain float attributes of the state, in the order of its "scalars" list
_SCALARS = ("level", "slow", "dev", "sdev", "recent", "shift", "tail", "week", "alarm_score")


def dump_state(det: Fields, params: dict[str, Any]) -> dict[str, Any]:
    """Plain-JSON state of ``det`` with ``params`` (those that differ from the defaults)."""
    return {"kind": det.kind, "version": VERSION, "params": params, "n": det.n,
            "time": [det.t_first, det.t_last, det.dt],
            # level, slow, dev, sdev, recent, shift, tail, week, alarm_score (see _SCALARS)
            "scalars": [getattr(det, name) for name in _SCALARS],
            "peaks": list(det.peaks), "range": [det.hi, det.lo],
            "cusum": det._cusum.to_list(), "day": [det.day, det.day_sum, det.day_n],
            "quiet_until": det.quiet_until if math.isfinite(det.quiet_until) else None,
            # the holiday factor (float32) last, only once learned (with a business calendar)
            "knots": _pack(det.daily + det.weekly + det.dayf + det.hours + det.hours_mean + det.lag
                           + (array("f", [det.hol]) if det.hol else array("f"))),
            "tod": _pack(det.tod + det.tod_n) if any(det.tod_n) else ""}  # most series never need it


def check_version(state: Any) -> None:
    """DetectorError for a state of another version (a different model: no restore can be right)."""
    if isinstance(state, dict) and state.get("version", VERSION) not in _READS:
        raise DetectorError(f"not a valid seasonal detector state: version {state['version']!r} is not "
                            f"supported (this is version {VERSION}; the model changed, start a fresh detector)")


def load_state(det: Fields, state: dict[str, Any]) -> None:
    """Set the learned numbers of ``det`` (built with the state's params) from ``state``.

    Raises KeyError, TypeError, ValueError or IndexError for a malformed state (the caller names it).
    """
    det.n = int(state["n"])
    det.t_first, det.t_last, det.dt = (float(x) for x in state["time"])
    scalars = state["scalars"]
    if len(scalars) != len(_SCALARS):
        raise ValueError(f"scalars must hold {len(_SCALARS)} numbers")
    for name, x in zip(_SCALARS, scalars, strict=True):
        setattr(det, name, float(x))
    det.peaks = [float(x) for x in state["peaks"]]
    if len(det.peaks) != 4:
        raise ValueError("peaks must hold 4 numbers")
    det.hi, det.lo = (float(x) for x in state["range"])
    det._cusum.load_list(state["cusum"])
    day, det.day_sum, det.day_n = state["day"]
    det.day, det.day_sum, det.day_n = int(day), float(det.day_sum), float(det.day_n)
    quiet = state["quiet_until"]
    det.quiet_until = -math.inf if quiet is None else float(quiet)
    sizes = [len(det.daily), len(det.weekly), len(det.dayf), len(det.hours), len(det.hours_mean),
             len(det.lag)]
    if state.get("version", VERSION) == 4:  # no lag channel yet: it starts from zero (and counts after a week)
        knots = _unpack(state["knots"], sum(sizes) - len(det.lag), "knots") + det.lag
    else:
        knots = _unpack(state["knots"], sum(sizes), "knots", extra=1)
    det.hol = float(knots[-1]) if len(knots) > sum(sizes) else 0.0
    parts = []
    at = 0
    for size in sizes:
        parts.append(knots[at:at + size])
        at += size
    det.daily, det.weekly, det.dayf, det.hours, det.hours_mean, det.lag = parts
    if state["tod"]:
        tod = _unpack(state["tod"], 48, "tod")
        det.tod, det.tod_n = tod[:24], tod[24:]


def _pack(knots: array[float]) -> str:
    """Base64 of the knots as little-endian float32 (exact: they are float32 in memory)."""
    if sys.byteorder == "little":
        return base64.b64encode(knots.tobytes()).decode("ascii")
    swapped = array("f", knots)
    swapped.byteswap()
    return base64.b64encode(swapped.tobytes()).decode("ascii")


def _unpack(text: str, count: int, name: str, extra: int = 0) -> array[float]:
    """``count`` knots (or up to ``extra`` more) from :func:`_pack` text."""
    knots = array("f", base64.b64decode(text.encode("ascii"), validate=True))
    if sys.byteorder != "little":
        knots.byteswap()
    if not count <= len(knots) <= count + extra:
        raise ValueError(f"{name} must hold {count} knots, got {len(knots)}")
    return knots
