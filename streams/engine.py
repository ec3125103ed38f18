"""Stage 1 of the KPI engine: one source partition's events → partial window states. Pure.

Each source partition pre-aggregates its events per KPI × series × window. When the
partition's watermark passes a window's end, the window's *partial* (mergeable state of
every series, possibly empty) is emitted as ``final``; stage 2 (:mod:`streams.merge`) merges
the partials of all partitions into the exact value. Late events within ``grace`` update the
window and emit a revised partial; later ones are dead letters ``too_late``.

Exactly-once state without transactions: the partition's clock record stores the offset of the
last message whose effects the state holds (``at``), and each window's state the highest source
offset it contains (``o``). Replayed messages (after a crash, Kafka redelivers from the last
committed offset) at or below ``at`` are skipped whole, and per window below ``o``, so the state
counts every event once and a replay dead-letters nothing twice. Partials are full-state
replacements keyed by (KPI, window, partition) and carry ``o`` as their version, so stage 2 can
tell a re-sent or replayed older partial from a newer one.

Series cap (:mod:`streams.admission`): stage 2 owns admission. A dimension value passes as its own
series unless the worker's :class:`AdmissionView` says stage 2 has definitively rejected it (the
dimension is full and the value is not admitted): then it is folded into ``<dim>=__other__`` here, as
stage 2 would. For memory, each dimension keeps at most ``pending_factor × max_series`` values that
passed but are not decided yet; a new value beyond that bound is folded here too, the dimension takes
no new undecided values here any more, and the window's partial flags it (``folded``: dimension ->
[lo, hi], how many admitted values this partition knew of), which closes the dimension at stage 2.

Watermark: the highest event time seen. When the partition is idle for ``idle_ms`` of wall
time, the watermark advances with the wall clock (× ``speedup`` for simulated time), so
windows close even when no events arrive and a KPI that drops to zero is seen. The wall time
at which the highest event time was seen is persisted, so after a restart the idle watermark
catches up with the wall clock instead of trailing it by the downtime. Idle means no event
taken into a window for ``idle_ms``, counted from the restore too: a backlog that piled up
during the downtime (or a replay of uncommitted offsets) is read before the clock takes over,
so it is not too late. Dead letters and unmatched events do not hold the clock back.

Event time is bounded, so no single event can move the watermark into the future or make the
partition walk empty windows since 1970: an event more than ``max_future`` ahead of the wall
clock is ``future_time``; one before the floor (``since``, or 30 days before the partition's
first start, which is persisted) is ``bad_time``. With ``speedup`` S (a simulation produces
S event-time seconds per wall second from its start) the allowance is S × ``max_future`` plus
(S − 1) × the wall time since the partition's first start.

Closing costs work per window *with data*: when the watermark moves over many windows at once
(a long silence, a restart after downtime), the windows that hold events are closed, plus only
the last ``lookback_windows`` windows (zero-reporting, so absence is still seen); the empty
windows in between are skipped, and stage 2 never hears of them.

Sums and averages stay finite: an event that would make a window's sum non-finite is a dead
letter ``overflow`` (checked before anything is applied: an event is taken whole or not at all).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from catalog import defaults
from streams.admission import OTHER, AdmissionView
from streams.aggregations import to_json_state
from streams.changelog import CLOCK_KEY, parse_stage1_window_key, stage1_window_key
from streams.events import MAX_ORIGINAL_BYTES, DeadLetter, EventError, Origin, event_time_ms
from streams.plan import KpiPlan, SourcePlan
from streams.records import Partial, series_key, split_series

__all__ = ["CLOSE_LOOKBACK_WINDOWS", "DEFAULT_FLOOR_MS", "MAX_DIMENSION_CHARS", "EngineStats", "PartitionEngine"]

log = logging.getLogger("kpimon.engine")
MAX_DIMENSION_CHARS = 256                 # a longer dimension value is a dead letter `too_long`
CLOSE_LOOKBACK_WINDOWS = 60              # empty windows closed (with zeros) behind the watermark after a jump
DEFAULT_FLOOR_MS = 30 * 86_400_000       # without `since:`, events older than the first start minus this are bad
LIMIT_REFRESH_S = 0.05                   # the future-time limit is recomputed at most this often (it only grows)


@dataclass(slots=True)
class EngineStats:
    events: int = 0
    closes: dict[str, int] = field(default_factory=dict)
    revisions: dict[str, int] = field(default_factory=dict)
    late_dropped: dict[str, int] = field(default_factory=dict)
    unmatched: int = 0
    skipped: dict[str, int] = field(default_factory=dict)        # empty windows not closed after a jump
    replayed: int = 0               # messages skipped because the state already holds them
    folded: dict[str, int] = field(default_factory=dict)         # kpi -> dimension values folded into __other__


@dataclass(slots=True)
class _Window:
    series: dict[str, Any]
    offset: int = -1
    revision: int = 0
    # dim -> [lo, hi] for dimensions folded at the bound in this window: the fewest admitted values this partition
    # knew of at a fold (lo) and the most it knew of at any event of the window since the first fold (hi)
    folded: dict[str, list[int | None]] = field(default_factory=dict)


class PartitionEngine:
    """Windowed partial aggregates for one partition of one source topic."""

    def __init__(self, source: SourcePlan, partition: int, *, speedup: float = defaults.SPEEDUP, idle_ms: int = defaults.IDLE_MS,
                 wall: Callable[[], float] = time.time, lookback_windows: int = CLOSE_LOOKBACK_WINDOWS,
                 admissions: AdmissionView | None = None, pending_factor: int = 10) -> None:
        self.source = source
        self.admissions = admissions if admissions is not None else AdmissionView()
        self.pending_factor = pending_factor
        self.partition = partition
        self.speedup = speedup
        self.idle_ms = idle_ms
        self.wall = wall
        self.lookback_windows = max(1, lookback_windows)
        self.stats = EngineStats()
        self.max_ts: int | None = None
        #: the largest forward jump of max_ts (previous, new) since the freshness monitor last took it: a gap in
        #: the source's event time, found even when the worker reads it from a backlog (streams.freshness)
        self.jump: tuple[int, int] | None = None
        self.watermark: int | None = None
        self.applied: int = -1                          # offset of the last message the state holds
        self.wall_at_max = wall()
        self.first_start_ms = int(self.wall_at_max * 1000)   # replaced by the persisted one on restore
        self._input_wall = self.wall_at_max                  # wall time of the last event taken (or the restore)
        self.windows: dict[tuple[int, int], _Window] = {}
        self.closed_through: dict[int, int] = {}       # kpi index -> start of the last closed window
        # per KPI, per dimension: values passed as their own series that stage 2 has not decided yet
        self.pending: list[dict[str, set[str]]] = [{dim: set() for dim in kp.dims} for kp in source.kpis]
        # per KPI: dimensions folded at the bound and not known full yet; they take no new undecided values, so a
        # value this partition passes in a window was never folded here in it (stage 2 relies on that)
        self.flooded: list[set[str]] = [set() for _ in source.kpis]
        self._event_folds: dict[int, set[str]] = {}     # KPI index -> dims folded at the bound, current event
        self._event_folded: dict[int, int] = {}         # KPI index -> values folded into __other__, current event
        # derived from the view (refreshed when its version changes) and pending: values that pass, full dimensions
        self._passing: list[set[str]] = [set() for _ in source.kpis]      # series keys ("dim=value")
        self._full: list[set[str]] = [set() for _ in source.kpis]
        self._view_version = -1
        self._dirty: set[tuple[int, int]] = set()
        self._purged: set[tuple[int, int]] = set()
        self._revised: set[tuple[int, int]] = set()
        self._in_message: set[tuple[int, int]] = set()   # windows this message already updated
        self._clock_dirty = True             # persist the first start
        self._logged: set[type[BaseException]] = set()
        self._limit_ms = 0                   # future_limit_ms() as of the message being processed
        self._limit_wall = -math.inf         # the wall time it was computed at (kept for LIMIT_REFRESH_S)
        self._now = self.wall_at_max         # wall time of the message being processed
        self._partials: list[Partial] = []

    # ---- events ---------------------------------------------------------------------------
    def process(self, events: list[dict[str, Any]], offset: int, origins: list[Origin] | None = None) -> list[DeadLetter]:
        """Apply the events of one message at ``offset``; return the dead letters.

        ``origins`` (from :func:`streams.events.decode_message`) give each dead letter the original bytes;
        without them the event is re-serialised (best effort)."""
        if offset <= self.applied:
            self.stats.replayed += 1        # redelivered after a restart: already in the state
            return []
        self.applied = offset
        self._clock_dirty = True
        dead: list[DeadLetter] = []
        self._in_message.clear()
        self._now = now = self.wall()
        if not self._limit_wall <= now < self._limit_wall + LIMIT_REFRESH_S:     # the wall clock moved on (or back)
            self._limit_ms, self._limit_wall = self.future_limit_ms(), now
        for n, ev in enumerate(events):
            try:
                self._apply(ev, offset)
            except EventError as exc:
                dead.append(self._dead(ev, n, origins, exc.reason, exc.detail))
            except Exception as exc:   # a case the checks missed: this event is a dead letter, not a crash loop
                if type(exc) not in self._logged:
                    self._logged.add(type(exc))
                    log.exception("event at offset %s of %s partition %s could not be handled (dead letter "
                                  "internal_error; logged once per exception type)", offset, self.source.name,
                                  self.partition)
                dead.append(self._dead(ev, n, origins, "internal_error", f"{type(exc).__name__}: {exc}"[:500]))
        self.stats.events += len(events)
        return dead

    @staticmethod
    def _dead(ev: dict[str, Any], n: int, origins: list[Origin] | None, reason: str, detail: str) -> DeadLetter:
        if origins is not None:
            return origins[n].dead(reason, detail)
        return DeadLetter(reason, detail, _dump(ev))

    @property
    def floor_ms(self) -> int:
        """The earliest event time accepted."""
        since = self.source.since_ms
        return since if since is not None else self.first_start_ms - DEFAULT_FLOOR_MS

    def future_limit_ms(self) -> int:
        """The latest event time accepted now (see the module docstring for ``speedup``)."""
        now = self.wall() * 1000
        lead = max(0.0, self.speedup - 1) * max(0.0, now - self.first_start_ms)
        return int(now + self.source.max_future_ms * max(1.0, self.speedup) + lead)

    def _check_time(self, ts: int) -> None:
        if ts < self.floor_ms:
            raise EventError("bad_time", f"event time {ts} is before the source's floor {self.floor_ms}")
        if ts > self._limit_ms:
            raise EventError("future_time",
                             f"event time {ts} is more than max_future ahead of the clock ({self._limit_ms})")

    def _apply(self, ev: dict[str, Any], offset: int) -> None:
        raw_ts = ev.get(self.source.time_field)
        if raw_ts is None:
            raise EventError("missing_time", f"event has no {self.source.time_field!r}")
        ts = event_time_ms(raw_ts)
        self._check_time(ts)
        updates = [(i, kp, _measure(kp, ev, ts), kp.window_starts(ts)) for i, kp in enumerate(self.source.kpis)
                   if kp.matches is None or kp.matches(ev)]
        if not updates:
            if self.source.dead_letter_unmatched:
                raise EventError("unknown_kpi", f"no KPI in the catalog matches this event (kpi={ev.get('kpi')!r})")
            self.stats.unmatched += 1
            return
        self._event_folded.clear()
        series_per_update = [self._series_keys(i, kp, ev) for i, kp, _, _ in updates]
        for (i, kp, x, starts), keys in zip(updates, series_per_update, strict=True):
            if kp.kind in ("sum", "avg"):
                self._check_finite(i, starts, kp, keys, x, offset)
        accepted = False
        for (i, kp, x, starts), keys in zip(updates, series_per_update, strict=True):
            for start in starts:
                if self.watermark is not None and start + kp.size_ms + kp.grace_ms <= self.watermark:
                    self.stats.late_dropped[kp.name] = self.stats.late_dropped.get(kp.name, 0) + 1
                    continue
                accepted = True
                self._update(i, kp, start, keys, x, offset)
        if not accepted:
            raise EventError("too_late", f"event time {ts} is more than grace behind the watermark {self.watermark}")
        for i, n in self._event_folded.items():     # the event is taken: its values folded here count
            name = self.source.kpis[i].name
            self.stats.folded[name] = self.stats.folded.get(name, 0) + n
        self._input_wall = self._now         # activity: a window took it (or had it already: a replay)
        if self.max_ts is None or ts > self.max_ts:
            if self.max_ts is not None and (self.jump is None or ts - self.max_ts > self.jump[1] - self.jump[0]):
                self.jump = (self.max_ts, ts)
            self.max_ts = ts
            self.wall_at_max = self.wall()
            if self.watermark is None or ts > self.watermark:
                self.watermark = ts
            self._clock_dirty = True
        closed = self.closed_through
        for i, kp, _, starts in updates:
            if i not in closed:
                closed[i] = starts[0] - kp.advance_ms

    def _check_finite(self, i: int, starts: range, kp: KpiPlan, keys: list[str], x: float, offset: int) -> None:
        for start in starts:
            win = self.windows.get((i, start))
            if win is None or self._replayed((i, start), win, offset):
                continue
            for skey in keys:
                state = win.series.get(skey)
                if state is not None and not math.isfinite(state[1] + x):
                    raise EventError("overflow", f"{kp.name}: adding {x!r} to the window's sum {state[1]!r} "
                                                 f"(series {skey or 'total'!r}) would not be finite")

    def _replayed(self, key: tuple[int, int], win: _Window, offset: int) -> bool:
        return offset <= win.offset and key not in self._in_message

    def _update(self, i: int, kp: KpiPlan, start: int, keys: list[str], x: Any, offset: int) -> None:
        key = (i, start)
        win = self.windows.get(key)
        if win is None:
            win = self.windows[key] = _Window({})
        elif self._replayed(key, win, offset):
            return                  # replayed message: already counted in this window
        self._in_message.add(key)
        folds = self._event_folds.get(i)
        if folds or win.folded:
            # [lo, hi] of each dimension folded at the bound in this window: lo = fewest admitted values known at
            # a fold, hi = most known at any event of the window since its first fold (stage 2's `_unsafe`). The
            # known count never goes down: the worker reads the whole admission topic before stage 1 starts.
            for dim in {*folds, *win.folded} if folds else win.folded:
                known = self._known(kp, dim)
                span = win.folded.setdefault(dim, [None, known])
                if folds and dim in folds:
                    span[0] = known if span[0] is None else min(span[0], known)
                span[1] = max(span[1] or 0, known)
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
        if self._view_version != self.admissions.version:
            self._refresh()
        keys = [""]
        folds: set[str] = set()
        passing = self._passing[i]
        for dim in kp.dims:
            value = ev.get(dim)
            if value is None or value == "":
                value = "unknown"
            elif isinstance(value, bool | dict | list):
                raise EventError("wrong_type", f"dimension {dim!r} must be a string or number, got {type(value).__name__}")
            elif isinstance(value, str) and len(value) > MAX_DIMENSION_CHARS:
                # a series key travels in every partial, changelog record and label: one huge value could push a
                # record past the broker's message size and crash the worker on every restart
                raise EventError("too_long", f"dimension {dim!r} is {len(value)} characters, more than {MAX_DIMENSION_CHARS}")
            skey = series_key(dim, value)
            if skey in passing or self._passes(i, kp, dim, skey, folds):
                keys.append(skey)
            else:
                keys.append(series_key(dim, OTHER))
                self._event_folded[i] = self._event_folded.get(i, 0) + 1
        self._event_folds[i] = folds
        return keys

    def _refresh(self) -> None:
        """Take in the admission view: admitted values pass; a full dimension drops its undecided values."""
        self._view_version = self.admissions.version
        for i, kp in enumerate(self.source.kpis):
            self._passing[i] = set()
            for dim in kp.dims:
                decided = self.admissions.get(kp.name, kp.state_key, dim)
                pending = self.pending[i][dim]
                admitted = set() if decided is None else set(decided.admitted)
                if decided is not None and decided.full(kp.max_series):
                    if pending or dim in self.flooded[i]:   # stage 2 folds every undecided value of a full dimension
                        pending.clear()
                        self.flooded[i].discard(dim)
                        self._clock_dirty = True
                    self._full[i].add(dim)
                else:
                    pending -= admitted
                    self._full[i].discard(dim)
                self._passing[i].update(series_key(dim, v) for v in admitted | pending)

    def _known(self, kp: KpiPlan, dim: str) -> int:
        decided = self.admissions.get(kp.name, kp.state_key, dim)
        return 0 if decided is None else len(decided.admitted)

    def _passes(self, i: int, kp: KpiPlan, dim: str, skey: str, folds: set[str]) -> bool:
        """Whether ``skey`` (``dim=value``), neither admitted nor undecided here yet, becomes its own series here."""
        value = split_series(skey)[1]
        if value == OTHER or dim in self._full[i]:
            return value == OTHER           # a full dimension: rejected by stage 2, folded the same way there
        pending = self.pending[i][dim]
        if len(pending) < self.pending_factor * kp.max_series and dim not in self.flooded[i]:
            pending.add(value)
            self._passing[i].add(skey)
            self._clock_dirty = True
            return True
        # Memory bound: folded, and the partial's flag closes the dimension at stage 2. From now on the dimension
        # takes no new undecided values here, until stage 1 hears that it is full.
        folds.add(dim)
        if dim not in self.flooded[i]:
            self.flooded[i].add(dim)
            self._clock_dirty = True
        return False

    # ---- time -----------------------------------------------------------------------------
    def advance(self) -> None:
        """Move the watermark (idle → wall clock), close windows, purge those past grace."""
        if self.max_ts is None:
            return
        now = self.wall()
        # Idle: no event taken for idle_ms (replays of old offsets and late events within grace count as activity,
        # and so does a restore: a backlog after downtime is read before the clock takes over; dead letters and
        # unmatched events do not). The extrapolation starts from when the newest event was seen, so downtime
        # counts as silence.
        if (now - max(self.wall_at_max, self._input_wall)) * 1000 >= self.idle_ms:
            extrapolated = self.max_ts + int((now - self.wall_at_max) * 1000 * self.speedup)
            if self.watermark is None or extrapolated > self.watermark:
                self.watermark = extrapolated
                self._clock_dirty = True
        wm = self.watermark
        assert wm is not None
        for i, kp in enumerate(self.source.kpis):
            last = self.closed_through.get(i)
            if last is not None and last + kp.advance_ms + kp.size_ms <= wm:
                self._close_through(i, kp, last + kp.advance_ms, wm)
        for key in [k for k in self.windows if k[1] + self.source.kpis[k[0]].size_ms + self.source.kpis[k[0]].grace_ms <= wm]:
            del self.windows[key]
            self._dirty.discard(key)
            self._revised.discard(key)
            self._purged.add(key)

    def _close_through(self, i: int, kp: KpiPlan, first: int, wm: int) -> None:
        """Close the windows from ``first`` to the last one ending by ``wm``: those with data, and the last
        ``lookback_windows`` (at least those still within grace); empty windows before them are skipped."""
        step = kp.advance_ms
        end = first + (wm - kp.size_ms - first) // step * step        # start of the last window to close
        lookback = max(self.lookback_windows, -(-(kp.size_ms + kp.grace_ms) // step) + 1)
        recent = max(first, end - (lookback - 1) * step)
        with_data = sorted(s for j, s in self.windows if j == i and first <= s < recent)
        skipped = (recent - first) // step - len(with_data)
        if skipped:
            self.stats.skipped[kp.name] = self.stats.skipped.get(kp.name, 0) + skipped
        for start in with_data:
            self._close(i, kp, start)
        for start in range(recent, end + 1, step):
            self._close(i, kp, start)
        self.closed_through[i] = end
        self._clock_dirty = True

    def _close(self, i: int, kp: KpiPlan, start: int) -> None:
        win = self.windows.get((i, start))
        self._partials.append(self._partial(kp, start, win, revision=0))
        self.stats.closes[kp.name] = self.stats.closes.get(kp.name, 0) + 1
        if win is not None:
            self._dirty.add((i, start))

    def _partial(self, kp: KpiPlan, start: int, win: _Window | None, revision: int) -> Partial:
        series = {} if win is None else {k: to_json_state(v) for k, v in win.series.items()}
        flagged = {} if win is None else {dim: [lo, hi] for dim, (lo, hi) in win.folded.items()
                                          if lo is not None and hi is not None}
        return Partial(kp.name, kp.state_key, start, start + kp.size_ms, self.source.name, self.partition, revision,
                       -1 if win is None else win.offset, series, flagged)

    # ---- output ---------------------------------------------------------------------------
    def take_jump(self) -> tuple[int, int] | None:
        """The largest forward jump of the newest event time since the last call (ms), then forget it."""
        jump, self.jump = self.jump, None
        return jump

    def take_partials(self) -> list[Partial]:
        """Partials to publish: closes, plus revisions of closed windows changed since last call."""
        for i, start in sorted(self._revised):
            win = self.windows.get((i, start))
            if win is not None:
                self._partials.append(self._partial(self.source.kpis[i], start, win, win.revision))
        self._revised.clear()
        out, self._partials = self._partials, []
        return out

    def take_changes(self) -> list[tuple[str, bytes | None]]:
        """Changelog records (key within the partition, JSON or None for delete) changed since last call."""
        out: list[tuple[str, bytes | None]] = []
        for i, start in sorted(self._dirty):
            win = self.windows[(i, start)]
            kp = self.source.kpis[i]
            doc = {"o": win.offset, "r": win.revision, "s": {k: to_json_state(v) for k, v in win.series.items()}}
            if win.folded:
                doc["f"] = win.folded
            out.append((stage1_window_key(kp.name, kp.state_key, start), orjson.dumps(doc)))
        for i, start in sorted(self._purged):
            kp = self.source.kpis[i]
            out.append((stage1_window_key(kp.name, kp.state_key, start), None))
        if self._clock_dirty:
            out.append((CLOCK_KEY, orjson.dumps({
                "max": self.max_ts, "wm": self.watermark, "wam": self.wall_at_max, "first": self.first_start_ms,
                "at": self.applied,
                "closed": {kp.name + "|" + kp.state_key: self.closed_through[i]
                           for i, kp in enumerate(self.source.kpis) if i in self.closed_through},
                "pending": {kp.name + "|" + kp.state_key: {d: sorted(v) for d, v in self.pending[i].items()}
                            | {"~flooded": sorted(self.flooded[i])} for i, kp in enumerate(self.source.kpis)},
            })))
        self._dirty.clear()
        self._purged.clear()
        self._clock_dirty = False
        return out

    # ---- recovery -------------------------------------------------------------------------
    def restore(self, records: dict[str, bytes]) -> None:
        """Rebuild from changelog records of this partition (keys as written by take_changes)."""
        index = {(kp.name, kp.state_key): i for i, kp in enumerate(self.source.kpis)}
        clock = records.get(CLOCK_KEY)
        if clock is not None:
            doc = orjson.loads(clock)
            self.max_ts, self.watermark = doc["max"], doc["wm"]
            self.applied = int(doc.get("at", -1))
            # The wall time the newest event was seen at, so the idle watermark follows the wall clock across
            # downtime; records written before it was kept restart the idle clock now.
            self.wall_at_max = min(float(doc.get("wam", self.wall())), self.wall())
            self.first_start_ms = int(doc.get("first", self.first_start_ms))
            self._input_wall = self.wall()
            for name, start in doc["closed"].items():
                kpi, sk = name.split("|")
                if (kpi, sk) in index:
                    self.closed_through[index[(kpi, sk)]] = start
            for name, pending in doc.get("pending", {}).items():
                kpi, sk = name.split("|")
                if (kpi, sk) in index:
                    mine = self.pending[index[(kpi, sk)]]
                    mine.update({d: set(v) for d, v in pending.items() if d in mine})
                    self.flooded[index[(kpi, sk)]] = set(pending.get("~flooded", [])) & set(mine)
                    self._view_version = -1         # re-derive what passes
        for key, value in records.items():
            parsed = parse_stage1_window_key(key)
            if parsed is None or parsed[:2] not in index:
                continue        # the clock, or a KPI whose definition changed
            i = index[parsed[:2]]
            doc = orjson.loads(value)
            load = self.source.kpis[i].agg.load
            series = {k: load(v) for k, v in doc["s"].items()}
            self.windows[(i, parsed[2])] = _Window(series, doc["o"], doc["r"], doc.get("f", {}))


def _dump(ev: dict[str, Any]) -> bytes:
    """An event as JSON for a dead letter when its original bytes are not at hand (best effort)."""
    try:
        return orjson.dumps(ev, default=str)
    except TypeError:              # orjson.JSONEncodeError: nested deeper than orjson writes, or a huge int
        return repr(ev)[:MAX_ORIGINAL_BYTES].encode()


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
