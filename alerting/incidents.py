"""The anomaly lifecycle follows the data: an open incident is judged against the normal band it left.

The detector announces an incident once and then *holds* further alarms (``holdoff_h``): held points score
just under the threshold, and while the value stays off, the detector's own band widens towards it and a
lasting shift is accepted as a new level (drift). None of that means the value came back. So once an anomaly
rule's condition has opened an incident, :func:`judge` no longer asks "is this point an alarm?" but "is the
value back inside the normal band of the window that opened the incident?":

* the value stays off that band, or is flagged again in the incident's direction → still active (held points
  keep the alert firing; hold-off limits notifications, never the state);
* a value of 0 where the normal band lay above 0 (a count or sum that stopped) → still active, described as
  ``drift: new level 0 since 10:40`` — never "0 is normal", however the detector's band has moved;
* back inside the normal band, or at a new level the detector accepted as drift (a lasting, non-zero shift)
  → a *calm* window; the alert resolves after ``resolve_after`` calm windows in a row.

Examples
--------
>>> from alerting.samples import Sample
>>> opened = open_incident(Sample("paid_orders", {}, 600.0, 660.0, 0.0, 38.0, 20.0, 59.0, 1.0, True))
>>> still = Sample("paid_orders", {}, 660.0, 720.0, 0.0, 30.0, -6.0, 57.0, 0.54)  # held, band widened
>>> judge(opened, still, flagged=False)[0].active
True
>>> back = Sample("paid_orders", {}, 1800.0, 1860.0, 36.0, 1.0, -11.0, 31.0, 0.54)
>>> verdict, incident = judge(opened, back, flagged=False)
>>> verdict.active, verdict.calm, incident.calm
(False, True, 1)
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from alerting.samples import Sample

__all__ = ["Incident", "Judgement", "drift_text", "hhmm", "inside", "judge", "open_incident"]


@dataclass(frozen=True, slots=True)
class Incident:
    """What an open anomaly incident remembers: where and when it started, the normal band it left, whether
    the detector has accepted a new level since (``drifted``), and how many calm windows passed in a row."""

    since: float  # start of the window that opened the incident (epoch seconds)
    expected: float | None
    lower: float | None
    upper: float | None
    direction: int  # -1 a fall, +1 a rise
    drifted: bool = False
    calm: int = 0
    level_since: float | None = None  # set while the value is described as a new level ("drift: ...")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Incident:
        """Inverse of :meth:`to_dict` (unknown keys ignored)."""
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


@dataclass(frozen=True, slots=True)
class Judgement:
    """One window of an open incident: ``active`` (still off), ``calm`` (back), and what to say about it."""

    active: bool
    calm: bool
    summary: str


def hhmm(epoch: float) -> str:
    """``HH:MM`` (UTC) of an epoch time, as alert summaries show window starts.

    >>> hhmm(1_700_000_400.0)
    '22:20'
    """
    return time.strftime("%H:%M", time.gmtime(epoch))


def _num(value: float | None) -> str:
    return "no data" if value is None else f"{value:g}"


def open_incident(sample: Sample) -> Incident:
    """The incident a flagged ``sample`` opens: its window start and the band it fell out of."""
    expected = sample.expected
    value = sample.value if sample.value is not None else 0.0
    direction = -1 if expected is not None and value < expected else 1
    return Incident(sample.window_start, expected, sample.lower, sample.upper, direction)


def inside(value: float, lower: float | None, upper: float | None) -> bool:
    return lower is not None and upper is not None and lower <= value <= upper


def _same_way(incident: Incident, sample: Sample, value: float) -> bool:
    """A fresh alarm in the incident's direction (a worse turn), not the recovery overshooting."""
    if sample.expected is None:
        return True
    return value < sample.expected if incident.direction < 0 else value > sample.expected


def drift_text(level: float | None, since: float) -> str:
    """``drift: new level 0 since 10:40``."""
    return f"drift: new level {_num(level)} since {hhmm(since)}"


def judge(incident: Incident, sample: Sample, *, flagged: bool) -> tuple[Judgement, Incident]:
    """Judge one window of an open incident; return the judgement and the updated incident.

    ``flagged`` is the rule's own verdict on the sample (``fire_on``/``min_score`` applied).
    """
    drifted = incident.drifted or sample.drift
    value = sample.value
    band = f"[{_num(incident.lower)}, {_num(incident.upper)}]"
    if value is None:  # no data says nothing about recovery: hold the incident as it is
        return Judgement(True, False, "no data"), replace(incident, drifted=drifted, calm=0)
    zero = value == 0 and incident.direction < 0 and incident.lower is not None and incident.lower > 0
    if (flagged and _same_way(incident, sample, value)) or zero:
        active = True
    elif inside(value, incident.lower, incident.upper) or incident.lower is None or incident.upper is None:
        active = False  # back (a detector without a band: calm as soon as it no longer flags the value)
    else:  # off the normal band: calm only at a level the detector accepted as the new normal
        active = not (drifted and inside(value, sample.lower, sample.upper))
    if active:
        lasting = drifted or (zero and sample.window_start > incident.since)
        text = (drift_text(value, incident.since) if lasting
                else f"anomaly: {_num(value)}, expected {_num(incident.expected)} in {band}")
        since = incident.since if lasting else None
        return Judgement(True, False, text), replace(incident, drifted=drifted, calm=0, level_since=since)
    if inside(value, incident.lower, incident.upper):
        text, since = f"{_num(value)} is back in the normal range {band}", None
    else:
        text, since = drift_text(value, incident.since) + " (the new normal)", incident.since
    return Judgement(False, True, text), replace(incident, drifted=drifted, calm=incident.calm + 1, level_since=since)
