"""Prometheus export: a custom Collector that reads the engine's current state at scrape time.

Nothing is created on the global registry and no labelled child is left behind: every scrape
builds the families from current state, so series of a KPI that was removed disappear.
Families (DESIGN "Prometheus naming"):

- ``kpi_<name>{by, dims}``: value of the last closed window; the total series has ``by="total"`` and no
  dimension label, each dimension series ``by="<dimension>"`` and exactly that dimension label, so
  ``sum(kpi_gmv{by="total"})`` and ``sum(kpi_gmv{by="region"})`` both give the total (``sum(kpi_gmv)`` alone would
  count it once per breakdown); ``kpi_<name>_window_end_timestamp_seconds`` and the detector companions carry the
  same labels.
- ``kpi_<name>_expected|_lower|_upper|_anomaly_score`` from the detectors (when wired).
- ``kpi_<name>_target`` and ``kpi_<name>_attainment_ratio`` for KPIs with a target.
- ``kpimon_*`` operational counters and gauges: every ``kpimon_*`` family is defined here, read from the
  worker's counters (:class:`OpsCounters`), the observers and the alert service (:func:`alert_families`).

Counters are per process (they start at 0 when a worker starts; Prometheus' ``rate``/``increase`` handle the
reset); the delivery log in Redis keeps every attempt and drop across restarts. Alert gauges are as of the last
successful alert tick.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from streams.freshness import FreshnessMonitor
from streams.heartbeat import Heartbeat
from streams.observers import Observers
from streams.records import KpiValue

__all__ = ["BY", "TOTAL", "ExportedKpi", "KpiCollector", "OpsCounters", "alert_families", "partitions_ready"]


#: The label naming the breakdown a KPI series belongs to: :data:`TOTAL` or the dimension's name.
BY = "by"
TOTAL = "total"


@dataclass(slots=True)
class OpsCounters:
    """Operational counters kept by the worker (plain dicts: cheap on the hot path)."""

    events: dict[str, int] = field(default_factory=dict)               # source -> events
    messages: dict[str, int] = field(default_factory=dict)             # source -> Kafka messages
    dead_letters: dict[tuple[str, str], int] = field(default_factory=dict)  # (source, reason)
    unmatched: dict[str, int] = field(default_factory=dict)
    closes: dict[str, int] = field(default_factory=dict)               # kpi -> window closes (stage 1)
    revisions: dict[str, int] = field(default_factory=dict)
    overflow: dict[str, int] = field(default_factory=dict)             # kpi -> windows x dims folded (stage 2)
    folded: dict[str, int] = field(default_factory=dict)               # kpi -> dimension values folded (stage 1)
    values_published: dict[str, int] = field(default_factory=dict)     # kpi -> values on kpi.values
    late_dropped: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)              # kpi -> empty windows skipped after a jump
    bad_partials: dict[str, int] = field(default_factory=dict)         # stage -> partials ignored as malformed
    saturated: dict[str, int] = field(default_factory=dict)            # kpi -> values clamped to a finite float
    replayed: dict[str, int] = field(default_factory=dict)             # source -> redelivered messages skipped
    partials_dropped: dict[str, int] = field(default_factory=dict)     # kpi -> partials for windows already dropped
    watermarks: dict[str, float] = field(default_factory=dict)         # source -> seconds

    def bump(self, table: dict[Any, int], key: Any, n: int = 1) -> None:
        table[key] = table.get(key, 0) + n


@dataclass(frozen=True, slots=True)
class ExportedKpi:
    """What the exporter (and attainment) need to know about one KPI (alerting has its own ``KpiMeta``)."""

    name: str
    dims: tuple[str, ...]
    help: str
    target: float | None = None
    target_per: str | None = None
    detector: bool = True


class KpiCollector(Collector):
    """Builds every kpi_* and kpimon_* family from the worker's state on each scrape."""

    def __init__(self, kpis: Mapping[str, ExportedKpi], latest: Callable[[], Iterable[KpiValue]], ops: OpsCounters,
                 observers: Observers | None = None,
                 attainment: Callable[[str], float | None] | None = None,
                 freshness: FreshnessMonitor | None = None, heartbeat: Heartbeat | None = None,
                 owned: Callable[[], Iterable[tuple[str, int]]] | None = None, topics: Sequence[str] = ()) -> None:
        self.kpis = kpis
        self.owned, self.topics = owned, topics     # restored partitions (kpimon_partitions_ready) of these topics
        self.freshness, self.heartbeat = freshness, heartbeat
        self.latest = latest
        self.ops = ops
        self.observers = observers
        self.verdicts = None if observers is None else (lambda: observers.verdicts)
        self.attainment = attainment

    def collect(self) -> Iterator[Metric]:
        by_kpi: dict[str, list[KpiValue]] = {name: [] for name in self.kpis}
        for val in self.latest():
            if val.kpi in by_kpi:
                by_kpi[val.kpi].append(val)
        verdicts = self.verdicts() if self.verdicts else {}
        for name, meta in self.kpis.items():
            yield from self._kpi_families(meta, sorted(by_kpi[name], key=lambda v: v.series), verdicts)
        yield from self._ops()
        if self.observers is not None:
            yield from alert_families(self.observers)
        if self.freshness is not None:
            yield from freshness_families(self.freshness)
        if self.owned is not None:
            yield partitions_ready(self.owned(), self.topics)
        if self.heartbeat is not None:
            yield _counter("kpimon_heartbeats", "Dead man's switch pings by outcome (ok|failed)", ["outcome"],
                           {(o,): self.heartbeat.outcomes[o] for o in ("ok", "failed")})

    def _kpi_families(self, meta: ExportedKpi, values: list[KpiValue], verdicts: Mapping[tuple[str, str], Any]) -> Iterator[Metric]:
        labels = [BY, *meta.dims]
        value = GaugeMetricFamily(f"kpi_{meta.name}", meta.help, labels=labels)
        ends = GaugeMetricFamily(f"kpi_{meta.name}_window_end_timestamp_seconds",
                                 f"End of the window kpi_{meta.name} belongs to", labels=labels)
        for val in values:
            lv = _label_values(labels, val.labels)
            if val.value is not None and math.isfinite(val.value):
                value.add_metric(lv, val.value)
            ends.add_metric(lv, val.window_end_s)
        yield value
        yield ends
        if meta.detector and self.verdicts is not None:
            yield from self._verdict_families(meta, values, verdicts)
        if meta.target is not None:
            yield GaugeMetricFamily(f"kpi_{meta.name}_target", f"Target of {meta.name} per {meta.target_per}",
                                    value=meta.target)
            ratio = self.attainment(meta.name) if self.attainment else None
            if ratio is not None:
                yield GaugeMetricFamily(f"kpi_{meta.name}_attainment_ratio",
                                        f"Actual {meta.name} so far this {meta.target_per} / target", value=ratio)

    def _verdict_families(self, meta: ExportedKpi, values: list[KpiValue], verdicts: Mapping[tuple[str, str], Any]) -> Iterator[Metric]:
        labels = [BY, *meta.dims]
        fams = {f: GaugeMetricFamily(f"kpi_{meta.name}_{f}", f"{f.replace('_', ' ')} of kpi_{meta.name} from its detector",
                                     labels=labels) for f in ("expected", "lower", "upper", "anomaly_score")}
        for val in values:
            verdict = verdicts.get((meta.name, val.series))
            if verdict is None:
                continue
            lv = _label_values(labels, val.labels)
            for f, attr in (("expected", "expected"), ("lower", "lower"), ("upper", "upper"), ("anomaly_score", "score")):
                x = getattr(verdict, attr)
                if x is not None and math.isfinite(x):
                    fams[f].add_metric(lv, x)
        yield from fams.values()

    def _ops(self) -> Iterator[Metric]:
        ops = self.ops
        yield _counter("kpimon_events", "Events accepted for parsing, by source", ["source"], ops.events)
        yield _counter("kpimon_messages", "Kafka messages read, by source", ["source"], ops.messages)
        yield _counter("kpimon_dead_letters", "Records sent to the dead-letter topic", ["source", "reason"], ops.dead_letters)
        yield _counter("kpimon_unmatched_events", "Events no KPI filter selected", ["source"], ops.unmatched)
        yield _counter("kpimon_window_closes", "Windows closed per KPI (per partition)", ["kpi"], ops.closes)
        yield _counter("kpimon_window_revisions", "Closed windows revised by late events", ["kpi"], ops.revisions)
        yield _counter("kpimon_series_overflow", "Windows x dimensions whose values the series cap folded into __other__", ["kpi"], ops.overflow)
        yield _counter("kpimon_series_folded", "Dimension values of accepted events stage 1 folded into __other__ "
                       "(rejected by stage 2, or past the bound of undecided values)", ["kpi"], ops.folded)
        yield _counter("kpimon_values_published", "KPI values published on kpi.values", ["kpi"], ops.values_published)
        yield _counter("kpimon_late_window_updates_dropped", "Window updates dropped as later than grace", ["kpi"],
                       ops.late_dropped)
        yield _counter("kpimon_windows_skipped", "Empty windows not closed when the watermark jumped over them", ["kpi"],
                       ops.skipped)
        yield _counter("kpimon_bad_partials", "Malformed window partials ignored by stage 2", ["stage"], ops.bad_partials)
        yield _counter("kpimon_replayed_messages", "Messages redelivered after a restart that the state already held "
                       "(skipped)", ["source"], ops.replayed)
        yield _counter("kpimon_partials_dropped", "Partials for windows stage 2 no longer keeps (ignored)", ["kpi"],
                       ops.partials_dropped)
        yield _counter("kpimon_values_saturated", "KPI values clamped to the largest finite float (a stage-2 merge "
                       "overflowed)", ["kpi"], ops.saturated)
        series = GaugeMetricFamily("kpimon_series", "Series currently exported per KPI", labels=["kpi"])
        counts: dict[str, int] = {}
        for val in self.latest():
            counts[val.kpi] = counts.get(val.kpi, 0) + 1
        for kpi in sorted(self.kpis):
            series.add_metric([kpi], counts.get(kpi, 0))
        yield series
        wm = GaugeMetricFamily("kpimon_watermark_timestamp_seconds", "Event-time watermark per source", labels=["source"])
        for src, ts in sorted(ops.watermarks.items()):
            wm.add_metric([src], ts)
        yield wm


def alert_families(observers: Observers) -> Iterator[Metric]:
    """``kpimon_anomalies_total``, ``kpimon_feedback_taught_total``, ``kpimon_alerts``, notification counters,
    outbox and store gauges."""
    anomalies = CounterMetricFamily("kpimon_anomalies", "Anomalous or drift verdicts per KPI", labels=["kpi"])
    for kpi, n in sorted(observers.anomalies.items()):
        anomalies.add_metric([kpi], n)
    yield anomalies
    restored = CounterMetricFamily("kpimon_detectors_restored", "Series whose detector resumed from its checkpoint "
                                   "(warm) since this process started", labels=["kpi"])
    for kpi, n in sorted(observers.restored.items()):
        restored.add_metric([kpi], n)
    yield restored
    taught = CounterMetricFamily("kpimon_feedback_taught", "Verdicts on alerts (true / false alarm) taught to the "
                                 "detector of their series, since this process started", labels=["kpi"])
    for kpi, n in sorted(observers.feedback_taught.items()):
        taught.add_metric([kpi], n)
    yield taught
    service = observers.alerts
    alerts = GaugeMetricFamily("kpimon_alerts", "Alerts pending or firing", labels=["kpi", "severity", "state"])
    for (kpi, sev, state), n in sorted((service.alert_gauge if service else {}).items()):
        alerts.add_metric([kpi, sev, state], n)
    yield alerts
    notes = CounterMetricFamily("kpimon_notifications", "Notification attempts by channel and outcome",
                                labels=["channel", "outcome"])
    for (channel, outcome), n in sorted((service.delivery_counts if service else {}).items()):
        notes.add_metric([channel, outcome], n)
    yield notes
    if service is None:
        return
    yield GaugeMetricFamily("kpimon_alert_backlog", "Closed windows waiting for the alert store to be evaluated",
                            value=len(observers.backlog))
    yield CounterMetricFamily("kpimon_alert_backlog_dropped",
                              "Windows never evaluated: the backlog overflowed during a store outage",
                              value=observers.backlog_dropped)
    dropped = CounterMetricFamily("kpimon_notifications_dropped",
                                  "Notifications given up (expired, permanent, superseded, no_channel, unreadable)",
                                  labels=["channel", "reason"])
    for (channel, reason), n in sorted(service.dropped_counts.items()):
        dropped.add_metric([channel, reason], n)
    yield dropped
    depth = GaugeMetricFamily("kpimon_outbox_entries", "Notifications waiting in the outbox", labels=["channel"])
    age = GaugeMetricFamily("kpimon_outbox_oldest_age_seconds",
                            "Wall-clock age of the oldest notification waiting in the outbox (0 when empty)",
                            labels=["channel"])
    for channel, (n, oldest) in sorted(service.outbox_gauge.items()):
        depth.add_metric([channel], n)
        age.add_metric([channel], oldest)
    yield depth
    yield age
    yield GaugeMetricFamily("kpimon_store_up", "1 if the alert store (Redis) answered the last operation",
                            value=1.0 if service.health.up else 0.0)
    yield CounterMetricFamily("kpimon_store_errors", "Failed alert store operations (this process)",
                              value=service.health.errors)


def freshness_families(monitor: FreshnessMonitor) -> Iterator[Metric]:
    """``kpimon_source_last_event_timestamp_seconds`` (wall time of the newest arrival), ``kpimon_source_silent``
    and ``kpimon_source_max_silence_seconds`` per source, as of the monitor's last check."""
    last = GaugeMetricFamily("kpimon_source_last_event_timestamp_seconds",
                             "Wall time the newest event of the source arrived", labels=["source"])
    silent = GaugeMetricFamily("kpimon_source_silent", "1 while the source is silent (source_silent firing)",
                               labels=["source"])
    limit = GaugeMetricFamily("kpimon_source_max_silence_seconds",
                              "Silence (event-time seconds) after which the source is silent; 0: not judged",
                              labels=["source"])
    for name, rec in sorted(monitor.records.items()):
        last.add_metric([name], rec.last_arrival)
        silent.add_metric([name], 1.0 if rec.silent_since is not None else 0.0)
        limit.add_metric([name], rec.max_silence)
    yield from (last, silent, limit)


def partitions_ready(owned: Iterable[tuple[str, int]], topics: Iterable[str]) -> GaugeMetricFamily:
    """``kpimon_partitions_ready{topic}``: partitions of each topic this worker owns with their state restored
    (pass no ``owned`` partitions while a rebalance or its restore is under way): the readiness signal after a
    start or a rebalance.

    >>> fam = partitions_ready([("t.orders", 0), ("t.orders", 2), ("kpi.partials", 1)], ["t.orders", "t.visits"])
    >>> [(s.labels["topic"], s.value) for s in fam.samples]
    [('t.orders', 2), ('t.visits', 0)]
    """
    counts: dict[str, int] = dict.fromkeys(topics, 0)
    for topic, _partition in owned:
        if topic in counts:
            counts[topic] += 1
    fam = GaugeMetricFamily("kpimon_partitions_ready", "Partitions this worker owns with their state restored "
                            "(0 during a rebalance or restore)", labels=["topic"])
    for topic, n in counts.items():
        fam.add_metric([topic], n)
    return fam


def _counter(name: str, doc: str, labels: list[str], data: Mapping[Any, int]) -> CounterMetricFamily:
    fam = CounterMetricFamily(name, doc, labels=labels)
    for key, n in sorted(data.items()):
        fam.add_metric(list(key) if isinstance(key, tuple) else [key], n)
    return fam


def _label_values(labels: list[str], present: Mapping[str, str]) -> list[str]:
    """``labels`` = ``[BY, *dims]``: ``by`` is the dimension the series breaks down by (one at most), else total."""
    dims = [d for d in labels[1:] if present.get(d)]
    return [dims[0] if dims else TOTAL, *(present.get(label, "") for label in labels[1:])]
