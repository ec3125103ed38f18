"""Is the alert store reachable? One log line per change, counters for metrics, never a traceback per tick.

A Redis outage is an infrastructure state, not an event per call: the worker keeps streaming, alert evaluation
and delivery pause (every outbox entry is in Redis, so none is lost) and resume when Redis answers again.
:class:`StoreHealth` records the state for ``kpimon_store_up`` / ``kpimon_store_errors_total`` and logs exactly
one line when the store goes down and one when it is back.

Examples
--------
>>> h = StoreHealth(clock=iter([0.0, 12.5]).__next__)
>>> h.failed(ConnectionError("refused")); h.failed(ConnectionError("refused")); h.up, h.errors
(False, 2)
>>> h.ok(); h.up
True
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from redis.exceptions import RedisError

from alerting.store import StoreError

__all__ = ["STORE_ERRORS", "StoreHealth"]

#: What a store call raises when the store is unreachable or times out (redis-py does not wrap OSError).
STORE_ERRORS: tuple[type[BaseException], ...] = (StoreError, RedisError, OSError, TimeoutError)

log = logging.getLogger("kpimon.alerting")


class StoreHealth:
    """Up/down state of the store with a failure counter; ``clock`` (monotonic seconds) times an outage."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.up = True
        #: failed store operations since start (this process)
        self.errors = 0
        self._down_since = 0.0
        self._down_errors = 0

    def failed(self, exc: BaseException) -> None:
        """A store operation failed with ``exc``; logs only when the store was up until now."""
        self.errors += 1
        self._down_errors += 1
        if self.up:
            self.up = False
            self._down_since = self.clock()
            log.warning(
                "alert store unreachable (%s: %s): alert evaluation and delivery wait for it, retrying every tick",
                type(exc).__name__,
                exc,
            )

    def ok(self) -> None:
        """A store operation succeeded; logs once when that ends an outage."""
        if not self.up:
            self.up = True
            log.warning(
                "alert store reachable again after %.1fs (%d failed operations meanwhile)",
                self.clock() - self._down_since,
                self._down_errors,
            )
        self._down_errors = 0
