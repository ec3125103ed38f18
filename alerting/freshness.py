"""Source freshness: a source that sends nothing is *silent*, which is not the same as a business zero.

A source's :class:`SourceRecord` (kept in the store, so every worker and a restarted one see the same) says
when its newest event arrived (wall clock) and how new it was (event time). From it:

* **quiet**: no event for ``quiet_s`` wall seconds (half the worker's idle time, after which windows close by
  the clock and come out empty). Alerts judged on a window that ends after the newest event wait: an empty
  window may be silence.
* **silent**: no event for ``max_silence``. One ``source_silent`` alert per source and owner team is raised
  (:func:`silent_alert`); the alerts of the KPIs fed only by silent sources are *inhibited* (tracked, never
  notified), the way Alertmanager's inhibit rules hold the alerts a broken upstream explains.
* **resumed**: events arrive again. The source_silent alert resolves (one notice); the held series alerts
  that were never told are dropped and judged again on fresh windows, and a window that lies entirely in the
  silence gap (evaluated late) stays held (:func:`is_held`), so nothing is released as a burst.

Examples
--------
>>> from alerting.lifecycle import new_state
>>> rec = SourceRecord("orders", last_event_ts=600.0, last_arrival=1000.0, max_silence=300.0, quiet_s=2.0)
>>> zero = replace(new_state("paid_orders", "stopped", {}, {}, "critical"), state="firing", window_start=600.0,
...                window_end=660.0)
>>> feeds = {"paid_orders": frozenset({"orders"})}
>>> is_held(zero, {"orders": rec}, feeds, wall_now=1001.0), is_held(zero, {"orders": rec}, feeds, wall_now=1005.0)
(False, True)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from alerting.lifecycle import AlertState, fingerprint

__all__ = ["SOURCE_SILENT", "SourceRecord", "is_held", "resolve_silent", "silent_alert"]

SOURCE_SILENT = "source_silent"


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """What is known about one source's liveness. Times: ``*_ts`` event time, ``last_arrival`` wall clock.

    ``max_silence`` (event-time seconds, 0: the source is not judged) and ``quiet_s`` (wall seconds) are the
    thresholds in effect; ``silent_since`` is the newest event time when the silence was declared;
    ``gap`` the (last event before, first event after) of the last silence.
    """

    source: str
    last_event_ts: float
    last_arrival: float
    max_silence: float = 0.0
    quiet_s: float = 2.0
    silent_since: float | None = None
    gap: tuple[float, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict."""
        out = asdict(self)
        out["gap"] = list(self.gap) if self.gap else None
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SourceRecord:
        """Inverse of :meth:`to_dict` (unknown keys ignored)."""
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        gap = known.get("gap")
        known["gap"] = (float(gap[0]), float(gap[1])) if gap else None
        return cls(**known)

    @property
    def judged(self) -> bool:
        return self.max_silence > 0

    def holds(self, window: tuple[float, float], wall_now: float) -> bool:
        """Whether an alert judged on ``window`` (start, end) must wait for this source.

        >>> r = SourceRecord("s", 100.0, 50.0, max_silence=60.0, quiet_s=2.0, gap=(100.0, 400.0))
        >>> r.holds((120.0, 180.0), wall_now=50.5), r.holds((400.0, 460.0), wall_now=50.5)
        (True, False)
        >>> r.holds((40.0, 100.0), wall_now=60.0), r.holds((100.0, 160.0), wall_now=60.0)   # quiet
        (False, True)
        """
        if not self.judged:
            return False
        if self.silent_since is not None:
            return True
        # quiet: nothing arrived lately and the window ends after the newest event, i.e. the idle clock closed it
        # (a window closed by events ends before them: it is data, however slowly a busy worker reads it)
        if wall_now - self.last_arrival >= self.quiet_s and window[1] > self.last_event_ts:
            return True
        return self.gap is not None and self.gap[0] <= window[0] and window[1] <= self.gap[1]


def is_held(alert: AlertState, records: Mapping[str, SourceRecord], sources_of: Mapping[str, frozenset[str]],
            wall_now: float) -> bool:
    """Whether a *firing* series alert is inhibited by the freshness of its KPI's sources."""
    if alert.rule == SOURCE_SILENT or alert.state != "firing":
        return False
    sources = sources_of.get(alert.kpi, frozenset())
    window = (alert.window_start, alert.window_end)
    return bool(sources) and all(s in records and records[s].holds(window, wall_now) for s in sources)


def silent_alert(rec: SourceRecord, team: str, kpis: Sequence[str], now: float, severity: str) -> AlertState:
    """The firing ``source_silent`` alert of ``rec.source`` for the owner ``team`` of ``kpis``.

    >>> a = silent_alert(SourceRecord("orders", 600.0, 0.0), "shop", ["orders", "paid_orders"], 900.0, "critical")
    >>> a.state, a.labels["source"], a.labels["kpis"], a.window_start
    ('firing', 'orders', 'orders,paid_orders', 600.0)
    """
    series = {"source": rec.source, "team": team}
    labels = {"alertname": SOURCE_SILENT, "source": rec.source, "team": team, "severity": severity,
              "kpis": ",".join(kpis)}
    return AlertState(fingerprint(rec.source, SOURCE_SILENT, series), rec.source, SOURCE_SILENT, series, labels,
                      severity, state="firing", active_since=now, last_active_at=now, starts_at=now,
                      window_start=rec.last_event_ts, window_end=now, updated_at=now,
                      summary=f"no events from {rec.source} since {rec.last_event_ts:.0f}")


def resolve_silent(alert: AlertState, resumed_ts: float, now: float) -> AlertState:
    """``alert`` resolved: events arrive again from ``resumed_ts`` (event time)."""
    return replace(alert, state="resolved", ends_at=now, window_end=resumed_ts, updated_at=now)
