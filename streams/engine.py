"""Stage 1 of the KPI engine: one source partition's events → partial window states. Pure.

Each source partition pre-aggregates its events per KPI × series × window. When the
partition's watermark passes a window's end, the window's *partial* (mergeable state of
every series, possibly empty) is emitted as ``final``; stage 2 (:mod:`streams.merge`) merges
the partials of all partitions into the exact value. Late events within ``grace`` update the
window and emit a revised partial; later ones are dead letters ``too_late``.

Exactly-once state without transactions: each window's state records the highest source
offset it contains (``o``). Replayed messages (after a crash, Kafka redelivers from the last
committed offset) are skipped per window, so the state counts every event once. Partials are
full-state replacements keyed by (KPI, window, partition), so re-sending one is harmless.

Watermark: the highest event time seen. When the partition is idle for ``idle_ms`` of wall
time, the watermark advances with the wall clock (× ``speedup`` for simulated time), so
windows close even when no events arrive and a KPI that drops to zero is seen.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from streams.aggregations import to_json_state
from streams.events import DeadLetter, EventError, event_time_ms
from streams.plan import KpiPlan, SourcePlan

__all__ = ["EngineStats", "PartitionEngine"]

OTHER = "__other__"
MAX_CLOSES_PER_ADVANCE = 10_000


@dataclass(slots=True)
class EngineStats:
    events: int = 0
    closes: dict[str, int] = field(default_factory=dict)
    revisions: dict[str, int] = field(default_factory=dict)
    overflow: dict[str, int] = field(default_factory=dict)
    late_dropped: dict[str, int] = field(default_factory=dict)
    unmatched: int = 0


@dataclass(slots=True)
class _Window:
    series: dict[str, Any]
    offset: int = -1
    revision: int = 0


class PartitionEngine:
    """Windowed partial aggregates for one partition of one source topic."""

    def __init__(self, source: SourcePlan, partition: int, *, speedup: float = 1.0, idle_ms: int = 2000,
                 wall: Callable[[], float] = time.time) -> None:
        self.source = source
        self.partition = partition
        self.speedup = speedup
        self.idle_ms = idle_ms
        self.wall = wall
        self.stats = EngineStats()
        self.max_ts: int | None = None
        self.watermark: int | None = None
        self.wall_at_max = wall()
        self.windows: dict[tuple[int, int], _Window] = {}
        self.closed_through: dict[int, int] = {}       # kpi index -> start of the last closed window
        self.series_seen: list[set[str]] = [set() for _ in source.kpis]
        self._dirty: set[tuple[int, int]] = set()
        self._purged: set[tuple[int, int]] = set()
        self._revised: set[tuple[int, int]] = set()
        self._in_message: set[tuple[int, int]] = set()   # windows this message already updated
        self._clock_dirty = False
        self._partials: list[dict[str, Any]] = []

    # ---- events ---------------------------------------------------------------------------
    def process(self, events: list[dict[str, Any]], offset: int) -> list[DeadLetter]:
        """Apply the events of one message at ``offset``; return the dead letters."""
        dead: list[DeadLetter] = []
        self._in_message.clear()
        for ev in events:
            try:
                self._apply(ev, offset)
            except EventError as exc:
                dead.append(DeadLetter(exc.reason, exc.detail, orjson.dumps(ev, default=str)))
        self.stats.events += len(events)
        return dead

    def _apply(self, ev: dict[str, Any], offset: int) -> None:
        raw_ts = ev.get(self.source.time_field)
        if raw_ts is None:
            raise EventError("missing_time", f"event has no {self.source.time_field!r}")
        ts = event_time_ms(raw_ts)
        updates = [(i, kp, _measure(kp, ev, ts)) for i, kp in enumerate(self.source.kpis)
                   if kp.matches is None or kp.matches(ev)]
        if not updates:
            if self.source.dead_letter_unmatched:
                raise EventError("unknown_kpi", f"no KPI in the catalog matches this event (kpi={ev.get('kpi')!r})")
            self.stats.unmatched += 1
            return
        series_per_update = [self._series_keys(i, kp, ev) for i, kp, _ in updates]
        accepted = False
        for (i, kp, x), keys in zip(updates, series_per_update, strict=True):
            for start in kp.window_starts(ts):
                if self.watermark is not None and start + kp.size_ms + kp.grace_ms <= self.watermark:
                    self.stats.late_dropped[kp.name] = self.stats.late_dropped.get(kp.name, 0) + 1
                    continue
                accepted = True
                self._update(i, kp, start, keys, x, offset)
        if not accepted:
            raise EventError("too_late", f"event time {ts} is more than grace behind the watermark {self.watermark}")
        if self.max_ts is None or ts > self.max_ts:
            self.max_ts = ts
            self.wall_at_max = self.wall()
            if self.watermark is None or ts > self.watermark:
                self.watermark = ts
            self._clock_dirty = True
        for i, kp, _ in updates:
            self.closed_through.setdefault(i, kp.window_starts(ts)[0] - kp.advance_ms)

    def _update(self, i: int, kp: KpiPlan, start: int, keys: list[str], x: Any, offset: int) -> None:
        key = (i, start)
        win = self.windows.get(key)
        if win is None:
            win = self.windows[key] = _Window({})
        elif offset <= win.offset and key not in self._in_message:
            return                  # replayed message: already counted in this window
        self._in_message.add(key)
        series = win.series
        init, add = kp.agg.init, kp.agg.add
        for skey in keys:
            state = series.get(skey)
            series[skey] = add(init() if state is None else state, x)
        win.offset = offset
        if start <= self.closed_through.get(i, -math.inf) and key not in self._revised:
            # the window was already emitted: publish a revision (once per flush)
            win.revision += 1
            self._revised.add(key)
            self.stats.revisions[kp.name] = self.stats.revisions.get(kp.name, 0) + 1
        self._dirty.add(key)

    def _series_keys(self, i: int, kp: KpiPlan, ev: dict[str, Any]) -> list[str]:
        keys = [""]
        seen = self.series_seen[i]
        for dim in kp.dims:
            value = ev.get(dim)
            if value is None or value == "":
                value = "unknown"
            elif isinstance(value, bool | dict | list):
                raise EventError("wrong_type", f"dimension {dim!r} must be a string or number, got {type(value).__name__}")
            skey = f"{dim}={value}"
            if skey not in seen:
                if len(seen) >= kp.max_series:
                    self.stats.overflow[kp.name] = self.stats.overflow.get(kp.name, 0) + 1
                    skey = f"{dim}={OTHER}"
                seen.add(skey)
            keys.append(skey)
        return keys

    # ---- time -----------------------------------------------------------------------------
    def advance(self) -> None:
        """Move the watermark (idle → wall clock), close windows, purge those past grace."""
        if self.max_ts is None:
            return
        idle = (self.wall() - self.wall_at_max) * 1000
        if idle >= self.idle_ms:
            extrapolated = self.max_ts + int(idle * self.speedup)
            if self.watermark is None or extrapolated > self.watermark:
                self.watermark = extrapolated
                self._clock_dirty = True
        wm = self.watermark
        assert wm is not None
        for i, kp in enumerate(self.source.kpis):
            last = self.closed_through.get(i)
            if last is None:
                continue
            start, closes = last + kp.advance_ms, 0
            while start + kp.size_ms <= wm and closes < MAX_CLOSES_PER_ADVANCE:
                self._close(i, kp, start)
                self.closed_through[i] = start
                start += kp.advance_ms
                closes += 1
                self._clock_dirty = True
        for key in [k for k in self.windows if k[1] + self.source.kpis[k[0]].size_ms + self.source.kpis[k[0]].grace_ms <= wm]:
            del self.windows[key]
            self._dirty.discard(key)
            self._revised.discard(key)
            self._purged.add(key)

    def _close(self, i: int, kp: KpiPlan, start: int) -> None:
        win = self.windows.get((i, start))
        self._partials.append(self._partial(kp, start, win, revision=0))
        self.stats.closes[kp.name] = self.stats.closes.get(kp.name, 0) + 1
        if win is not None:
            self._dirty.add((i, start))

    def _partial(self, kp: KpiPlan, start: int, win: _Window | None, revision: int) -> dict[str, Any]:
        series = {} if win is None else {k: to_json_state(v) for k, v in win.series.items()}
        return {"kpi": kp.name, "sk": kp.state_key, "ws": start, "we": start + kp.size_ms,
                "src": self.source.name, "p": self.partition, "rev": revision, "series": series}

    # ---- output ---------------------------------------------------------------------------
    def take_partials(self) -> list[dict[str, Any]]:
        """Partials to publish: closes, plus revisions of closed windows changed since last call."""
        for i, start in sorted(self._revised):
            win = self.windows.get((i, start))
            if win is not None:
                self._partials.append(self._partial(self.source.kpis[i], start, win, win.revision))
        self._revised.clear()
        out, self._partials = self._partials, []
        return out

    def take_changes(self) -> list[tuple[str, bytes | None]]:
        """Changelog records (key, JSON or None for delete) for windows changed since last call."""
        p = self.partition
        out: list[tuple[str, bytes | None]] = []
        for i, start in sorted(self._dirty):
            win = self.windows[(i, start)]
            kp = self.source.kpis[i]
            out.append((f"{p}|{kp.name}|{kp.state_key}|{start}", orjson.dumps(
                {"o": win.offset, "r": win.revision, "s": {k: to_json_state(v) for k, v in win.series.items()}})))
        for i, start in sorted(self._purged):
            kp = self.source.kpis[i]
            out.append((f"{p}|{kp.name}|{kp.state_key}|{start}", None))
        if self._clock_dirty:
            out.append((f"{p}|~clock", orjson.dumps({
                "max": self.max_ts, "wm": self.watermark,
                "closed": {kp.name + "|" + kp.state_key: self.closed_through[i]
                           for i, kp in enumerate(self.source.kpis) if i in self.closed_through},
                "seen": {kp.name + "|" + kp.state_key: sorted(self.series_seen[i]) for i, kp in enumerate(self.source.kpis)},
            })))
        self._dirty.clear()
        self._purged.clear()
        self._clock_dirty = False
        return out

    # ---- recovery -------------------------------------------------------------------------
    def restore(self, records: dict[str, bytes]) -> None:
        """Rebuild from changelog records of this partition (keys as written by take_changes)."""
        index = {(kp.name, kp.state_key): i for i, kp in enumerate(self.source.kpis)}
        clock = records.get(f"{self.partition}|~clock")
        if clock is not None:
            doc = orjson.loads(clock)
            self.max_ts, self.watermark = doc["max"], doc["wm"]
            self.wall_at_max = self.wall()
            for name, start in doc["closed"].items():
                kpi, sk = name.split("|")
                if (kpi, sk) in index:
                    self.closed_through[index[(kpi, sk)]] = start
            for name, seen in doc.get("seen", {}).items():
                kpi, sk = name.split("|")
                if (kpi, sk) in index:
                    self.series_seen[index[(kpi, sk)]] = set(seen)
        for key, value in records.items():
            parts = key.split("|")
            if len(parts) != 4 or (parts[1], parts[2]) not in index:
                continue        # another partition's key, the clock, or a KPI whose definition changed
            i = index[(parts[1], parts[2])]
            doc = orjson.loads(value)
            load = self.source.kpis[i].agg.load
            series = {k: load(v) for k, v in doc["s"].items()}
            self.windows[(i, int(parts[3]))] = _Window(series, doc["o"], doc["r"])


def _measure(kp: KpiPlan, ev: dict[str, Any], ts: int) -> Any:
    if kp.field is None:
        return None
    try:
        value = ev[kp.field]
    except KeyError:
        raise EventError("missing_field", f"{kp.name}: event has no {kp.field!r}") from None
    if kp.kind == "distinct":
        if value is None or isinstance(value, dict | list):
            raise EventError("wrong_type", f"{kp.name}: {kp.field!r} must be a scalar")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise EventError("wrong_type", f"{kp.name}: {kp.field!r} must be a number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise EventError("not_finite", f"{kp.name}: {kp.field!r} is {value}")
    return (ts, value) if kp.kind == "last" else value
