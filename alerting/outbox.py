"""Durable delivery: notifications go to the store's outbox first, then to their notifier.

Each attempt claims due entries under a lease, sends them (concurrently, each with a timeout), then finishes
or reschedules them with the lease token. Every time here is **wall-clock** time (``clock``, ``time.time`` by
default), never the event-time clock of the alert lifecycle: at ``--speedup 60`` a 5-minute backoff still lasts
5 minutes and a lease still outlasts a slow send.

Guarantees
----------
* **Retried until delivered, superseded or too old.** Failures that may pass (``Outcome.retryable``, timeouts,
  notifier exceptions) are retried with exponential backoff and jitter (``RetryPolicy``: 2 s doubling to at most
  5 min) for as long as the entry is younger than ``RetryPolicy.max_age_s`` (default 24 h). Dropping an entry is
  counted in :attr:`Outbox.dropped` by ``(channel, reason)``, written to the delivery log and logged; reasons:
  ``expired`` (older than the maximum age), ``permanent`` (the channel refused it for good: HTTP 4xx, SMTP 5yz),
  ``superseded`` (below), ``no_channel``, ``unreadable``.
* **In order per group and channel.** Entries of one alert group on one channel form a *stream*; only its
  oldest pending entry is ever claimed, so a group's ``resolved`` reaches a channel only after its ``firing``
  was delivered (or dropped), however long an outage lasts, and nothing newer is sent while an older one is in
  flight.
* **Superseded.** When the head of a stream is due and a newer entry of the same stream tells everything it
  tells (each of its alerts, with the same status and the same incident start), it is dropped as
  ``superseded`` instead of sent: a repeat reminder queued behind an unsent one, or ``firing A`` followed by
  ``firing A, B``. A ``resolved`` never supersedes its ``firing``; the receiver gets both, in that order.
* **One copy per send.** The lease is at least twice the send timeout and is renewed while a send is in flight,
  so no other worker claims it meanwhile; this process never sends an entry it is already sending. A worker that
  dies after claiming loses nothing: the lease expires and another worker sends the entry; the notification id
  stays the same, so receivers that honour it (webhook ``Idempotency-Key``, email ``Message-ID``) see one
  message. If the store fails just after a delivery, the result is kept and written when it is back, so the
  entry is not sent again.

Examples
--------
>>> RetryPolicy(base_s=1.0, cap_s=60.0, jitter=0.0).delay(3, random.Random(0))
4.0
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from alerting.health import STORE_ERRORS
from alerting.notifiers.base import AlertInfo, Notification, Notifier, Outcome
from alerting.store import Claim, EntryState, OutboxRecord, Store
from catalog import defaults

__all__ = ["Outbox", "RetryPolicy", "dump_notification", "load_notification", "stream_of"]

log = logging.getLogger("kpimon.alerting.outbox")

_ROUNDS = 4  # claim again after drops: the next entry of a stream that lost its head is due right away


def dump_notification(notification: Notification) -> str:
    """Serialise a notification (and its alerts) to JSON."""
    data = asdict(notification)
    for alert in data["alerts"]:
        for key in ("labels", "kpi_titles", "summaries", "actions"):
            alert[key] = dict(alert[key])
    return json.dumps(data, separators=(",", ":"))


def load_notification(payload: str) -> Notification:
    """Inverse of :func:`dump_notification`."""
    data = json.loads(payload)
    alerts = tuple(AlertInfo(**{**a, "limits": tuple(a.get("limits", ()))}) for a in data.pop("alerts"))
    return Notification(alerts=alerts, **data)


def stream_of(notification: Notification) -> str:
    """The ordering stream of a notification: its group on its channel.

    >>> from alerting.notifiers.base import Notification
    >>> stream_of(Notification("n1", "route0:ab12", "ops", "firing", ()))
    'route0:ab12|ops'
    """
    return f"{notification.group_key}|{notification.receiver}"


def _facts(payload: str) -> frozenset[tuple[str, str, float]] | None:
    """What a notification tells: (fingerprint, status, incident start) per alert; ``None`` if unreadable."""
    try:
        # a correction notice tells something no firing/resolved notice does: it is never superseded, nor supersedes
        return frozenset((a["fingerprint"], "correction" if a.get("correction") else a["status"], a["starts_at"])
                         for a in json.loads(payload)["alerts"])
    except (ValueError, TypeError, KeyError):
        return None


@dataclass(slots=True)
class _Unsettled:
    token: str
    receiver: str
    state: EntryState
    attempts: int
    reason: str


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Attempt ``n`` (1-based) failed: wait ``min(cap, base * 2**(n-1))``, shortened by up to ``jitter``;
    give up once the entry would be older than ``max_age_s`` (wall-clock seconds since it was queued)."""

    base_s: float = defaults.DELIVERY_BACKOFF_BASE_S
    cap_s: float = defaults.DELIVERY_BACKOFF_CAP_S
    jitter: float = 0.5
    max_age_s: float = defaults.DELIVERY_MAX_AGE_S

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait after failed attempt ``attempt``; jitter spreads retries of many workers apart."""
        raw: float = min(self.cap_s, self.base_s * 2.0 ** max(0, min(attempt - 1, 60)))
        return raw * (1.0 - self.jitter * rng.random())


class Outbox:
    """Delivers due outbox entries with the notifiers named by each entry's receiver (see the module doc)."""

    def __init__(
        self,
        store: Store,
        notifiers: Mapping[str, Notifier],
        *,
        clock: Callable[[], float] = time.time,
        policy: RetryPolicy | None = None,
        lease_s: float = 60.0,
        send_timeout_s: float = 10.0,
        batch: int = 32,
        rng: random.Random | None = None,
        renew_s: float | None = None,
    ) -> None:
        self.store = store
        self.notifiers = notifiers
        self.clock = clock  # wall clock: backoff, leases and ages
        self.policy = policy or RetryPolicy()
        # The lease must outlast a send (its timeout), or a slow send could be claimed twice; renewed meanwhile.
        self.lease_s = max(lease_s, send_timeout_s * 2)
        self.send_timeout_s = send_timeout_s
        self.renew_s = renew_s or self.lease_s / 3  # real seconds between lease renewals of a send in flight
        self.batch = batch
        self.rng = rng or random.Random()
        #: (receiver, result) -> count in this process; result is delivered|retry|dropped|lease_lost
        self.counts: Counter[tuple[str, str]] = Counter()
        #: (receiver, reason) -> entries dropped by this process (see the module docstring for reasons)
        self.dropped: Counter[tuple[str, str]] = Counter()
        self._inflight: dict[str, str] = {}  # entry id -> newest lease token, while this process sends it
        self._unsettled: dict[str, _Unsettled] = {}  # sent (or dropped); the store could not be told yet

    async def put(self, notification: Notification) -> bool:
        """Queue ``notification``; ``False`` when its id is already queued or sent (idempotent)."""
        now = self.clock()
        record = OutboxRecord(
            notification.id,
            notification.receiver,
            dump_notification(notification),
            now,
            now,
            stream=stream_of(notification),
        )
        return await self.store.enqueue(record)

    async def deliver_due(self) -> int:
        """Send due entries (a few claim rounds of one batch); return how many were delivered."""
        await self._settle()
        delivered = 0
        for _ in range(_ROUNDS):
            claims = [c for c in await self.store.claim(self.clock(), self.lease_s, self.batch) if self._new(c)]
            if not claims:
                break
            results = await asyncio.gather(*(self._deliver(c) for c in claims), return_exceptions=True)
            for result in results:
                if isinstance(result, BaseException):
                    raise result
            delivered += results.count("delivered")
            if "dropped" not in results:
                break
        return delivered

    async def stats(self) -> dict[str, tuple[int, float]]:
        """Channel -> (pending entries, age in seconds of the oldest); every configured channel is present."""
        now = self.clock()
        out = {name: (0, 0.0) for name in self.notifiers}
        for channel, (depth, oldest) in (await self.store.outbox_stats()).items():
            out[channel] = (depth, max(0.0, now - oldest))
        return out

    def _new(self, claim: Claim) -> bool:
        """``False`` for a claim of an entry this process is still sending or has sent (adopt its lease)."""
        entry_id = claim.record.id
        if entry_id in self._inflight:
            self._inflight[entry_id] = claim.token  # the running send finishes under the newest lease
            return False
        if entry_id in self._unsettled:
            self._unsettled[entry_id].token = claim.token
            return False
        return True

    async def _settle(self) -> None:
        """Write results the store could not take when they happened (raises while it is still down)."""
        for entry_id, u in list(self._unsettled.items()):
            ok = await self.store.finish(entry_id, u.token, u.state, u.attempts, u.reason)
            del self._unsettled[entry_id]
            if u.state == "failed" and ok:
                self._dropped(entry_id, u.receiver, *u.reason.split(": ", 1))
            result = ("delivered" if u.state == "delivered" else "dropped") if ok else "lease_lost"
            self.counts[u.receiver, result] += 1

    async def _deliver(self, claim: Claim) -> str:
        self._inflight[claim.record.id] = claim.token
        try:
            return await self._attempt(claim.record)
        finally:
            self._inflight.pop(claim.record.id, None)

    async def _attempt(self, record: OutboxRecord) -> str:
        age = self.clock() - record.created_at
        if age >= self.policy.max_age_s:
            return await self._drop(record, record.attempts, "expired", f"not delivered in {age:.0f}s")
        notifier = self.notifiers.get(record.receiver)
        if notifier is None:
            detail = f"no channel named {record.receiver!r} in the configuration"
            return await self._drop(record, record.attempts, "no_channel", detail)
        try:
            notification = load_notification(record.payload)
        except (ValueError, TypeError, KeyError) as exc:
            return await self._drop(record, record.attempts, "unreadable", f"unreadable outbox entry: {exc!r}")
        newer = await self._superseded_by(record)
        if newer is not None:
            return await self._drop(record, record.attempts, "superseded", f"superseded by {newer}")
        outcome = await self._send_renewing(record.id, notifier, notification)
        return await self._record(record, record.attempts + 1, outcome)

    async def _record(self, record: OutboxRecord, attempts: int, outcome: Outcome) -> str:
        if outcome.delivered:
            ok = await self._finish(record, "delivered", attempts, outcome.reason)
            return await self._count(record, attempts, "delivered" if ok else "lease_lost", outcome)
        if not outcome.retryable:
            return await self._drop(record, attempts, "permanent", outcome.reason, outcome)
        now = self.clock()
        next_at = now + self.policy.delay(attempts, self.rng)
        if next_at - record.created_at > self.policy.max_age_s:
            detail = f"not delivered in {now - record.created_at:.0f}s, last: {outcome.reason}"
            return await self._drop(record, attempts, "expired", detail, outcome)
        token = self._inflight.get(record.id, "")
        ok = await self.store.reschedule(record.id, token, next_at, attempts, outcome.reason)
        return await self._count(record, attempts, "retry" if ok else "lease_lost", outcome)

    async def _finish(self, record: OutboxRecord, state: EntryState, attempts: int, reason: str) -> bool:
        token = self._inflight.get(record.id, "")
        try:
            return await self.store.finish(record.id, token, state, attempts, reason)
        except STORE_ERRORS:
            # Sent (or decided) but not written: keep the result so the entry is not sent again meanwhile.
            self._unsettled[record.id] = _Unsettled(token, record.receiver, state, attempts, reason)
            raise

    async def _drop(
        self, record: OutboxRecord, attempts: int, reason: str, detail: str, outcome: Outcome | None = None
    ) -> str:
        told = Outcome(False, outcome.retryable if outcome else False, f"{reason}: {detail}")
        if not await self._finish(record, "failed", attempts, told.reason):
            return await self._count(record, attempts, "lease_lost", told)
        self._dropped(record.id, record.receiver, reason, detail)
        return await self._count(record, attempts, "dropped", told)

    def _dropped(self, entry_id: str, receiver: str, reason: str, detail: str = "") -> None:
        self.dropped[receiver, reason] += 1
        level = logging.INFO if reason == "superseded" else logging.WARNING
        log.log(level, "notification %s to %s dropped (%s): %s", entry_id, receiver, reason, detail)

    async def _count(self, record: OutboxRecord, attempts: int, result: str, outcome: Outcome) -> str:
        self.counts[record.receiver, result] += 1
        with contextlib.suppress(*STORE_ERRORS):  # the log is informative; the entry's state is what counts
            await self.store.log_delivery(self._log(record, attempts, self.clock(), result, outcome))
        return result

    async def _superseded_by(self, record: OutboxRecord) -> str | None:
        if not record.stream:
            return None
        mine = _facts(record.payload)
        for newer in await self.store.stream_after(record.stream, record.seq):
            theirs = _facts(newer.payload)
            if mine is not None and theirs is not None and mine <= theirs:
                return newer.id
        return None

    async def _send_renewing(self, entry_id: str, notifier: Notifier, notification: Notification) -> Outcome:
        """Send, renewing the lease every third of it while the send is in flight."""
        send = asyncio.ensure_future(self._send(notifier, notification))
        try:
            while True:
                done, _ = await asyncio.wait({send}, timeout=self.renew_s)
                if done:
                    return send.result()
                with contextlib.suppress(*STORE_ERRORS):
                    await self.store.renew(entry_id, self._inflight.get(entry_id, ""), self.clock() + self.lease_s)
        finally:
            send.cancel()

    async def _send(self, notifier: Notifier, notification: Notification) -> Outcome:
        try:
            return await asyncio.wait_for(notifier.send(notification), self.send_timeout_s)
        except TimeoutError:
            return Outcome(False, True, f"timed out after {self.send_timeout_s:g}s")
        except Exception as exc:  # noqa: BLE001 - a notifier bug must not stop the other deliveries
            return Outcome(False, True, f"notifier raised {type(exc).__name__}: {exc}")

    @staticmethod
    def _log(
        record: OutboxRecord, attempts: int, now: float, result: str, outcome: Outcome
    ) -> dict[str, Any]:
        return {
            "id": record.id,
            "receiver": record.receiver,
            "attempt": attempts,
            "at": now,
            "result": result,
            "retryable": outcome.retryable,
            "reason": outcome.reason,
        }
