"""The dead man's switch: the worker pings an external checker while it works, so a dead kpimon is noticed.

Like Alertmanager's always-firing ``Watchdog`` or a healthchecks.io check: every ``interval_s`` the worker's
tick POSTs a small JSON body to ``url`` (``KPIMON_HEARTBEAT_URL``). The checker alerts when pings stop; kpimon
never has to notice its own death. The ping runs from the worker's tick, so a worker whose event loop is stuck,
whose process died or whose host is gone stops pinging alike. A slow or failing checker never delays the tick
(one ping in flight at a time, ``timeout_s``); failures are counted and logged once per outage. The URL usually
carries the check's token, so it is treated as a secret: never logged.

Examples
--------
>>> hb = Heartbeat("http://127.0.0.1:9/ping", interval_s=60.0, app_id="kpimon", clock=lambda: 0.0)
>>> hb.due()
True
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable

import httpx

__all__ = ["Heartbeat"]

log = logging.getLogger(__name__)


class Heartbeat:
    """Pings ``url`` every ``interval_s`` (monotonic clock) from :meth:`maybe_beat`; see the module docstring."""

    def __init__(self, url: str, *, interval_s: float = 60.0, app_id: str = "kpimon", timeout_s: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError("KPIMON_HEARTBEAT_URL must start with http:// or https://")
        if interval_s <= 0:
            raise ValueError("KPIMON_HEARTBEAT_INTERVAL must be > 0 seconds, e.g. 60")
        self.url, self.interval_s, self.app_id, self.timeout_s, self.clock = url, interval_s, app_id, timeout_s, clock
        self.outcomes: Counter[str] = Counter()       # ok | failed, for kpimon_heartbeats_total
        self._last: float | None = None
        self._task: asyncio.Task[None] | None = None
        self._down = False

    def due(self) -> bool:
        return self._last is None or self.clock() - self._last >= self.interval_s

    def maybe_beat(self) -> None:
        """Start a ping if one is due and none is in flight (never blocks the caller)."""
        if self.due() and (self._task is None or self._task.done()):
            self._last = self.clock()
            self._task = asyncio.ensure_future(self.beat())

    async def beat(self) -> None:
        """One ping; the outcome is counted, a failure logged once per outage (without the URL)."""
        body = {"app_id": self.app_id, "at": time.time(), "status": "ok"}
        try:
            async with httpx.AsyncClient(timeout=httpx.Timeout(self.timeout_s)) as client:
                response = await client.post(self.url, json=body)
            ok, why = response.is_success, f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            ok, why = False, type(exc).__name__
        self.outcomes["ok" if ok else "failed"] += 1
        if not ok and not self._down:
            log.warning("heartbeat to the external checker failed (%s); retrying every %.0fs", why, self.interval_s)
        elif ok and self._down:
            log.warning("heartbeat to the external checker works again")
        self._down = not ok

    async def flush(self) -> None:
        """Wait for the ping in flight, if any."""
        if self._task is not None:
            await asyncio.shield(self._task)

    async def aclose(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
