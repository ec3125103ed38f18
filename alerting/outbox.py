"""Durable delivery: notifications go to the store's outbox first, then to their notifier.

Each attempt claims due entries under a lease, sends them (concurrently, each with a timeout), then finishes
or reschedules them with the lease token. Failures that may pass (``Outcome.retryable``, timeouts, notifier
exceptions) are retried with exponential backoff and jitter; after ``max_attempts`` or on a permanent failure
the entry is given up and the delivery log says why. A worker that dies after claiming loses nothing: the lease
expires and another worker sends the entry; the notification id stays the same, so receivers that honour it
(webhook ``Idempotency-Key``, email ``Message-ID``) see one message.

Examples
--------
>>> RetryPolicy(base_s=1.0, cap_s=60.0, jitter=0.0).delay(3, random.Random(0))
4.0
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from alerting.notifiers.base import AlertInfo, Notification, Notifier, Outcome
from alerting.store import Claim, OutboxRecord, Store

__all__ = ["Outbox", "RetryPolicy", "dump_notification", "load_notification"]


def dump_notification(notification: Notification) -> str:
    """Serialise a notification (and its alerts) to JSON."""
    data = asdict(notification)
    for alert in data["alerts"]:
        alert["labels"] = dict(alert["labels"])
    return json.dumps(data, separators=(",", ":"))


def load_notification(payload: str) -> Notification:
    """Inverse of :func:`dump_notification`."""
    data = json.loads(payload)
    alerts = tuple(AlertInfo(**a) for a in data.pop("alerts"))
    return Notification(alerts=alerts, **data)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Attempt ``n`` (1-based) failed: wait ``min(cap, base * 2**(n-1))``, shortened by up to ``jitter``."""

    max_attempts: int = 8
    base_s: float = 2.0
    cap_s: float = 300.0
    jitter: float = 0.5

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait after failed attempt ``attempt``; jitter spreads retries of many workers apart."""
        raw: float = min(self.cap_s, self.base_s * 2.0 ** max(0, attempt - 1))
        return raw * (1.0 - self.jitter * rng.random())


class Outbox:
    """Delivers due outbox entries with the notifiers named by each entry's receiver."""

    def __init__(
        self,
        store: Store,
        notifiers: Mapping[str, Notifier],
        *,
        clock: Callable[[], float],
        policy: RetryPolicy | None = None,
        lease_s: float = 60.0,
        send_timeout_s: float = 10.0,
        batch: int = 32,
        rng: random.Random | None = None,
    ) -> None:
        self.store = store
        self.notifiers = notifiers
        self.clock = clock
        self.policy = policy or RetryPolicy()
        # The lease must outlast a send (its timeout), or a slow send could be claimed twice.
        self.lease_s = max(lease_s, send_timeout_s * 2)
        self.send_timeout_s = send_timeout_s
        self.batch = batch
        self.rng = rng or random.Random()
        #: (receiver, result) -> count since start; result is delivered|retry|gave_up|lease_lost (for metrics)
        self.counts: Counter[tuple[str, str]] = Counter()

    async def put(self, notification: Notification) -> bool:
        """Queue ``notification``; ``False`` when its id is already queued or sent (idempotent)."""
        now = self.clock()
        record = OutboxRecord(
            notification.id, notification.receiver, dump_notification(notification), now, now
        )
        return await self.store.enqueue(record)

    async def deliver_due(self) -> int:
        """Send one batch of due entries; return how many were delivered."""
        claims = await self.store.claim(self.clock(), self.lease_s, self.batch)
        if not claims:
            return 0
        results = await asyncio.gather(*(self._deliver(c) for c in claims))
        return sum(results)

    async def _send(self, claim: Claim) -> Outcome:
        notifier = self.notifiers.get(claim.record.receiver)
        if notifier is None:
            return Outcome(False, False, f"no channel named {claim.record.receiver!r} in the configuration")
        try:
            notification = load_notification(claim.record.payload)
        except (ValueError, TypeError, KeyError) as exc:
            return Outcome(False, False, f"unreadable outbox entry: {exc!r}")
        try:
            return await asyncio.wait_for(notifier.send(notification), self.send_timeout_s)
        except TimeoutError:
            return Outcome(False, True, f"timed out after {self.send_timeout_s:g}s")
        except Exception as exc:  # noqa: BLE001 - a notifier bug must not stop the other deliveries
            return Outcome(False, True, f"notifier raised {type(exc).__name__}: {exc}")

    async def _deliver(self, claim: Claim) -> int:
        outcome = await self._send(claim)
        record, attempts = claim.record, claim.record.attempts + 1
        now = self.clock()
        if outcome.delivered:
            ok = await self.store.finish(record.id, claim.token, "delivered", attempts, outcome.reason)
            result = "delivered"
        elif outcome.retryable and attempts < self.policy.max_attempts:
            next_at = now + self.policy.delay(attempts, self.rng)
            ok = await self.store.reschedule(record.id, claim.token, next_at, attempts, outcome.reason)
            result = "retry"
        else:
            ok = await self.store.finish(record.id, claim.token, "failed", attempts, outcome.reason)
            result = "gave_up"
        result = result if ok else "lease_lost"
        self.counts[record.receiver, result] += 1
        await self.store.log_delivery(self._log(record, attempts, now, result, outcome))
        return int(outcome.delivered and ok)

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
