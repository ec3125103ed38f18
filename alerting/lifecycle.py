"""The alert state machine: inactive -> pending (``for``) -> firing -> resolved, with keep-firing.

One :class:`AlertState` per rule x series (its :func:`fingerprint`); :func:`advance` is pure and takes the time
as an argument, so tests drive it with any clock.

Examples
--------
>>> s = new_state("orders", "low", {}, {"kpi": "orders"}, "warning")
>>> s = advance(s, True, now=0.0, for_s=60.0, keep_s=0.0)
>>> s.state
'pending'
>>> advance(s, True, now=60.0, for_s=60.0, keep_s=0.0).state
'firing'
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

__all__ = ["AlertState", "State", "Transition", "advance", "fingerprint", "new_state"]

State = Literal["inactive", "pending", "firing", "resolved"]


def fingerprint(kpi: str, rule: str, series: Mapping[str, str]) -> str:
    """Stable identity of one rule on one series (the dedup key).

    >>> fingerprint("orders", "low", {"region": "east"}) == fingerprint("orders", "low", {"region": "east"})
    True
    """
    raw = json.dumps([kpi, rule, sorted(series.items())], separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()[:20]


@dataclass(frozen=True, slots=True)
class AlertState:
    """Everything known about one alert; serialisable with :meth:`to_dict` / :meth:`from_dict`."""

    fingerprint: str
    kpi: str
    rule: str
    series: Mapping[str, str]
    labels: Mapping[str, str]
    severity: str
    state: State = "inactive"
    active_since: float | None = None  # condition true since (pending start)
    last_active_at: float | None = None  # last evaluation with the condition true (keep-firing clock)
    starts_at: float | None = None  # firing since
    ends_at: float | None = None  # resolved at
    value: float | None = None
    expected: float | None = None
    lower: float | None = None
    upper: float | None = None
    window_start: float = 0.0
    window_end: float = 0.0
    summary: str = ""
    updated_at: float = 0.0
    # anomaly rules: the open incident (alerting.incidents.Incident as a dict) while pending/firing
    incident: Mapping[str, Any] | None = None
    # whether the condition really held on the newest window judged (not only kept by keep-firing/resolve_after)
    holds: bool = False
    # the window the alert fired on: {"start", "end", "value", "at"} (what a correction refers to)
    raised: Mapping[str, Any] | None = None
    # the latest correction: {"seq", "start", "end", "was", "now", "raised_at", "retracted"}
    correction: Mapping[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict."""
        out = asdict(self)
        out["series"], out["labels"] = dict(self.series), dict(self.labels)
        for key in ("incident", "raised", "correction"):
            value = getattr(self, key)
            out[key] = None if value is None else dict(value)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AlertState:
        """Inverse of :meth:`to_dict` (unknown keys ignored, so old records still load)."""
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


@dataclass(frozen=True, slots=True)
class Transition:
    """A state change returned by ``AlertService.observe``."""

    fingerprint: str
    kpi: str
    rule: str
    labels: Mapping[str, str]
    severity: str
    old: State
    new: State
    at: float
    summary: str


def new_state(
    kpi: str, rule: str, series: Mapping[str, str], labels: Mapping[str, str], severity: str
) -> AlertState:
    """A fresh, inactive state for ``rule`` on the series ``series``."""
    return AlertState(fingerprint(kpi, rule, series), kpi, rule, dict(series), dict(labels), severity)


def advance(state: AlertState, active: bool, *, now: float, for_s: float, keep_s: float) -> AlertState:
    """The state after one evaluation whose condition is ``active`` at ``now``.

    Pending becomes firing once the condition has held for ``for_s``; a firing alert resolves only after the
    condition has been false for ``keep_s`` (measured from its last true evaluation).

    A resolved alert that turns active again keeps its previous incident (``starts_at``/``ends_at``) while
    pending, and returns to ``resolved`` if the condition clears before firing: that resolution may not have
    been notified yet, and must not be lost.
    """
    st = state.state
    if active:
        if st in ("inactive", "resolved"):
            state = replace(state, state="pending", active_since=now)
            st = "pending"
        state = replace(state, last_active_at=now, updated_at=now)
        since = state.active_since if state.active_since is not None else now
        if st == "pending" and now - since >= for_s:
            return replace(state, state="firing", starts_at=now, ends_at=None)
        return state
    if st == "pending":
        back: State = "resolved" if state.ends_at is not None else "inactive"
        return replace(state, state=back, active_since=None, updated_at=now)
    if st == "firing":
        last = state.last_active_at if state.last_active_at is not None else now
        if now - last >= keep_s:
            return replace(state, state="resolved", ends_at=now, active_since=None, updated_at=now)
    return state
