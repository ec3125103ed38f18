"""The Store protocol: everything alerting keeps between evaluations and across restarts.

Two implementations: :class:`~alerting.memory_store.MemoryStore` (tests, demos) and
:class:`~alerting.redis_store.RedisStore` (real use). Records cross the interface as the small dataclasses below
or as JSON-safe dicts, so both stores serialise the same way.

The outbox is the delivery contract: :meth:`Store.enqueue` is idempotent on the notification id;
:meth:`Store.claim` hands out due entries under a lease (an abandoned claim becomes due again when its lease
expires), and only the oldest pending entry of each *stream* (one alert group on one channel): a newer one waits
until the older one is delivered or dropped, so a receiver never gets a group's ``resolved`` before its
``firing``. :meth:`Store.finish`, :meth:`Store.reschedule` and :meth:`Store.renew` only succeed for the current
lease token, so a worker that lost its lease cannot overwrite the newer holder's result. Times given to the
outbox methods are wall-clock epoch seconds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from alerting.acks import Ack
from alerting.history import CAP, KEEP_S, IncidentRecord
from alerting.lifecycle import AlertState
from alerting.silences import Silence

__all__ = ["FEEDBACK_LOG_LIMIT", "Claim", "OutboxRecord", "RuleKey", "Store", "StoreError", "feedback_key"]

RuleKey = tuple[str, str]  # (kpi, rule)
FEEDBACK_LOG_LIMIT = 10_000  # feedback writes kept for the workers to catch up on (records themselves stay)


def feedback_key(fingerprint: str, incident: float) -> str:
    """The key of an incident's feedback record: one per alert incident.

    >>> feedback_key("f00d", 100.0)
    'f00d|100.0'
    """
    return f"{fingerprint}|{float(incident)!r}"
EntryState = Literal["pending", "delivered", "failed"]


class StoreError(RuntimeError):
    """The store could not be reached or holds something unreadable."""


@dataclass(frozen=True, slots=True)
class OutboxRecord:
    """One outbox entry: ``payload`` is the serialised notification (see :mod:`alerting.outbox`).

    ``stream`` names the sequence the entry belongs to (``group key|channel``; empty: none, never waits for
    another entry); ``seq`` is its place in the outbox, set by :meth:`Store.enqueue` (later = larger)."""

    id: str
    receiver: str
    payload: str
    created_at: float
    next_at: float
    attempts: int = 0
    state: EntryState = "pending"
    reason: str = ""
    stream: str = ""
    seq: int = 0


@dataclass(frozen=True, slots=True)
class Claim:
    """A leased outbox entry; ``token`` proves the lease."""

    record: OutboxRecord
    token: str


class Store(Protocol):
    """Persistence for the alerting core. All methods are coroutines."""

    # alert states (pending, firing, or resolved-not-yet-told)
    async def get_alert(self, fingerprint: str) -> AlertState | None: ...
    async def put_alert(self, state: AlertState) -> None: ...
    async def delete_alert(self, fingerprint: str, *, if_unchanged: AlertState | None = None) -> bool:
        """Delete an alert state; with ``if_unchanged``, only if it is still exactly that state (so a cleanup
        cannot drop an update an evaluation made in between). ``True`` if deleted."""
        ...

    async def list_alerts(self) -> list[AlertState]: ...

    # the incident history (alerting.history): one record per firing, kept after the alert state is gone
    async def record_incident(self, record: IncidentRecord, *, keep_s: float = KEEP_S, cap: int = CAP) -> None:
        """Write (or overwrite) ``record``; drop records starting more than ``keep_s`` before it, and the oldest
        beyond ``cap``, with their acks."""
        ...

    async def ack_incident(self, fingerprint: str, starts_at: float, by: str, at: float) -> bool:
        """Record that ``by`` acknowledged the incident at ``at``; the first ack wins (``True`` if this one)."""
        ...

    async def list_incidents(self, since: float = float("-inf"), until: float = float("inf")) -> list[IncidentRecord]:
        """Incidents that started in ``[since, until)``, oldest first, with their acks."""
        ...

    # a KPI's total series with its band, for the review digest's charts and attainment (alerting.digest_job)
    async def record_point(
        self, kpi: str, window_start: float, value: float, lower: float | None, upper: float | None, keep_s: float
    ) -> None:
        """Store a window's value and band (a revision replaces it); drop points older than ``keep_s``."""
        ...

    async def list_points(
        self, kpi: str, since: float, until: float
    ) -> list[tuple[float, float, float | None, float | None]]:
        """(window start, value, lower, upper) of the windows starting in ``[since, until)``, oldest first."""
        ...

    # markers: small flags with a lifetime (a digest sent for a period, a lease while it is being sent)
    async def get_marker(self, key: str) -> str | None: ...
    async def set_marker(self, key: str, value: str, *, now: float, ttl_s: float, only_new: bool) -> bool:
        """Set ``key`` to ``value`` for ``ttl_s`` seconds (from ``now``, wall clock); with ``only_new``, only if
        it is not set (a lease). ``True`` if set."""
        ...

    # recent values per series, for change rules
    async def record_value(self, series: str, window_start: float, value: float, retain_s: float) -> None:
        """Store a window's value (a revision replaces it); drop values older than ``retain_s``."""
        ...

    async def get_value(self, series: str, window_start: float) -> float | None: ...

    # the newest window seen per series, so a late revision of an older window is not judged as the newest
    async def note_window(self, series: str, window_start: float) -> float | None:
        """Record a window of ``series`` starting at ``window_start``; return the newest start known *before*
        this call (``None`` for a series never seen). The newest only moves forward."""
        ...

    # when each series of a KPI was last observed (labels JSON -> epoch seconds), for `missing_after`
    async def touch_series(self, kpi: str, labels: str, at: float) -> None: ...
    async def seen_series(self, kpi: str) -> dict[str, float]: ...

    # source freshness records (JSON-safe dicts, see alerting.freshness.SourceRecord), by source name
    async def put_source(self, source: str, record: Mapping[str, Any]) -> None: ...
    async def list_sources(self) -> dict[str, dict[str, Any]]: ...

    # notification groups (JSON-safe dicts, see alerting.grouping.GroupState)
    async def list_groups(self) -> list[dict[str, Any]]: ...
    async def create_group(self, key: str, data: Mapping[str, Any]) -> dict[str, Any]:
        """Store ``data`` unless ``key`` exists; return what is stored (so racing workers agree on one group)."""
        ...

    async def put_group(self, key: str, data: Mapping[str, Any]) -> None: ...
    async def delete_group(self, key: str) -> None: ...

    # silences and acknowledgements
    async def put_silence(self, silence: Silence) -> None: ...
    async def delete_silence(self, silence_id: str) -> bool: ...
    async def list_silences(self) -> list[Silence]: ...
    async def put_ack(self, ack: Ack) -> None: ...
    async def delete_ack(self, fingerprint: str) -> None: ...
    async def list_acks(self) -> list[Ack]: ...

    # the rules the running service uses (published so the API and CLI can validate overrides)
    async def publish_rules(self, rules: Mapping[RuleKey, Mapping[str, Any]]) -> None: ...
    async def get_rules(self) -> dict[RuleKey, dict[str, Any]]: ...

    # threshold overrides: set atomically with their audit entries; the version changes on every write
    async def get_overrides(self) -> dict[RuleKey, dict[str, Any]]: ...
    async def overrides_version(self) -> int: ...
    async def set_override(
        self, key: RuleKey, fields: Mapping[str, Any], audit: Sequence[Mapping[str, Any]]
    ) -> None:
        """Replace the override of ``key`` (``{}`` removes it), append ``audit``, bump the version: atomically."""
        ...

    # feedback, one record per alert incident (see alerting.feedback); kept after the alert resolves
    async def get_feedback(self, fingerprint: str, incident: float) -> dict[str, Any] | None:
        """The feedback record of one incident (with its ``seq``), or ``None``."""
        ...

    async def put_feedback(
        self, record: Mapping[str, Any], audit: Mapping[str, Any], *, expect: str, identity: str
    ) -> int:
        """Store ``record`` (keyed by its ``fingerprint`` and ``incident``) and append ``audit``, atomically,
        only if the stored record's identity is ``expect`` (``""``: none yet). Returns the write's ``seq``
        (> 0, increasing), ``0`` when the stored identity already is ``identity`` (nothing written: it landed
        before), or ``-1`` when it is neither (a concurrent change: re-read and retry)."""
        ...

    async def feedback_since(self, seq: int, limit: int = 100) -> list[dict[str, Any]]:
        """Feedback writes numbered after ``seq``, oldest first, each the record as written with its ``seq``
        (the last :data:`FEEDBACK_LOG_LIMIT` are kept)."""
        ...

    async def list_feedback(self) -> list[dict[str, Any]]:
        """Every feedback record (the latest verdict of each incident, with its ``seq``), oldest write first."""
        ...

    # calendar notes: an "expected" verdict's occasion (see alerting.feedback), merged into the detectors' calendar
    async def put_calendar_note(self, key: str, note: Mapping[str, Any] | None) -> None:
        """Store the note of ``key`` (an incident's feedback key); ``None`` removes it. Bumps the version."""
        ...

    async def list_calendar_notes(self) -> list[dict[str, Any]]: ...
    async def calendar_notes_version(self) -> int: ...

    # audit log (threshold changes, acks, silences, feedback), newest first
    async def append_audit(self, entry: Mapping[str, Any]) -> None: ...
    async def list_audit(self, limit: int = 100, kind: str | None = None) -> list[dict[str, Any]]: ...

    # outbox and delivery log
    async def enqueue(self, record: OutboxRecord) -> bool:
        """Add ``record`` unless its id is already known (queued or finished); ``True`` if added."""
        ...

    async def claim(self, now: float, lease_s: float, limit: int) -> list[Claim]:
        """Lease up to ``limit`` entries due at ``now`` until ``now + lease_s``; each with a fresh token.

        An entry is only handed out while it is the oldest pending (or leased) entry of its stream."""
        ...

    async def renew(self, entry_id: str, token: str, until: float) -> bool:
        """Extend the lease of a claimed entry to ``until`` (a send still in flight); ``False`` if not the lease's."""
        ...

    async def stream_after(self, stream: str, seq: int) -> list[OutboxRecord]:
        """The pending entries of ``stream`` queued after ``seq``, oldest first."""
        ...

    async def outbox_stats(self) -> dict[str, tuple[int, float]]:
        """Channel -> (pending entries, ``created_at`` of the oldest) for channels with pending entries."""
        ...

    async def reschedule(self, entry_id: str, token: str, next_at: float, attempts: int, reason: str) -> bool:
        """Release the lease and make the entry due at ``next_at``; ``False`` if ``token`` is not the lease's."""
        ...

    async def finish(self, entry_id: str, token: str, state: EntryState, attempts: int, reason: str) -> bool:
        """Mark the entry delivered or failed (never due again); ``False`` if ``token`` is not the lease's."""
        ...

    async def get_entry(self, entry_id: str) -> OutboxRecord | None: ...
    async def pending_entries(self) -> list[OutboxRecord]: ...
    async def log_delivery(self, entry: Mapping[str, Any]) -> None: ...
    async def list_deliveries(self, limit: int = 100) -> list[dict[str, Any]]: ...
