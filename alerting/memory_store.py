"""An in-process :class:`~alerting.store.Store` for tests and the embedded demo.

Records are kept as JSON strings, exactly as the Redis store keeps them, so a serialisation bug shows up here
too. Not shared between processes; lost on exit.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from alerting.acks import Ack
from alerting.history import CAP, KEEP_S, IncidentRecord, incident_id, with_ack
from alerting.lifecycle import AlertState
from alerting.silences import Silence
from alerting.store import FEEDBACK_LOG_LIMIT, Claim, EntryState, OutboxRecord, RuleKey, feedback_key

__all__ = ["MemoryStore"]

_LOG_LIMIT = 10_000


def _key(key: RuleKey) -> str:
    return f"{key[0]}/{key[1]}"


def _unkey(text: str) -> RuleKey:
    kpi, _, rule = text.partition("/")
    return kpi, rule


class MemoryStore:
    """Dict-backed store; every method mirrors :class:`~alerting.redis_store.RedisStore`."""

    def __init__(self) -> None:
        self.alerts: dict[str, str] = {}
        self.history: dict[str, dict[float, float]] = {}
        self.incidents: dict[str, str] = {}  # incident id -> IncidentRecord JSON
        self.incident_acks: dict[str, str] = {}  # incident id -> {"by", "at"} JSON
        self.markers: dict[str, tuple[str, float]] = {}  # key -> (value, expires at)
        self.points: dict[str, dict[float, tuple[float, float | None, float | None]]] = {}
        self.seen: dict[str, dict[str, float]] = {}
        self.newest: dict[str, float] = {}
        self.sources: dict[str, str] = {}
        self.groups: dict[str, str] = {}
        self.silences: dict[str, str] = {}
        self.acks: dict[str, str] = {}
        self.rules: dict[str, str] = {}
        self.overrides: dict[str, str] = {}
        self.version = 0
        self.audit: list[str] = []
        self.outbox: dict[str, OutboxRecord] = {}
        self.leases: dict[str, tuple[str, float]] = {}  # id -> (token, lease_until)
        self._finished_by: dict[str, str] = {}  # id -> the lease token that finished it (a repeated finish is a no-op)
        self.seq = 0
        self.deliveries: list[str] = []
        self.feedback: dict[str, tuple[str, int, str]] = {}  # key -> (identity, seq, record JSON)
        self.feedback_log: list[tuple[int, str]] = []
        self.feedback_seq = 0
        self.notes: dict[str, str] = {}
        self.notes_version = 0

    async def get_alert(self, fingerprint: str) -> AlertState | None:
        raw = self.alerts.get(fingerprint)
        return None if raw is None else AlertState.from_dict(json.loads(raw))

    async def put_alert(self, state: AlertState) -> None:
        self.alerts[state.fingerprint] = json.dumps(state.to_dict())

    async def delete_alert(self, fingerprint: str, *, if_unchanged: AlertState | None = None) -> bool:
        current = self.alerts.get(fingerprint)
        if current is None or (if_unchanged is not None and current != json.dumps(if_unchanged.to_dict())):
            return False
        del self.alerts[fingerprint]
        return True

    async def list_alerts(self) -> list[AlertState]:
        return [AlertState.from_dict(json.loads(raw)) for raw in self.alerts.values()]

    async def record_incident(self, record: IncidentRecord, *, keep_s: float = KEEP_S, cap: int = CAP) -> None:
        self.incidents[record.id] = json.dumps(record.to_dict())
        by_start = sorted(self.incidents, key=lambda i: (json.loads(self.incidents[i])["starts_at"], i))
        cutoff = record.starts_at - keep_s
        old = [i for i in by_start if json.loads(self.incidents[i])["starts_at"] < cutoff]
        old += [i for i in by_start[: max(0, len(by_start) - cap)] if i not in old]
        for i in old:
            del self.incidents[i]
            self.incident_acks.pop(i, None)

    async def ack_incident(self, fingerprint: str, starts_at: float, by: str, at: float) -> bool:
        key = incident_id(fingerprint, starts_at)
        if key in self.incident_acks:
            return False
        self.incident_acks[key] = json.dumps({"by": by, "at": at})
        return True

    async def list_incidents(self, since: float = float("-inf"), until: float = float("inf")) -> list[IncidentRecord]:
        records = [IncidentRecord.from_dict(json.loads(raw)) for raw in self.incidents.values()]
        found = [r for r in records if since <= r.starts_at < until]
        acks = {k: json.loads(v) for k, v in self.incident_acks.items()}
        return [with_ack(r, acks.get(r.id)) for r in sorted(found, key=lambda r: (r.starts_at, r.id))]

    async def record_point(
        self, kpi: str, window_start: float, value: float, lower: float | None, upper: float | None, keep_s: float
    ) -> None:
        points = self.points.setdefault(kpi, {})
        points[window_start] = (value, lower, upper)
        for old in [ws for ws in points if ws < window_start - keep_s]:
            del points[old]

    async def list_points(
        self, kpi: str, since: float, until: float
    ) -> list[tuple[float, float, float | None, float | None]]:
        found = sorted((ws, *p) for ws, p in self.points.get(kpi, {}).items() if since <= ws < until)
        return [(ws, v, lo, hi) for ws, v, lo, hi in found]

    async def get_marker(self, key: str) -> str | None:
        # without a clock of its own, an expired marker is only dropped by the next set_marker
        found = self.markers.get(key)
        return None if found is None else found[0]

    async def set_marker(self, key: str, value: str, *, now: float, ttl_s: float, only_new: bool) -> bool:
        found = self.markers.get(key)
        if only_new and found is not None and found[1] > now:
            return False
        self.markers[key] = (value, now + ttl_s)
        return True

    async def record_value(self, series: str, window_start: float, value: float, retain_s: float) -> None:
        values = self.history.setdefault(series, {})
        values[window_start] = value
        for old in [ws for ws in values if ws < window_start - retain_s]:
            del values[old]

    async def get_value(self, series: str, window_start: float) -> float | None:
        return self.history.get(series, {}).get(window_start)

    async def note_window(self, series: str, window_start: float) -> float | None:
        before = self.newest.get(series)
        if before is None or window_start > before:
            self.newest[series] = window_start
        return before

    async def touch_series(self, kpi: str, labels: str, at: float) -> None:
        self.seen.setdefault(kpi, {})[labels] = at

    async def seen_series(self, kpi: str) -> dict[str, float]:
        return dict(self.seen.get(kpi, {}))

    async def put_source(self, source: str, record: Mapping[str, Any]) -> None:
        self.sources[source] = json.dumps(dict(record))

    async def list_sources(self) -> dict[str, dict[str, Any]]:
        return {k: json.loads(v) for k, v in self.sources.items()}

    async def list_groups(self) -> list[dict[str, Any]]:
        return [json.loads(raw) for raw in self.groups.values()]

    async def create_group(self, key: str, data: Mapping[str, Any]) -> dict[str, Any]:
        raw = self.groups.setdefault(key, json.dumps(dict(data)))
        result: dict[str, Any] = json.loads(raw)
        return result

    async def put_group(self, key: str, data: Mapping[str, Any]) -> None:
        self.groups[key] = json.dumps(data)

    async def delete_group(self, key: str) -> None:
        self.groups.pop(key, None)

    async def put_silence(self, silence: Silence) -> None:
        self.silences[silence.id] = json.dumps(silence.to_dict())

    async def delete_silence(self, silence_id: str) -> bool:
        return self.silences.pop(silence_id, None) is not None

    async def list_silences(self) -> list[Silence]:
        return [Silence.from_dict(json.loads(raw)) for raw in self.silences.values()]

    async def put_ack(self, ack: Ack) -> None:
        self.acks[ack.fingerprint] = json.dumps(ack.to_dict())

    async def delete_ack(self, fingerprint: str) -> None:
        self.acks.pop(fingerprint, None)

    async def list_acks(self) -> list[Ack]:
        return [Ack.from_dict(json.loads(raw)) for raw in self.acks.values()]

    async def publish_rules(self, rules: Mapping[RuleKey, Mapping[str, Any]]) -> None:
        self.rules = {_key(k): json.dumps(v) for k, v in rules.items()}

    async def get_rules(self) -> dict[RuleKey, dict[str, Any]]:
        return {_unkey(k): json.loads(v) for k, v in self.rules.items()}

    async def get_overrides(self) -> dict[RuleKey, dict[str, Any]]:
        return {_unkey(k): json.loads(v) for k, v in self.overrides.items()}

    async def overrides_version(self) -> int:
        return self.version

    async def set_override(
        self, key: RuleKey, fields: Mapping[str, Any], audit: Sequence[Mapping[str, Any]]
    ) -> None:
        if fields:
            self.overrides[_key(key)] = json.dumps(dict(fields))
        else:
            self.overrides.pop(_key(key), None)
        for entry in reversed(audit):  # newest first, fields of one change in order
            await self.append_audit(entry)
        self.version += 1

    async def get_feedback(self, fingerprint: str, incident: float) -> dict[str, Any] | None:
        found = self.feedback.get(feedback_key(fingerprint, incident))
        return None if found is None else {**json.loads(found[2]), "seq": found[1]}

    async def put_feedback(
        self, record: Mapping[str, Any], audit: Mapping[str, Any], *, expect: str, identity: str
    ) -> int:
        key = feedback_key(record["fingerprint"], record["incident"])
        current = self.feedback.get(key, ("",))[0]
        if current == identity:
            return 0
        if current != expect:
            return -1
        self.feedback_seq += 1
        raw = json.dumps(dict(record))
        self.feedback[key] = (identity, self.feedback_seq, raw)
        self.feedback_log.append((self.feedback_seq, raw))
        del self.feedback_log[:-FEEDBACK_LOG_LIMIT]
        await self.append_audit(audit)
        return self.feedback_seq

    async def list_feedback(self) -> list[dict[str, Any]]:
        found = sorted(self.feedback.values(), key=lambda f: f[1])
        return [{**json.loads(raw), "seq": seq} for _, seq, raw in found]

    async def feedback_since(self, seq: int, limit: int = 100) -> list[dict[str, Any]]:
        return [{**json.loads(raw), "seq": n} for n, raw in self.feedback_log if n > seq][:limit]

    async def put_calendar_note(self, key: str, note: Mapping[str, Any] | None) -> None:
        if note is None:
            self.notes.pop(key, None)
        else:
            self.notes[key] = json.dumps(dict(note))
        self.notes_version += 1

    async def list_calendar_notes(self) -> list[dict[str, Any]]:
        return [json.loads(raw) for _, raw in sorted(self.notes.items())]

    async def calendar_notes_version(self) -> int:
        return self.notes_version

    async def append_audit(self, entry: Mapping[str, Any]) -> None:
        self.audit.insert(0, json.dumps(dict(entry)))
        del self.audit[_LOG_LIMIT:]

    async def list_audit(self, limit: int = 100, kind: str | None = None) -> list[dict[str, Any]]:
        entries = [json.loads(raw) for raw in self.audit]
        return [e for e in entries if kind is None or e.get("kind") == kind][:limit]

    async def enqueue(self, record: OutboxRecord) -> bool:
        if record.id in self.outbox:
            return False  # idempotent on the notification id
        self.seq += 1
        self.outbox[record.id] = replace(record, seq=self.seq, state="pending", attempts=0, reason="")
        return True

    def _is_head(self, record: OutboxRecord) -> bool:
        if not record.stream:
            return True
        older = (r for r in self.outbox.values() if r.state == "pending" and r.stream == record.stream)
        return min(older, key=lambda r: r.seq).id == record.id

    async def claim(self, now: float, lease_s: float, limit: int) -> list[Claim]:
        due = sorted(
            (self._due_at(r), r.seq, r.id)
            for r in self.outbox.values()
            if r.state == "pending" and self._due_at(r) <= now and self._is_head(r)
        )
        claims = []
        for _, _, entry_id in due[:limit]:
            token = uuid.uuid4().hex
            self.leases[entry_id] = (token, now + lease_s)
            claims.append(Claim(self.outbox[entry_id], token))
        return claims

    def _due_at(self, record: OutboxRecord) -> float:
        lease = self.leases.get(record.id)
        return max(record.next_at, lease[1]) if lease else record.next_at

    async def reschedule(self, entry_id: str, token: str, next_at: float, attempts: int, reason: str) -> bool:
        if self.leases.get(entry_id, ("",))[0] != token:
            return False
        del self.leases[entry_id]
        self.outbox[entry_id] = replace(
            self.outbox[entry_id], next_at=next_at, attempts=attempts, reason=reason
        )
        return True

    async def renew(self, entry_id: str, token: str, until: float) -> bool:
        if self.leases.get(entry_id, ("",))[0] != token:
            return False
        self.leases[entry_id] = (token, until)
        return True

    async def finish(self, entry_id: str, token: str, state: EntryState, attempts: int, reason: str) -> bool:
        if self.leases.get(entry_id, ("",))[0] != token:
            # already finished in this state (a retry after the reply to the first finish was lost): done, not lost
            done = entry_id not in self.leases and entry_id in self.outbox and self.outbox[entry_id].state == state
            return done and self._finished_by.get(entry_id) == token
        del self.leases[entry_id]
        self._finished_by[entry_id] = token
        self.outbox[entry_id] = replace(self.outbox[entry_id], state=state, attempts=attempts, reason=reason)
        return True

    async def stream_after(self, stream: str, seq: int) -> list[OutboxRecord]:
        later = (r for r in self.outbox.values() if r.state == "pending" and r.stream == stream and r.seq > seq)
        return sorted(later, key=lambda r: r.seq)

    async def outbox_stats(self) -> dict[str, tuple[int, float]]:
        stats: dict[str, tuple[int, float]] = {}
        for r in self.outbox.values():
            if r.state == "pending":
                depth, oldest = stats.get(r.receiver, (0, r.created_at))
                stats[r.receiver] = (depth + 1, min(oldest, r.created_at))
        return stats

    async def get_entry(self, entry_id: str) -> OutboxRecord | None:
        return self.outbox.get(entry_id)

    async def pending_entries(self) -> list[OutboxRecord]:
        return sorted((r for r in self.outbox.values() if r.state == "pending"), key=lambda r: r.next_at)

    async def log_delivery(self, entry: Mapping[str, Any]) -> None:
        self.deliveries.insert(0, json.dumps(dict(entry)))
        del self.deliveries[_LOG_LIMIT:]

    async def list_deliveries(self, limit: int = 100) -> list[dict[str, Any]]:
        return [json.loads(raw) for raw in self.deliveries[:limit]]
