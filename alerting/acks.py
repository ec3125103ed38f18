"""Acknowledgements: someone owns a firing alert, so stop repeating and escalating it.

An ack is tied to one incident: the alert's fingerprint *and* its ``starts_at``. When the alert resolves and
fires again later, the old ack no longer applies. :class:`AckMuter` is a :class:`~alerting.silences.Muter`
matching the alert's exact label set.

Examples
--------
>>> ack = Ack("f1", {"kpi": "orders"}, incident=10.0, by="ann", at=20.0)
>>> AckMuter([ack]).mutes({"kpi": "orders"}, now=30.0)
True
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Ack", "AckMuter"]


@dataclass(frozen=True, slots=True)
class Ack:
    """``by`` acknowledged the alert ``fingerprint`` (firing since ``incident``) at ``at``."""

    fingerprint: str
    labels: Mapping[str, str]
    incident: float
    by: str
    at: float
    comment: str = ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict."""
        return {
            "fingerprint": self.fingerprint,
            "labels": dict(self.labels),
            "incident": self.incident,
            "by": self.by,
            "at": self.at,
            "comment": self.comment,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Ack:
        """Inverse of :meth:`to_dict`."""
        return cls(
            str(data["fingerprint"]),
            dict(data["labels"]),
            float(data["incident"]),
            str(data["by"]),
            float(data["at"]),
            str(data.get("comment", "")),
        )


class AckMuter:
    """Mutes repeats and escalation of acknowledged alerts (matched by their exact label set)."""

    def __init__(self, acks: Iterable[Ack]) -> None:
        self._labels = [dict(a.labels) for a in acks]

    def mutes(self, labels: Mapping[str, str], now: float) -> bool:
        """Whether an ack covers the alert with exactly ``labels``; acks do not expire by time."""
        del now  # acks end with the incident, not with the clock
        want = dict(labels)
        return any(lbls == want for lbls in self._labels)
