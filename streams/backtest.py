"""Backtest: history through the worker's own engine, detectors and alert rules, with no notification sent.

Two steps, so that one replay of the events serves every way of judging them ("current vs proposed"):

1. :func:`replay` runs the events through stage 1 (:class:`~streams.engine.PartitionEngine`, one per source) and
   stage 2 (:class:`~streams.merge.Merger`) exactly as a worker reading the same messages would, on a *replay
   clock*: the newest event time read so far stands for the wall clock, so windows close on the watermark, an idle
   source's windows close on the clock (zeros, as in the worker) and the alert lifecycle's ``for`` and
   ``keep_firing_for`` mean the same event-time durations as in production. The result, :class:`History`, is the
   list of final KPI values in the order and at the replay time the worker would have had them (what ``kpi.values``
   carries), plus what was dead-lettered and the silences of the sources.
2. :func:`judge` feeds a :class:`History` to fresh detectors (:class:`~streams.observers.Observers`) and an
   :class:`~alerting.service.AlertService` over an in-memory store, under one :class:`Judge` (the alert rules with
   any proposed overrides, the detector specs with any proposed kind or sensitivity), and tallies per rule and
   series what fired: how often, for how many alert-minutes, first and last, the longest.

A source silence (an event-time gap of the source's ``max_silence`` — the catalog's, or learned from its rate as
the worker does) makes the windows inside it *no data*, as the worker's freshness monitor does for a backlog: they
are neither alerted on nor learned. The worker pages one ``source_silent`` alert per team instead; the backtest
lists the silences.

What the backtest does not do: deliver (no outbox, no grouping, no silences or acknowledgements: it counts alerts,
not messages); evaluate ``missing_after`` absence rules (they run on the worker's timer, not on windows).

Examples
--------
>>> import asyncio
>>> from catalog import parse_catalog
>>> from streams.plan import compile_plan
>>> cat = parse_catalog('''
... version: 1
... sources: {orders: {topic: orders, since: 2026-01-01}}
... kpis:
...   - name: orders
...     source: orders
...     measure: count
...     window: {type: tumbling, size: 1m, grace: 0s}
...     detector: {enabled: false}
...     alerts: [{name: low, type: threshold, below: 2, for: 0s}]
... ''')
>>> t0 = 1_767_225_600_000                 # 2026-01-01T00:00:00Z
>>> msgs = [("orders", {"ts": t0 + 60_000 * m + i}) for m in range(6) for i in range(1 if m == 3 else 5)]
>>> history = replay(compile_plan(cat), msgs)
>>> [(v.window_start_ms - t0) // 60_000 for _, vals in history.steps for v in vals if v.value == 1]
[3]
>>> report = asyncio.run(judge(history, Judge.of(cat)))
>>> [(r.kpi, r.rule, r.fired, r.alert_minutes) for r in report.rows]
[('orders', 'low', 1, 1.0)]
"""

from __future__ import annotations

import heapq
import statistics
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import orjson

from alerting.config import AlertingConfig, build_alerting_config
from alerting.config import KpiMeta as AlertKpiMeta
from alerting.lifecycle import Transition
from alerting.memory_store import MemoryStore
from alerting.notifiers.base import Notification, Outcome
from alerting.service import AlertService
from catalog import Catalog, defaults
from catalog.calendar import Calendar
from catalog.channels import ChannelSpec
from streams.engine import PartitionEngine
from streams.events import DeadLetter, EventError, Origin, decode_message, event_time_ms
from streams.freshness import learned_max_silence
from streams.merge import Merger
from streams.observers import DetectorSpecLite, EventClock, Observers
from streams.plan import Plan
from streams.records import KpiValue

__all__ = ["History", "Judge", "Label", "Partitioned", "Report", "Row", "Silence", "dry_run", "judge", "proposal_backtest", "read_topic", "replay",
           "rule_figures", "score_labels", "values_dry_run", "values_history", "values_history_of"]

#: a message of history: (source name, the message's bytes as on Kafka, or one decoded event)
Message = tuple[str, "bytes | dict[str, Any]"]
CHUNK, CHUNK_MS = 200, 1_000      # decoded events of a file are replayed as messages (see _decoded)
STEP_EVENTS = 2_000        # the engines advance at least this often (the worker: after every fetched batch)


@dataclass(frozen=True, slots=True)
class Silence:
    """An event-time gap of a source at least its ``max_silence`` long: its KPIs' windows inside it are no data."""

    source: str
    start: float          # s, the last event before the gap
    end: float            # s, the first event after it (the end of the history for a source that never came back)


@dataclass
class History:
    """Final KPI values in the order and at the replay time (s) the worker would have had them."""

    steps: list[tuple[float, list[KpiValue]]] = field(default_factory=list)
    messages: int = 0
    events: int = 0
    skipped: int = 0                 # events outside --since/--until
    dead: Counter[str] = field(default_factory=Counter)          # dead letters by reason
    examples: dict[str, str] = field(default_factory=dict)       # reason -> the first one's detail
    silences: list[Silence] = field(default_factory=list)
    first_ms: int | None = None
    last_ms: int | None = None
    sources_of: Mapping[str, frozenset[str]] = field(default_factory=dict)

    @property
    def values(self) -> int:
        return sum(len(vals) for _, vals in self.steps)

    def no_data(self, kpi: str, start: float, end: float) -> bool:
        """Whether the window [start, end) lies in a silence of every source of ``kpi`` (see the module docstring)."""
        sources = self.sources_of.get(kpi, frozenset())
        return bool(sources) and all(any(s.source == src and s.start <= start and end <= s.end
                                         for s in self.silences) for src in sources)


class _Gaps:
    """Event-time silences of one source, judged as :mod:`streams.freshness` judges a backlog."""

    def __init__(self, name: str, max_silence: float | None) -> None:
        self.name, self.max_silence = name, max_silence
        self.last: float | None = None
        self.gaps: deque[float] = deque(maxlen=64)
        self.found: list[Silence] = []

    def limit(self) -> float:
        if self.max_silence is not None:
            return self.max_silence            # 0: off
        if len(self.gaps) < 20:
            return 0.0
        return learned_max_silence(len(self.gaps), statistics.median(self.gaps), 1.0)

    def seen(self, ts_s: float) -> None:
        if self.last is not None and ts_s > self.last:
            gap, limit = ts_s - self.last, self.limit()
            if limit and gap >= limit:
                self.found.append(Silence(self.name, self.last, ts_s))
            else:
                self.gaps.append(gap)
        if self.last is None or ts_s > self.last:
            self.last = ts_s

    def close(self, end_s: float) -> None:
        limit = self.limit()
        if self.last is not None and limit and end_s - self.last >= limit:
            self.found.append(Silence(self.name, self.last, float("inf")))


def _decoded(source: str, items: Iterable[bytes | dict[str, Any]], time_field: str,
             max_bytes: int) -> Iterator[tuple[int, str, list[dict[str, Any]], list[int | None], list[Any],
                                               list[Origin], int]]:
    """(sort key, source, events, their times (ms; None: none readable), dead letters, origins, messages) per chunk
    of the source's messages, in order.

    Consecutive messages are replayed as one (up to CHUNK events within CHUNK_MS of event time): the engine's cost is
    per call as much as per event, and one event per message is what most producers send. A chunk spanning more
    event time would let the other sources' events run the replay clock past this source's idle time (its watermark
    would jump ahead and its own next events would be too late)."""
    events: list[dict[str, Any]] = []
    times: list[int | None] = []
    origins: list[Origin] = []
    dead: list[Any] = []
    first = last = 0
    messages = 0
    blank = Origin(b"")
    for item in items:
        got: list[dict[str, Any]]
        bad: list[DeadLetter]
        where: list[Origin]
        if isinstance(item, dict):
            got, bad, where = [item], [], [blank]
        else:
            got, bad, where = decode_message(item, max_bytes)
        messages += 1
        dead += bad
        for ev, origin in zip(got, where, strict=True):
            at: int | None
            try:
                at = event_time_ms(ev.get(time_field))
            except EventError:
                at = None
            ts = first if at is None else at
            if events and (len(events) >= CHUNK or abs(ts - first) > CHUNK_MS):
                yield last, source, events, times, dead, origins, messages
                events, times, origins, dead, messages = [], [], [], [], 0
            if not events:
                first = ts
            last = max(last, ts)
            events.append(ev)
            times.append(at)
            origins.append(origin)
    if events or dead:
        yield last, source, events, times, dead, origins, messages


@dataclass(frozen=True, slots=True)
class Partitioned:
    """The messages of one source as several streams (a topic's partitions), each in its own order: the replay
    interleaves them by event time, as the worker's per-partition watermarks would see them."""

    parts: list[list[bytes]]


def replay(plan: Plan, messages: Iterable[Message] | Mapping[str, Iterable[bytes | dict[str, Any]] | Partitioned], *,
           since_ms: int | None = None, until_ms: int | None = None, idle_ms: int = defaults.IDLE_MS,
           max_message_bytes: int = defaults.MAX_MESSAGE_BYTES, wall: Callable[[], float] = time.time) -> History:
    """Replay ``messages`` (per source one iterable, or :class:`Partitioned` streams, interleaved by event time; or
    one iterable of (source, message) in the order read) through stage 1 and stage 2; see the module docstring.
    A source's silences are judged by its catalog ``max_silence`` (the plan's), learned where it has none."""
    plan = plan.with_partitions({s.name: 1 for s in plan.sources})   # one engine per source: nothing to wait for
    by_name = {s.name: s for s in plan.sources}
    history = History(sources_of=plan.sources_of())
    streams: list[Iterator[Any]]
    if isinstance(messages, Mapping):
        for name in messages:
            if name not in by_name:
                raise ValueError(f"no source {name!r} in the catalog; sources: {', '.join(sorted(by_name))}")
        streams = [_decoded(name, part, by_name[name].time_field, max_message_bytes)
                   for name, items in messages.items()
                   for part in (items.parts if isinstance(items, Partitioned) else [items])]
        ordered: Iterable[Any] = heapq.merge(*streams, key=lambda m: m[0])
    else:
        def tagged() -> Iterator[Any]:
            for name, item in messages:
                if name not in by_name:
                    raise ValueError(f"no source {name!r} in the catalog; sources: {', '.join(sorted(by_name))}")
                yield from _decoded(name, [item], by_name[name].time_field, max_message_bytes)
        ordered = tagged()
    clock = [0.0]                     # the replay clock (s): the newest event time read, never beyond the wall
    real_now = wall()
    engines: dict[str, PartitionEngine] = {}
    gaps = {name: _Gaps(name, src.max_silence_s) for name, src in by_name.items()}
    merger = Merger(plan, partition_wait_s=0.0, wall=lambda: clock[0])
    offsets: Counter[str] = Counter()
    since_events = 0

    def step() -> None:
        for engine in engines.values():
            engine.advance()
            for partial in engine.take_partials():
                merger.add_partial(partial)
            engine.take_changes()
        values = merger.poll()
        merger.take_changes()
        merger.take_feedback()
        if values:
            history.steps.append((clock[0], values))

    for _, name, events, times, dead, origins, count in ordered:
        source = by_name[name]
        history.messages += count
        offsets[name] += 1
        for d in dead:
            history.dead[d.reason] += 1
            history.examples.setdefault(d.reason, d.detail)
        kept = []
        for ev, ts in zip(events, times, strict=True):
            if ts is None:
                kept.append(ev)          # the engine dead-letters it with the worker's reason
                continue
            if (since_ms is not None and ts < since_ms) or (until_ms is not None and ts >= until_ms):
                history.skipped += 1
                continue
            kept.append(ev)
            if ts <= real_now * 1000 + source.max_future_ms:
                if ts / 1000 > clock[0]:
                    clock[0] = ts / 1000
                gaps[name].seen(ts / 1000)
                history.first_ms = ts if history.first_ms is None else min(history.first_ms, ts)
                history.last_ms = ts if history.last_ms is None else max(history.last_ms, ts)
        if not kept:
            continue
        engine = engines.get(name)
        if engine is None:
            engine = engines[name] = PartitionEngine(source, 0, speedup=1.0, idle_ms=idle_ms, wall=lambda: clock[0])
        for d in engine.process(kept, offsets[name], origins if len(kept) == len(events) else None):
            history.dead[d.reason] += 1
            history.examples.setdefault(d.reason, d.detail)
        history.events += len(kept)
        since_events += len(kept)
        if since_events >= STEP_EVENTS:
            since_events = 0
            step()
    # the end: close what the watermark has passed, no further (the last window may be incomplete)
    step()
    for g in gaps.values():
        g.close(clock[0])
        history.silences += g.found
    return history


def values_history(records: Iterable[Mapping[str, Any]]) -> History:
    """A :class:`History` from ``kpi.values`` records (``--from-values``: the engine is skipped, only judged).

    Each record is judged when its window ends (the replay clock is the window end)."""
    history = History()
    by_end: dict[int, list[KpiValue]] = {}
    for rec in records:
        try:
            labels = rec.get("labels") or {}
            series = "" if not labels else "=".join(next(iter(labels.items())))
            value = rec.get("value")
            val = KpiValue(str(rec["kpi"]), series, round(float(rec["window_start"]) * 1000),
                           round(float(rec["window_end"]) * 1000), None if value is None else float(value),
                           int(rec.get("revision", 0)))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            history.dead["bad_value_record"] += 1
            history.examples.setdefault("bad_value_record", f"{type(exc).__name__}: {exc}"[:200])
            continue
        history.messages += 1
        by_end.setdefault(val.window_end_ms, []).append(val)
        history.first_ms = val.window_start_ms if history.first_ms is None else min(history.first_ms, val.window_start_ms)
        history.last_ms = val.window_end_ms if history.last_ms is None else max(history.last_ms, val.window_end_ms)
    history.steps = [(end / 1000, sorted(vals, key=lambda v: (v.revision, v.kpi, v.series)))
                     for end, vals in sorted(by_end.items())]
    return history


# ---- judging ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Judge:
    """One way of judging a history: the alert rules (with any proposed overrides) and the detector specs."""

    name: str
    alerting: AlertingConfig
    detectors: Mapping[str, DetectorSpecLite]
    calendar: Calendar | None = None

    @classmethod
    def of(cls, catalog: Catalog, name: str = "current", alerting: AlertingConfig | None = None) -> Judge:
        """The catalog's own judge (``alerting``: the shell's config of the catalog, with its message settings)."""
        if alerting is None:
            metas = {k.name: AlertKpiMeta(name=k.name, title=k.title or {"en": k.name}, unit=k.unit, owner=k.owner)
                     for k in catalog.kpis}
            alerting = build_alerting_config({k.name: k.alerts for k in catalog.kpis}, [], {}, metas,
                                             timezone=catalog.defaults.timezone)
        specs = {k.name: DetectorSpecLite(k.detector.kind, k.detector.sensitivity, k.detector.params)
                 for k in catalog.kpis if k.detector.enabled}
        return cls(name, alerting, specs, catalog.business_calendar())

    def with_detectors(self, name: str, changes: Mapping[str, Mapping[str, Any]]) -> Judge:
        """This judge with ``changes`` (KPI -> {"kind": ..., "sensitivity": ...}) to its detector specs."""
        specs = dict(self.detectors)
        for kpi, change in changes.items():
            old = specs.get(kpi, DetectorSpecLite(str(change.get("kind", "calibrated")), "medium", {}))
            kind = str(change.get("kind", old.kind))
            specs[kpi] = DetectorSpecLite(kind, str(change.get("sensitivity", old.sensitivity)),
                                          old.params if kind == old.kind else {})
        return replace(self, name=name, detectors=specs)


@dataclass(slots=True)
class Row:
    """What one rule did on one series."""

    kpi: str
    rule: str
    series: dict[str, str]
    severity: str = ""
    fired: int = 0
    alert_minutes: float = 0.0
    first: float | None = None            # s, when it first fired
    last: float | None = None             # s, when it last fired
    longest_minutes: float = 0.0
    open_since: float | None = None       # still firing at the end of the history since (s)
    spans: list[tuple[float, float]] = field(default_factory=list)    # (fired, resolved or the end), s

    def to_json(self) -> dict[str, Any]:
        return {"kpi": self.kpi, "rule": self.rule, "series": self.series, "severity": self.severity,
                "fired": self.fired, "alert_minutes": round(self.alert_minutes, 3), "first": self.first,
                "last": self.last, "longest_minutes": round(self.longest_minutes, 3),
                "firing_at_end": self.open_since is not None, "fired_at": [start for start, _ in self.spans]}


@dataclass
class Report:
    """The tally of one :class:`Judge` over one :class:`History`."""

    judge: str
    rows: list[Row]
    windows: int = 0
    anomalies: int = 0
    end: float | None = None

    def by_key(self) -> dict[tuple[str, str, str], Row]:
        return {(r.kpi, r.rule, orjson.dumps(r.series, option=orjson.OPT_SORT_KEYS).decode()): r for r in self.rows}


class _Quiet:
    """The backtest's notifier: nothing is ever sent (and nothing asks it to: the pipeline does not run)."""

    kind: ClassVar[str] = "backtest"

    async def send(self, notification: Notification) -> Outcome:      # pragma: no cover - never called
        raise AssertionError("a backtest sends no notification")


def _quiet(spec: ChannelSpec) -> _Quiet:
    return _Quiet()


async def judge(history: History, how: Judge) -> Report:
    """Judge ``history`` with fresh detectors and alert state under ``how``; see the module docstring."""
    clock_s = [0.0]
    clock = EventClock(1.0, wall=lambda: clock_s[0])
    service = AlertService(how.alerting, MemoryStore(), clock=clock.now, notifier_factory=_quiet,
                           wall_clock=lambda: clock_s[0])
    rows: dict[str, Row] = {}

    def seen(t: Transition) -> None:
        row = rows.get(t.fingerprint)
        if row is None:
            spec = next((r for r in how.alerting.rules.get(t.kpi, ()) if r.name == t.rule), None)
            hidden = {"alertname", "kpi", "severity", "team", *(spec.labels if spec is not None else {})}
            row = rows[t.fingerprint] = Row(t.kpi, t.rule, {k: v for k, v in t.labels.items() if k not in hidden},
                                            t.severity)
        if t.new == "firing" and row.open_since is None:
            row.fired += 1
            row.open_since = t.at
            row.first = t.at if row.first is None else row.first
            row.last = t.at
        elif t.new != "firing" and row.open_since is not None:
            _close(row, t.at)

    observers = Observers(how.detectors, service, clock, no_data=history.no_data if history.silences else None,
                          calendar=how.calendar, on_transition=seen)
    windows = 0
    for at, step in history.steps:
        # several windows closed by one step (a burst of events, the end of a gap) are judged each at its own end,
        # as a worker reading in real time judges them: `for` and `keep_firing_for` count event time
        for end, values in _by_end(step):
            clock_s[0] = min(at, end / 1000)
            verdicts = {(v.kpi, v.series, v.window_start_ms): verdict for v, verdict in observers.detect(0, values)}
            await observers.alert(values, verdicts)
            windows += len(values)
    last = history.steps[-1][0] if history.steps else None
    for row in rows.values():
        if row.open_since is not None and last is not None:
            _close(row, last, still=True)
    fired = sorted((r for r in rows.values() if r.fired), key=lambda r: (r.kpi, r.rule, sorted(r.series.items())))
    return Report(how.name, fired, windows, sum(observers.anomalies.values()), last)


def _by_end(values: list[KpiValue]) -> list[tuple[int, list[KpiValue]]]:
    """``values`` grouped by window end, oldest first (revisions of older windows with their window)."""
    groups: dict[int, list[KpiValue]] = {}
    for v in values:
        groups.setdefault(v.window_end_ms, []).append(v)
    return sorted(groups.items())


def _close(row: Row, at: float, *, still: bool = False) -> None:
    assert row.open_since is not None
    minutes = max(0.0, at - row.open_since) / 60
    row.spans.append((row.open_since, at))
    row.alert_minutes += minutes
    row.longest_minutes = max(row.longest_minutes, minutes)
    if not still:
        row.open_since = None



# ---- history from Kafka --------------------------------------------------------------------------------------------
async def read_topic(bootstrap: str, topic: str, *, since_ms: int | None = None, lead_ms: int = 3_600_000,
                     progress: Callable[[int], None] | None = None, quiet_polls: int = 3,
                     poll_ms: int = 250) -> Partitioned:
    """Every message value of ``topic``, per partition in offset order, from the offset
    of ``since_ms − lead_ms`` by broker timestamp (the lead takes the late events of the first windows), or from the
    beginning, to the true end (see :func:`streams.recovery.read_changelog_to_end`: the embedded broker reports end
    offsets short, so the end is where fetching stops returning records)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.errors import KafkaError

    from streams.admission import behind_reported_end

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None,
                                auto_offset_reset="earliest", fetch_max_wait_ms=100, request_timeout_ms=20_000)
    try:
        await consumer.start()
    except KafkaError as exc:
        raise ConnectionError(f"cannot reach Kafka at {bootstrap}: {exc}") from None
    out: dict[int, list[bytes]] = {}
    total = 0
    try:
        await consumer.topics()                   # fetches the cluster's metadata
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            raise LookupError(f"no topic {topic!r} on {bootstrap}")
        parts = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        if since_ms is not None:
            found = await consumer.offsets_for_times({tp: max(0, since_ms - lead_ms) for tp in parts})
            for tp, at in found.items():
                if at is not None:
                    consumer.seek(tp, at.offset)
        ends = await consumer.end_offsets(parts)
        quiet = 0
        while quiet < quiet_polls:
            batch = await consumer.getmany(*parts, timeout_ms=poll_ms, max_records=10_000)
            for tp, msgs in batch.items():
                out.setdefault(tp.partition, []).extend(m.value for m in msgs if m.value is not None)
                total += len(msgs)
            if batch:
                quiet = 0
                if progress is not None:
                    progress(total)
                continue
            quiet = 0 if await behind_reported_end(consumer, parts, ends) else quiet + 1
    finally:
        await consumer.stop()
    return Partitioned([out[p] for p in sorted(out)])


# ---- dry runs of a threshold change ---------------------------------------------------------------------------------
def rule_figures(report: Report, kpi: str, rule: str) -> dict[str, Any]:
    """What ``kpi``/``rule`` did in ``report``: alerts, alert-minutes, series, and the rows."""
    rows = [r for r in report.rows if r.kpi == kpi and r.rule == rule]
    return {"fired": sum(r.fired for r in rows), "alert_minutes": round(sum(r.alert_minutes for r in rows), 3),
            "series": len(rows), "rows": [r.to_json() for r in rows]}


def _under(base: Judge, name: str, overrides: Mapping[tuple[str, str], Any], *, strict: bool) -> Judge:
    """``base`` with the threshold ``overrides`` applied (``strict``: an override the rules refuse is a ValueError)."""
    from alerting.admin import apply_overrides

    config, _, problems = apply_overrides(base.alerting, overrides)
    if problems and strict:
        raise ValueError("; ".join(problems))
    return replace(base, name=name, alerting=config)


async def _compare(history: History, now: Judge, proposed: Judge, kpi: str, rule: str) -> dict[str, Any]:
    """``kpi``/``rule``'s figures (:func:`rule_figures`) over ``history`` under the two judges, by their names."""
    out: dict[str, Any] = {"kpi": kpi, "rule": rule, "windows": history.values}
    for how in (now, proposed):
        out[how.name] = rule_figures(await judge(history, how), kpi, rule)
    return out


async def dry_run(history: History, base: Judge, kpi: str, rule: str, current: Mapping[tuple[str, str], Any],
                  proposed: Mapping[tuple[str, str], Any]) -> dict[str, Any]:
    """The backtest of one rule change over ``history``: ``base`` (the catalog's judge) under the overrides in effect
    (``current``) and under them with the change (``proposed``), as figures of that rule
    (:func:`rule_figures`), plus the span judged. Raises ValueError for an override the rules refuse."""
    out = await _compare(history, _under(base, "current", current, strict=False),
                         _under(base, "proposed", proposed, strict=True), kpi, rule)
    return out | {"from": None if history.first_ms is None else history.first_ms / 1000,
                  "to": None if history.last_ms is None else history.last_ms / 1000}


async def values_history_of(bootstrap: str, topic: str, kpi: str | None = None, *, since_s: float | None = None,
                            until_s: float | None = None, progress: Callable[[int], None] | None = None) -> History:
    """The :class:`History` of the ``kpi.values`` records on ``topic`` (of ``kpi`` only, if given) with windows in
    ``[since_s, until_s)``; a record that is not one is counted as bad by :func:`values_history`."""
    since_ms = None if since_s is None else round(since_s * 1000)
    parts = await read_topic(bootstrap, topic, since_ms=since_ms, progress=progress)
    records = []
    for raw in (v for part in parts.parts for v in part):
        try:
            rec = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue
        if isinstance(rec, dict) and (kpi is None or rec.get("kpi") == kpi) and _in_span(rec, since_s, until_s):
            records.append(rec)
    return values_history(records)


async def proposal_backtest(bootstrap: str, topic: str, base: Judge, kpi: str, rule: str, change: Mapping[str, Any],
                            current: Mapping[tuple[str, str], Any], *, since_s: float,
                            until_s: float) -> dict[str, Any]:
    """A tuning proposal (:class:`alerting.tuning.Proposal`'s ``change``: a detector ``sensitivity``, else
    threshold fields) backtested over the KPI's ``kpi.values`` of ``[since_s, until_s)``: the rule's figures under the
    overrides in effect and with the change (:func:`alerting.admin.backtest_summary`'s shape)."""
    from alerting.admin import backtest_summary

    history = await values_history_of(bootstrap, topic, kpi, since_s=since_s, until_s=until_s)
    now = _under(base, "current", current, strict=False)
    if "sensitivity" in change:
        proposed = now.with_detectors("proposed", {kpi: {"sensitivity": str(change["sensitivity"])}})
    else:
        fields = {**dict(current.get((kpi, rule), {})), **dict(change)}
        proposed = _under(base, "proposed", {**current, (kpi, rule): fields}, strict=True)
    out = await _compare(history, now, proposed, kpi, rule)
    return backtest_summary(out | {"days": round((until_s - since_s) / 86400, 3), "from": since_s, "to": until_s})


async def values_dry_run(bootstrap: str, topic: str, base: Judge, kpi: str, rule: str,
                         current: Mapping[tuple[str, str], Any], proposed: Mapping[tuple[str, str], Any], *,
                         seconds: float, now: float) -> dict[str, Any]:
    """:func:`dry_run` over the last ``seconds`` of the worker's ``kpi.values`` (read from ``topic``), the KPI's own
    values only (a threshold change judges nothing else)."""
    history = await values_history_of(bootstrap, topic, kpi, since_s=now - seconds)
    out = await dry_run(history, base, kpi, rule, current, proposed)
    return out | {"days": round(seconds / 86400, 3)}


def _in_span(rec: Mapping[str, Any], since_s: float | None, until_s: float | None) -> bool:
    """Whether a ``kpi.values`` record's window lies in ``[since_s, until_s)``; one without a readable window is
    kept (:func:`values_history` counts it as bad)."""
    try:
        start, end = float(rec["window_start"]), float(rec["window_end"])
    except (KeyError, TypeError, ValueError):
        return True
    return (since_s is None or start >= since_s) and (until_s is None or end <= until_s)


# ---- precision and recall from recorded feedback -------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Label:
    """A person's verdict on one alert incident (:mod:`alerting.feedback`): the window it was raised on."""

    kpi: str
    rule: str
    series: str                   # the series labels as sorted JSON (Report.by_key's form)
    raised_end: float             # s
    verdict: str                  # true_alarm | false_alarm | expected

    @classmethod
    def of(cls, record: Mapping[str, Any]) -> Label | None:
        """From a feedback record (None for one without a raised window)."""
        raised = record.get("raised") or {}
        end = raised.get("end") if isinstance(raised, Mapping) else None
        if not isinstance(end, int | float) or record.get("verdict") not in ("true_alarm", "false_alarm", "expected"):
            return None
        series = orjson.dumps(dict(record.get("series") or {}), option=orjson.OPT_SORT_KEYS).decode()
        return cls(str(record.get("kpi")), str(record.get("rule")), series, float(end), str(record["verdict"]))


def score_labels(report: Report, labels: Iterable[Label], *, first: float | None, last: float | None,
                 slack_s: float = 300.0) -> dict[tuple[str, str], dict[str, Any]]:
    """Per rule with feedback in the history's span: how many true and false alarms people marked, how many of each
    the judge fired on (an alert of the same series firing within ``slack_s`` of the marked window's end, or open
    across it), precision (true among the marked ones it fired on) and recall (true ones it fired on). ``expected``
    verdicts are counted apart (neither right nor wrong)."""
    rows = report.by_key()
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for label in labels:
        if (first is not None and label.raised_end < first) or (last is not None and label.raised_end > last):
            continue
        fig = out.setdefault((label.kpi, label.rule), {"marked_true": 0, "marked_false": 0, "marked_expected": 0,
                                                       "fired_true": 0, "fired_false": 0, "fired_expected": 0})
        kind = {"true_alarm": "true", "false_alarm": "false", "expected": "expected"}[label.verdict]
        fig[f"marked_{kind}"] += 1
        row = rows.get((label.kpi, label.rule, label.series))
        if row is not None and any(start - slack_s <= label.raised_end <= end + slack_s for start, end in row.spans):
            fig[f"fired_{kind}"] += 1
    for fig in out.values():
        judged = fig["fired_true"] + fig["fired_false"]
        fig["precision"] = round(fig["fired_true"] / judged, 4) if judged else None
        fig["recall"] = round(fig["fired_true"] / fig["marked_true"], 4) if fig["marked_true"] else None
    return out
