"""Grouping: which alerts share a notification, and when that notification is due.

Alerts are routed (first matching route, or every matching one with ``continue: true``) and grouped by the
route's ``group_by`` labels and their rule (``alertname``). A new group waits ``group_wait`` so related alerts arrive in one message; later
changes (a new firing alert, a resolved one) are sent at most every ``group_interval``; an unchanged group with
unacknowledged firing alerts is repeated every ``repeat_interval``. Like Alertmanager's dispatcher, but state is
a small serialisable :class:`GroupState` so a restarted worker continues where the old one stopped.

Examples
--------
>>> from alerting.config import RouteSpec
>>> route = RouteSpec(channels=["ops"], group_by=["kpi"], group_wait=30)
>>> g = GroupState.new("r0", {"kpi": "orders"}, now=0.0)
>>> flush_reason(g, route, [Member("f1", "firing", acked=False)], now=10.0) is None
True
>>> flush_reason(g, route, [Member("f1", "firing", acked=False)], now=30.0)
'first'
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from alerting.config import RouteSpec

__all__ = ["GroupState", "Member", "apply_flush", "flush_reason", "group_key", "match_routes", "route_id"]


def route_id(route: RouteSpec, index: int) -> str:
    """A route's stable id: its ``name`` or its position."""
    return route.name or f"route{index}"


def match_routes(routes: Sequence[RouteSpec], labels: Mapping[str, str]) -> list[tuple[str, RouteSpec]]:
    """Routes an alert with ``labels`` goes to, in order (stops at the first without ``continue``)."""
    out = []
    for i, route in enumerate(routes):
        if route.matches(labels):
            out.append((route_id(route, i), route))
            if not route.continue_:
                break
    return out


def group_key(rid: str, route: RouteSpec, labels: Mapping[str, str]) -> tuple[str, dict[str, str]]:
    """The group key (readable prefix + hash) and the group labels of an alert on route ``rid``.

    A group always holds one rule (``alertname`` is implied in ``group_by``): a message then states one
    condition and lists the series it holds for, so a feed that stops yields one message per rule, not one
    per series, and never one mixing unrelated conditions.

    >>> from alerting.config import RouteSpec
    >>> group_key("r0", RouteSpec(channels=["ops"]), {"kpi": "orders", "alertname": "low", "region": "east"})[1]
    {'kpi': 'orders', 'alertname': 'low'}
    """
    glabels = {name: labels.get(name, "") for name in route.group_by}
    glabels.setdefault("alertname", labels.get("alertname", ""))
    digest = hashlib.sha256(json.dumps([rid, sorted(glabels.items())]).encode()).hexdigest()[:12]
    return f"{rid}:{digest}", glabels


@dataclass(frozen=True, slots=True)
class Member:
    """An alert as its group sees it: fingerprint, ``firing``/``resolved``, whether acknowledged."""

    fingerprint: str
    status: str
    acked: bool


@dataclass(slots=True)
class GroupState:
    """One notification group. ``sent`` maps fingerprints to the status last notified (only ``firing`` kept);
    ``seq`` numbers flushes so notification ids are deterministic (a retried flush reuses its id)."""

    key: str
    route: str
    labels: dict[str, str]
    created_at: float
    last_flush_at: float | None = None
    seq: int = 0
    sent: dict[str, str] = field(default_factory=dict)
    # fingerprint -> starts_at of the escalated incident
    escalated: dict[str, float] = field(default_factory=dict)
    escalation_seq: int = 0
    # fingerprint -> seq of the last correction notice queued for it (alerting.pipeline)
    corrected: dict[str, int] = field(default_factory=dict)
    # Notification ids hash (key, incarnation, seq): a group deleted and created again never reuses an id.
    incarnation: str = field(default_factory=lambda: uuid.uuid4().hex)

    @classmethod
    def new(cls, key: str, labels: Mapping[str, str], now: float, route: str = "") -> GroupState:
        """A group created at ``now`` (its ``group_wait`` starts then)."""
        return cls(key=key, route=route or key.partition(":")[0], labels=dict(labels), created_at=now)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GroupState:
        """Inverse of :meth:`to_dict`."""
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def _changes(group: GroupState, members: Sequence[Member]) -> tuple[bool, bool]:
    """(any firing alert not yet notified, any notified alert now resolved)."""
    new_firing = any(m.status == "firing" and group.sent.get(m.fingerprint) != "firing" for m in members)
    newly_resolved = any(
        m.status == "resolved" and group.sent.get(m.fingerprint) == "firing" for m in members
    )
    return new_firing, newly_resolved


def flush_reason(group: GroupState, route: RouteSpec, members: Sequence[Member], now: float) -> str | None:
    """Why the group must be notified now (``first``, ``update``, ``repeat``) or ``None``."""
    new_firing, newly_resolved = _changes(group, members)
    if group.last_flush_at is None:
        return "first" if new_firing and now >= group.created_at + route.group_wait else None
    if (new_firing or newly_resolved) and now >= group.last_flush_at + route.group_interval:
        return "update"
    unacked_firing = any(m.status == "firing" and not m.acked for m in members)
    if unacked_firing and now >= group.last_flush_at + route.repeat_interval:
        return "repeat"
    return None


def to_notify(group: GroupState, members: Sequence[Member]) -> list[Member]:
    """Members a flush includes: every firing alert, plus resolved ones whose firing was notified."""
    return [m for m in members if m.status == "firing" or group.sent.get(m.fingerprint) == "firing"]


def apply_flush(group: GroupState, members: Sequence[Member], now: float) -> None:
    """Record a flush of ``members`` at ``now`` (resolved alerts are told once, then forgotten)."""
    group.last_flush_at = now
    group.seq += 1
    group.sent = {m.fingerprint: "firing" for m in members if m.status == "firing"}
