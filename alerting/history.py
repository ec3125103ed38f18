"""The durable incident history: one record per time an alert fired, kept after the alert state is gone.

Alert states (:mod:`alerting.lifecycle`) are deleted once an alert is inactive again, so they cannot answer
"what fired last week, when was it acknowledged, when did it end" for the review (复盘, :mod:`alerting.review`).
The service therefore writes an :class:`IncidentRecord` when an alert starts firing and again when it resolves;
an acknowledgement is stored beside it (first ack wins), not inside it, so an ack and a resolution written at the
same moment by the API and the worker cannot overwrite each other.

An incident is identified by the alert's fingerprint and its ``starts_at`` (:func:`incident_id`), the same pair an
:class:`~alerting.acks.Ack` and a feedback audit entry (``fingerprint``, ``incident``) refer to. Times are the
lifecycle's clock (event time in the worker). The history is bounded: records whose start is older than
``keep_s`` before the newest write, and the oldest beyond ``cap``, are dropped on every write
(:data:`KEEP_S`, :data:`CAP` by default).

Examples
--------
>>> rec = IncidentRecord("f1", "orders", "low", {"team": "shop"}, "warning", starts_at=60.0, value=3.0)
>>> rec.id, rec.team, rec.open
('f1@60.0', 'shop', True)
>>> IncidentRecord.from_dict(rec.to_dict()) == rec
True
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from alerting.lifecycle import AlertState

__all__ = ["CAP", "KEEP_S", "IncidentRecord", "incident_id", "record_of", "with_ack"]

KEEP_S = 90 * 86400.0
CAP = 20_000


def incident_id(fingerprint: str, starts_at: float) -> str:
    """The history key of one incident: ``fingerprint@starts_at``.

    >>> incident_id("f1", 1_700_000_000.0)
    'f1@1700000000.0'
    """
    return f"{fingerprint}@{float(starts_at)!r}"


@dataclass(frozen=True, slots=True)
class IncidentRecord:
    """One firing of one alert: what, whose (``team``), when it started, resolved and was acknowledged, and the
    value of the window it fired on."""

    fingerprint: str
    kpi: str
    rule: str
    labels: Mapping[str, str]
    severity: str
    starts_at: float
    resolved_at: float | None = None
    acked_at: float | None = None
    acked_by: str = ""
    value: float | None = None  # the value of the window the alert fired on
    window_start: float | None = None  # that window's start
    summary: str = ""
    team: str = field(default="")
    series: Mapping[str, str] | None = None  # the series' own labels (None: a record without them, see labels)

    def __post_init__(self) -> None:
        if not self.team:  # the team is the alert's ``team`` label (the KPI owner unless a rule says otherwise)
            object.__setattr__(self, "team", str(self.labels.get("team", "")))

    @property
    def id(self) -> str:
        return incident_id(self.fingerprint, self.starts_at)

    @property
    def open(self) -> bool:
        return self.resolved_at is None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict."""
        out = asdict(self)
        out["labels"] = dict(self.labels)
        out["series"] = None if self.series is None else dict(self.series)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> IncidentRecord:
        """Inverse of :meth:`to_dict` (unknown keys ignored)."""
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def record_of(state: AlertState) -> IncidentRecord:
    """The history record of a firing or resolved alert state (``starts_at`` set)."""
    assert state.starts_at is not None, "only an alert that fired has an incident"
    raised = state.raised or {}
    resolved = state.ends_at if state.state == "resolved" else None
    return IncidentRecord(
        state.fingerprint, state.kpi, state.rule, dict(state.labels), state.severity, state.starts_at,
        resolved_at=resolved, value=raised.get("value", state.value), window_start=raised.get("start"),
        summary=state.summary, series=dict(state.series),
    )  # fmt: skip


def with_ack(record: IncidentRecord, ack: Mapping[str, Any] | None) -> IncidentRecord:
    """``record`` with the stored acknowledgement ``{"by", "at"}`` of its incident, if any."""
    if ack is None:
        return record
    return replace(record, acked_at=float(ack["at"]), acked_by=str(ack.get("by", "")))
