"""What a worker is given: its settings (:class:`WorkerConfig`) and the shell's hook (:class:`AlertRuntime`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from aiohttp import web

from catalog import defaults
from streams.topics import Topics

__all__ = ["AlertRuntime", "WorkerConfig"]


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    broker: str = defaults.BROKER
    app_id: str = defaults.APP_ID
    metrics_host: str = defaults.METRICS_HOST   # /metrics and /api/*: loopback unless the deployment says otherwise
    metrics_port: int = defaults.METRICS_PORT
    speedup: float = defaults.SPEEDUP    # event-time seconds per wall second when idle (simulations)
    idle_ms: int = defaults.IDLE_MS      # wall ms without events before the watermark follows the clock
    tick_s: float = 0.5
    take_max: int = 200
    take_within_s: float = 0.1
    fetch_max_wait_ms: int = 100
    partition_wait_s: float = defaults.PARTITION_WAIT_S
    max_message_bytes: int = defaults.MAX_MESSAGE_BYTES
    session_timeout_s: float = 10.0
    topics: Topics = field(default_factory=Topics)


class AlertRuntime(Protocol):
    """The shell's side of alerting, as the worker sees it: the shell (``kpimon.wiring``) owns the alert service's
    scheduling and its admin API; the worker only says when (every tick, and at once after alert transitions),
    serves the API beside ``/metrics`` and closes it on shutdown."""

    async def tick(self) -> None:
        """Run the alert service's periodic work (overrides, delivery, gauges); never raises for a store outage."""

    def http_app(self) -> web.Application:
        """The application ``/metrics`` and ``/healthz`` are added to (the admin API, or an empty one)."""

    async def aclose(self) -> None:
        """Release the alert service's connections (the worker is stopping)."""
