"""Target attainment: how much of a KPI's target the current period has reached. Pure.

Additive KPIs (count and sum over tumbling windows) accumulate the total series' final window values
over the current period (hour, day, week from Monday, or month, in the catalog's ``defaults.timezone``); others (averages, ratios,
percentiles, hopping windows, ``per: window``) compare their latest value with the target. The period
follows event time: the first value of a window in a later period starts the new period, and values of
an earlier period are ignored.

Idempotent per window. Output is at-least-once (stage 2 re-publishes the values it restores) and a
late event revises a window's value, so a window is never *added*: the period total is ``base`` (windows
that can no longer be revised, folded) plus one contribution per revisable window, keyed by window
start and replaced by a value of the same or a higher revision. A window is folded into ``base`` once
it is more than ``keep_ms`` (stage 2's retention, :func:`streams.merge.retention_ms`) older than the
newest window of the period, and any value for a window at or before the last folded one
(``through``) is a re-delivery and is ignored.

State is checkpointed into the stage-2 changelog of the partition that emits the KPI's values (key
``~att|<kpi>``, next to the detectors' ``~det|…``), see :meth:`Attainment.take_checkpoints`, and
restored with :meth:`Attainment.restore` when that partition is assigned, so a restarted or moved
worker continues the period instead of counting it from the restart.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from streams.changelog import ATTAINMENT
from streams.records import KpiValue

__all__ = ["Attainment", "Goal", "period_start"]

log = logging.getLogger("kpimon.attainment")
_FORMAT = 1
_SPAN = {"hour": 3600, "day": 86400, "week": 7 * 86400}


def period_start(ts: float, per: str, tz: str = "UTC") -> float:
    """Start of the period containing ``ts`` (epoch seconds) in time zone ``tz``: a China business day starts
    at 00:00 Asia/Shanghai, not at 08:00.

    >>> period_start(1767657600.0 + 3 * 86400 + 5, "week")   # Thursday 2026-01-08 → Monday 2026-01-05
    1767571200.0
    >>> period_start(1767657600.0 + 3600, "day", "Asia/Shanghai") == 1767657600.0 - 8 * 3600
    True
    """
    if tz != "UTC":
        zone = ZoneInfo(tz)
        local = datetime.fromtimestamp(ts, zone).replace(tzinfo=None)
        if per == "hour":
            start = local.replace(minute=0, second=0, microsecond=0)
        else:
            start = local.replace(hour=0, minute=0, second=0, microsecond=0)
            if per == "week":
                start -= timedelta(days=start.weekday())
            elif per == "month":
                start = start.replace(day=1)
        return start.replace(tzinfo=zone).timestamp()  # the offset at the period's start (DST-safe)
    if per == "month":
        t = time.gmtime(ts)
        return float(time.mktime((t.tm_year, t.tm_mon, 1, 0, 0, 0, 0, 0, 0)) - time.timezone)
    if per == "week":
        return ts - (ts - 4 * 86400) % _SPAN["week"]        # epoch day 0 was a Thursday; weeks start Monday
    return ts - ts % _SPAN[per]


@dataclass(frozen=True, slots=True)
class Goal:
    """What attainment needs to know about one KPI with a target."""

    target: float
    per: str                     # window | hour | day | week | month
    additive: bool               # count/sum over tumbling windows: the period's windows add up
    keep_ms: int = 0             # how long after a newer window a window can still be revised
    definition: str = ""         # the KPI's state key: a checkpoint of another definition is not restored
    tz: str = "UTC"              # the catalog's defaults.timezone: where days, weeks and months begin


@dataclass
class _Track:
    goal: Goal
    partition: int | None = None                       # the stage-2 partition whose values feed it
    period: float | None = None
    base: float = 0.0                                  # folded windows of the period
    through: int | None = None                         # start of the last folded window
    windows: dict[int, tuple[int, float]] = field(default_factory=dict)   # start -> (revision, value)
    latest: tuple[int, int, float] | None = None       # (start, revision, value) of the newest window

    @property
    def accumulates(self) -> bool:
        return self.goal.additive and self.goal.per != "window"

    def total(self) -> float:
        return self.base + sum(v for _, v in self.windows.values())

    def to_doc(self) -> dict[str, Any]:
        return {"v": _FORMAT, "def": self.goal.definition, "per": self.goal.per, "tz": self.goal.tz, "period": self.period,
                "base": self.base, "through": self.through,
                "windows": [[ws, rev, value] for ws, (rev, value) in sorted(self.windows.items())],
                "latest": list(self.latest) if self.latest is not None else None}

    def load(self, doc: Mapping[str, Any]) -> None:
        if (doc.get("v") != _FORMAT or doc.get("def") != self.goal.definition or doc.get("per") != self.goal.per
                or doc.get("tz", "UTC") != self.goal.tz):  # periods of another zone do not add up here
            raise ValueError("checkpoint of another format, definition or period")
        period, through, latest = doc["period"], doc["through"], doc["latest"]
        self.period = None if period is None else float(period)
        self.base = float(doc["base"])
        self.through = None if through is None else int(through)
        self.windows = {int(ws): (int(rev), float(value)) for ws, rev, value in doc["windows"]}
        self.latest = None if latest is None else (int(latest[0]), int(latest[1]), float(latest[2]))


class Attainment:
    """Attainment of every KPI with a target; state grouped by the stage-2 partition that feeds it
    (a :class:`streams.changelog.PartitionState`)."""

    namespace = ATTAINMENT

    def __init__(self, goals: Mapping[str, Goal]) -> None:
        self.goals = dict(goals)
        self.tracks = {k: _Track(g) for k, g in self.goals.items()}
        self._dirty: set[str] = set()

    def observe(self, val: KpiValue, partition: int | None = None) -> bool:
        """Take one value (any series, any revision, possibly a re-delivery); True if the state changed."""
        track = self.tracks.get(val.kpi)
        if track is None or val.series or val.value is None or not math.isfinite(val.value):
            return False
        if partition is not None:
            track.partition = partition
        ws, rev, value = val.window_start_ms, val.revision, float(val.value)
        changed = False
        if track.latest is None or (ws, rev) >= track.latest[:2]:
            changed = track.latest != (ws, rev, value)
            track.latest = (ws, rev, value)
        if track.accumulates:
            changed = self._accumulate(track, ws, rev, value) or changed
        if changed:
            self._dirty.add(val.kpi)
        return changed

    def _accumulate(self, track: _Track, ws: int, rev: int, value: float) -> bool:
        period = period_start(ws / 1000, track.goal.per, track.goal.tz)
        if track.period is None or period > track.period:
            track.period, track.base, track.through, track.windows = period, 0.0, None, {}
        elif period < track.period:
            return False                        # a revision of a window of a period that is over
        if track.through is not None and ws <= track.through:
            return False                        # folded already: a re-delivery
        current = track.windows.get(ws)
        if current is not None and (rev < current[0] or current == (rev, value)):
            return False                        # an older revision, or the same value again
        track.windows[ws] = (rev, value)
        newest = max(track.windows)
        for start in sorted(track.windows):
            if newest - start <= track.goal.keep_ms:
                break
            track.base += track.windows.pop(start)[1]
            track.through = start
        return True

    def ratio(self, kpi: str) -> float | None:
        track = self.tracks.get(kpi)
        if track is None or track.latest is None:
            return None
        if track.accumulates:
            return track.total() / track.goal.target
        return track.latest[2] / track.goal.target

    # ---- checkpoints (stage-2 changelog) -------------------------------------------------------
    def take_checkpoints(self, partition: int) -> list[tuple[str, bytes]]:
        """Changed attainment states fed by ``partition`` since the last call, as (KPI name, JSON)."""
        mine = sorted(k for k in self._dirty if self.tracks[k].partition == partition)
        self._dirty.difference_update(mine)
        return [(kpi, orjson.dumps(self.tracks[kpi].to_doc())) for kpi in mine]

    def restore(self, partition: int, records: Mapping[str, bytes]) -> None:
        """Restore the attainment states checkpointed in ``partition`` (keyed by KPI name).

        Values re-published afterwards may be fed to :meth:`observe` again: they change nothing they
        were already counted in."""
        for kpi, raw in records.items():
            goal = self.goals.get(kpi)
            if goal is None:
                continue
            track = _Track(goal, partition)
            try:
                track.load(orjson.loads(raw))
            except (KeyError, TypeError, ValueError) as exc:
                log.warning("attainment of %s not restored (%s); counting from the next window", kpi, exc)
                continue
            self.tracks[kpi] = track
            self._dirty.discard(kpi)

    def drop(self, partition: int) -> None:
        """The partition moved to another worker: forget the attainment it fed (its new owner restores it)."""
        for kpi, track in list(self.tracks.items()):
            if track.partition == partition:
                self.tracks[kpi] = _Track(track.goal)
                self._dirty.discard(kpi)
