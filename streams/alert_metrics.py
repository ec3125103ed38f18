"""The alerting families of ``/metrics``, read from the observers and the alert service at scrape time.

Counters are per process (they start at 0 when a worker starts; Prometheus' ``rate``/``increase`` handle the
reset); the delivery log in Redis keeps every attempt and drop across restarts. Gauges are as of the last
successful alert tick.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from streams.observers import Observers

__all__ = ["alert_families"]


def alert_families(observers: Observers) -> Iterator[Metric]:
    """``kpimon_anomalies_total``, ``kpimon_alerts``, notification counters, outbox and store gauges."""
    anomalies = CounterMetricFamily("kpimon_anomalies", "Anomalous or drift verdicts per KPI", labels=["kpi"])
    for kpi, n in sorted(observers.anomalies.items()):
        anomalies.add_metric([kpi], n)
    yield anomalies
    restored = CounterMetricFamily("kpimon_detectors_restored", "Series whose detector resumed from its checkpoint "
                                   "(warm) since this process started", labels=["kpi"])
    for kpi, n in sorted(observers.restored.items()):
        restored.add_metric([kpi], n)
    yield restored
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
