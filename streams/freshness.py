"""Source freshness in the worker: which sources still send, and the ``source_silent`` alerts of those that stopped.

Stage 1 calls :meth:`FreshnessMonitor.seen` for each batch, before its flush closes windows, with the
partition's newest event time and its largest jump; an event newer than any seen before is an *arrival*
(replays after a restart are not). Every tick, before the alert
pipeline runs, :meth:`FreshnessMonitor.check` merges this worker's arrivals into the source's
:class:`~alerting.freshness.SourceRecord` in the alert store (shared by every worker, kept over restarts) and
decides (see :mod:`alerting.freshness` for what the pipeline then holds):

* no arrival for ``max_silence`` (the catalog's, or learned: ``LEARN_FACTOR`` x the median gap between the last
  64 arrivals once ``LEARN_MIN`` were seen, never below ``LEARN_FLOOR_S``), and no unread message of the source
  waiting on the broker (:meth:`~FreshnessMonitor.behind`: then the worker is behind, not the source) → the
  source is silent: one firing ``source_silent`` alert per owner team of the KPIs it feeds;
* an event-time gap of ``max_silence`` in every partition, found while catching up on a backlog → a past
  silence: its windows are no data, nobody is paged;
* an arrival while silent → the silence ends: the series alerts of its KPIs that were held and never told are
  dropped (fresh windows judge them again), then the source_silent alerts resolve.

A window inside a known silence of all its KPI's sources is *no data* (:meth:`FreshnessMonitor.no_data`):
``Observers`` neither evaluates nor learns it.

Silence is judged on the wall clock (x ``speedup`` in simulations: ``max_silence`` is event time), because a
silent source is one whose partitions make no progress; its windows still close on the idle clock.

Examples
--------
>>> learned_max_silence(gaps=25, typical_gap_s=2.0, speedup=1.0)
300.0
>>> learned_max_silence(gaps=25, typical_gap_s=60.0, speedup=1.0)
600.0
>>> learned_max_silence(gaps=3, typical_gap_s=60.0, speedup=1.0)
0.0
"""

from __future__ import annotations

import logging
import statistics
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from alerting.freshness import SOURCE_SILENT, SourceRecord, resolve_silent, silent_alert
from alerting.service import AlertService

__all__ = ["FreshnessMonitor", "SourcePolicy", "learned_max_silence"]

log = logging.getLogger(__name__)

LEARN_MIN = 20          # arrivals (gaps) before a learned rate is trusted
LEARN_FACTOR = 10.0     # silent after this many typical gaps
LEARN_FLOOR_S = 300.0   # ... but never sooner than 5 minutes (event time)
_GAPS_KEPT = 64         # the typical gap is the median of the last 64 (an outage does not teach the rate)


def learned_max_silence(gaps: int, typical_gap_s: float, speedup: float) -> float:
    """``max_silence`` (event-time seconds) learned from ``gaps`` wall gaps of typically ``typical_gap_s``; 0: not yet."""
    if gaps < LEARN_MIN:
        return 0.0
    return max(LEARN_FLOOR_S, LEARN_FACTOR * typical_gap_s * speedup)


@dataclass(frozen=True, slots=True)
class SourcePolicy:
    """One source: its catalog ``max_silence`` (None: learn; 0: off) and the KPIs it feeds per owner team."""

    max_silence: float | None
    teams: Mapping[str, Sequence[str]]
    severity: str = "critical"

    @property
    def kpis(self) -> list[str]:
        return sorted({k for kpis in self.teams.values() for k in kpis})


@dataclass(slots=True)
class _Local:
    """This worker's view of one source since the last check."""

    max_ts: float | None = None          # newest event time seen (s)
    arrival: float = 0.0                 # wall time of the newest arrival
    first_new: float | None = None       # event time of the first arrival since the last check
    jumps: dict[int, tuple[float, float]] = field(default_factory=dict)   # partition -> its last event-time gap
    behind: dict[int, bool] = field(default_factory=dict)     # partition -> unread messages on the broker
    gaps: deque[float] = field(default_factory=lambda: deque(maxlen=_GAPS_KEPT))
    partitions: dict[int, float] = field(default_factory=dict)


def _common_gap(local: _Local) -> tuple[float, float] | None:
    """The event-time interval in which *every* partition of the source seen here had no event, if any: one
    quiet partition (keys skewed) is not a silent source."""
    if not local.jumps or not set(local.jumps) >= set(local.partitions):
        return None
    start, end = max(j[0] for j in local.jumps.values()), min(j[1] for j in local.jumps.values())
    return (start, end) if end > start else None


class FreshnessMonitor:
    """See the module docstring."""

    def __init__(self, policies: Mapping[str, SourcePolicy], service: AlertService, *, speedup: float = 1.0,
                 quiet_s: float = 2.0, wall: Callable[[], float] = time.time,
                 sources_of: Mapping[str, frozenset[str]] | None = None) -> None:
        self.policies, self.service = policies, service
        self.speedup, self.quiet_s, self.wall = speedup, quiet_s, wall
        self.sources_of = sources_of or {}
        self._local = {name: _Local() for name in policies}
        self.records: dict[str, SourceRecord] = {}      # as of the last check (for metrics)
        self.gaps: dict[str, tuple[float, float]] = {}   # source -> its last known silence (event time, s)

    def no_data(self, kpi: str, start: float, end: float) -> bool:
        """Whether the window [start, end) of ``kpi`` lies in a known silence of every source it is computed
        from: an empty window of a stopped feed, which is no data, not a zero (it is neither alerted on nor
        learned by the detectors)."""
        sources = self.sources_of.get(kpi, frozenset())
        return bool(sources) and all(
            (gap := self.gaps.get(s)) is not None and gap[0] <= start and end <= gap[1] for s in sources)

    def _limit(self, source: str) -> float:
        rec = self.records.get(source)
        return self.max_silence(source) or (rec.max_silence if rec else 0.0)

    def seen(self, source: str, partition: int, max_ts_ms: int | None,
             jump_ms: tuple[int, int] | None = None) -> None:
        """Stage 1 processed a batch of ``partition``; ``max_ts_ms`` is its newest event time so far, ``jump_ms``
        the largest forward jump of it in this batch (a gap in event time, e.g. read from a backlog)."""
        local = self._local.get(source)
        if local is None or max_ts_ms is None:
            return
        if jump_ms is not None:
            new, old = (jump_ms[0] / 1000, jump_ms[1] / 1000), local.jumps.get(partition)
            if old is None or new[1] - new[0] > old[1] - old[0] or new[0] >= old[1] + self.max_silence(source):
                local.jumps[partition] = new        # the largest gap, or a newer one well after it
            gap, limit = _common_gap(local), self._limit(source)
            if gap is not None and limit and gap[1] - gap[0] >= limit:
                self.gaps[source] = gap             # known before the flush closes the windows of the gap
        ts = max_ts_ms / 1000
        before = local.partitions.get(partition)
        local.partitions[partition] = ts
        if before is not None and ts <= before:
            return                           # nothing newer on this partition
        if local.max_ts is not None and ts <= local.max_ts:
            return
        now = self.wall()
        if local.max_ts is not None and local.arrival:
            local.gaps.append(now - local.arrival)
        local.max_ts, local.arrival = ts, now
        if local.first_new is None:
            local.first_new = ts

    def behind(self, source: str, partition: int, unread: bool) -> None:
        """Whether this worker has unread messages of the source's ``partition`` (it is behind, not the source)."""
        local = self._local.get(source)
        if local is not None:
            local.behind[partition] = unread

    def max_silence(self, source: str) -> float:
        """The ``max_silence`` in effect (event-time seconds; 0: not judged)."""
        policy, local = self.policies[source], self._local[source]
        if policy.max_silence is not None:
            return policy.max_silence
        if len(local.gaps) < LEARN_MIN:
            return 0.0
        return learned_max_silence(len(local.gaps), statistics.median(local.gaps), self.speedup)

    async def check(self) -> None:
        """Merge arrivals into the stored records; raise and resolve ``source_silent`` alerts."""
        store = self.service.store
        stored = {k: SourceRecord.from_dict(v) for k, v in (await store.list_sources()).items()}
        for name in self.policies:
            prev = stored.get(name)
            rec = await self._check_one(name, prev)
            if rec is not None and rec != prev:
                await store.put_source(name, rec.to_dict())
            if rec is not None:
                self.records[name] = rec
                if rec.gap is not None and rec.gap[1] > self.gaps.get(name, (0.0, 0.0))[1]:
                    self.gaps[name] = rec.gap       # another worker's, or before a restart

    async def _check_one(self, name: str, prev: SourceRecord | None) -> SourceRecord | None:
        local = self._local[name]
        limit = self.max_silence(name)
        if self.policies[name].max_silence is None and not limit and prev is not None:
            limit = prev.max_silence            # a restart keeps what was learned
        arrived = local.max_ts is not None and (prev is None or local.max_ts > prev.last_event_ts)
        first_new, local.first_new = local.first_new, None
        jump = _common_gap(local)
        if arrived and local.max_ts is not None:
            rec = SourceRecord(name, local.max_ts, max(local.arrival, prev.last_arrival if prev else 0.0), limit,
                               self.quiet_s, prev.silent_since if prev else None, prev.gap if prev else None)
        elif prev is not None:
            rec = replace(prev, max_silence=limit, quiet_s=self.quiet_s)
        else:
            return None
        if arrived and rec.silent_since is not None:
            resumed = first_new if first_new is not None else rec.last_event_ts
            await self._resume(name, rec, resumed)
            self.gaps[name] = (rec.silent_since, resumed)
            return replace(rec, silent_since=None, gap=self.gaps[name])
        if rec.silent_since is None and jump is not None and rec.judged and jump[1] - jump[0] >= limit:
            local.jumps.clear()
            # a past silence read from the backlog: its empty windows are held; it is over, nobody is paged
            log.warning("source %s sent nothing from %s to %s (event time; found while catching up): the windows "
                        "of that gap are not alerted", name, jump[0], jump[1])
            self.gaps[name] = jump
            return replace(rec, gap=jump)
        idle = (self.wall() - rec.last_arrival) * self.speedup >= limit
        if rec.silent_since is None and rec.judged and idle and not any(local.behind.values()):
            rec = replace(rec, silent_since=rec.last_event_ts)
            await self._raise(rec)
        return rec

    async def _raise(self, rec: SourceRecord) -> None:
        policy, store, now = self.policies[rec.source], self.service.store, self.service.clock()
        log.warning("source %s is silent: no events since %s (event time) for max_silence %.0fs; holding the "
                    "alerts of %s", rec.source, rec.last_event_ts, rec.max_silence, ", ".join(policy.kpis))
        for team, kpis in sorted(policy.teams.items()):
            alert = silent_alert(rec, team, sorted(kpis), now, policy.severity)
            current = await store.get_alert(alert.fingerprint)
            if current is None or current.state != "firing":    # a restart in between: keep the incident
                await store.put_alert(alert)

    async def _resume(self, name: str, rec: SourceRecord, resumed_ts: float) -> None:
        policy, store, now = self.policies[name], self.service.store, self.service.clock()
        log.warning("source %s sends again (first new event at %s); re-judging the held alerts of %s",
                    name, resumed_ts, ", ".join(policy.kpis))
        told = {fp for g in await store.list_groups() for fp, st in g.get("sent", {}).items() if st == "firing"}
        fed = set(policy.kpis)
        alerts = await store.list_alerts()
        for a in alerts:       # held, never told: judged again from the next fresh window, not released
            if a.kpi in fed and a.rule != SOURCE_SILENT and a.state in ("pending", "firing") and a.fingerprint not in told:
                await store.delete_alert(a.fingerprint, if_unchanged=a)
        for a in alerts:
            if a.rule == SOURCE_SILENT and a.kpi == name and a.state == "firing":
                await store.put_alert(resolve_silent(a, resumed_ts, now))
