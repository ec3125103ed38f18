"""Target attainment: how much of a KPI's target the current period has reached. Pure.

Additive KPIs (count and sum over tumbling windows) accumulate the total series' final window values
over the current period (UTC hour, day, week from Monday, or month); others (averages, ratios,
percentiles, hopping windows) compare their latest value with the target. A revision replaces its
window's contribution. The period follows event time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from streams.merge import KpiValue

__all__ = ["Attainment", "period_start"]

_SPAN = {"hour": 3600, "day": 86400, "week": 7 * 86400}


def period_start(ts: float, per: str) -> float:
    """Start of the period containing ``ts`` (epoch seconds, UTC).

    >>> period_start(1767657600.0 + 3 * 86400 + 5, "week")   # Thursday 2026-01-08 → Monday 2026-01-05
    1767571200.0
    """
    if per == "month":
        t = time.gmtime(ts)
        return float(time.mktime((t.tm_year, t.tm_mon, 1, 0, 0, 0, 0, 0, 0)) - time.timezone)
    if per == "week":
        return ts - (ts - 4 * 86400) % _SPAN["week"]        # epoch day 0 was a Thursday; weeks start Monday
    return ts - ts % _SPAN[per]


@dataclass
class _Track:
    target: float
    per: str
    additive: bool
    period: float | None = None
    windows: dict[int, float] = field(default_factory=dict)
    latest: tuple[int, float] | None = None


class Attainment:
    def __init__(self, targets: dict[str, tuple[float, str, bool]]) -> None:
        self.tracks = {k: _Track(v, per, additive) for k, (v, per, additive) in targets.items()}

    def observe(self, val: KpiValue) -> None:
        track = self.tracks.get(val.kpi)
        if track is None or val.series or val.value is None:
            return
        if track.latest is None or val.window_start_ms >= track.latest[0]:
            track.latest = (val.window_start_ms, val.value)
        if not track.additive or track.per == "window":
            return
        period = period_start(val.window_start_ms / 1000, track.per)
        if track.period is None or period > track.period:
            track.period, track.windows = period, {}
        if period == track.period:
            track.windows[val.window_start_ms] = val.value

    def ratio(self, kpi: str) -> float | None:
        track = self.tracks.get(kpi)
        if track is None or track.latest is None:
            return None
        if track.additive and track.per != "window":
            return sum(track.windows.values()) / track.target
        return track.latest[1] / track.target
