"""Escalation: a critical alert nobody acknowledged within ``after`` goes to the route's escalation channels.

Each incident (fingerprint + ``starts_at``) escalates once; an acknowledgement before ``after`` prevents it.

Examples
--------
>>> from alerting.config import RouteSpec
>>> from alerting.grouping import GroupState
>>> route = RouteSpec(channels=["ops"], escalate={"after": "15m", "channels": ["oncall"]})
>>> g = GroupState.new("r0:x", {}, now=0.0)
>>> due_escalations(g, route, [Candidate("f1", "critical", 0.0, acked=False)], now=899.0)
[]
>>> [c.fingerprint for c in due_escalations(g, route, [Candidate("f1", "critical", 0.0, acked=False)], now=900.0)]
['f1']
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from alerting.config import RouteSpec
from alerting.grouping import GroupState

__all__ = ["Candidate", "due_escalations", "mark_escalated"]


@dataclass(frozen=True, slots=True)
class Candidate:
    """A firing alert that might escalate."""

    fingerprint: str
    severity: str
    starts_at: float
    acked: bool


def due_escalations(
    group: GroupState, route: RouteSpec, candidates: Sequence[Candidate], now: float
) -> list[Candidate]:
    """Firing alerts of ``group`` that must escalate at ``now``."""
    esc = route.escalate
    if esc is None:
        return []
    return [
        c
        for c in candidates
        if c.severity in esc.severities
        and not c.acked
        and now - c.starts_at >= esc.after
        and group.escalated.get(c.fingerprint) != c.starts_at
    ]


def mark_escalated(group: GroupState, escalated: Sequence[Candidate], live: set[str]) -> None:
    """Remember escalated incidents; forget those of alerts no longer in the group (``live``)."""
    group.escalated = {fp: t for fp, t in group.escalated.items() if fp in live}
    for c in escalated:
        group.escalated[c.fingerprint] = c.starts_at
    if escalated:
        group.escalation_seq += 1
