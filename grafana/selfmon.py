"""Prometheus rules for kpimon itself, and their ``promtool test rules`` cases.

kpimon's own alerts cannot tell that kpimon is dead, so these run in Prometheus: a worker down (``up == 0``) or
gone (``absent(up{job="kpimon"})``), a silent source (data age from ``kpimon_source_last_event_timestamp_seconds``
over its ``kpimon_source_max_silence_seconds``), processing behind (watermark age; the embedded broker
under-reports end offsets, so offset lag would be wrong), a dead-letter share, notifications failing or dropped,
an outbox backlog, and the alert store down. Label ``team: kpimon`` routes them to whoever runs kpimon.

Each rule has one hand-written case: a synthetic series that makes it fire after its ``for`` and resolve.

>>> [r["alert"] for r in self_rules()["rules"]][:2]
['KpimonWorkerDown', 'KpimonWorkersAbsent']
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

__all__ = ["JOB", "SELF_RULES", "self_rule_tests", "self_rules"]

JOB = "kpimon"          # the scrape job of the workers (deploy/prometheus/prometheus.yml)
_W = {"instance": "worker-1", "job": JOB}


@dataclass(frozen=True, slots=True)
class SelfRule:
    """One rule and its test: ``inputs`` (series -> promtool values, 1m apart), when it must be quiet and when
    firing (minutes), and the labels of the firing alert besides ``severity``/``team``."""

    alert: str
    expr: str
    for_: str
    severity: str
    summary: str
    inputs: dict[str, str]
    quiet_at: tuple[int, ...]
    firing_at: int
    fired_labels: dict[str, str] = field(default_factory=dict)


SELF_RULES: tuple[SelfRule, ...] = (
    SelfRule("KpimonWorkerDown", f'up{{job="{JOB}"}} == 0', "2m", "critical",
             "kpimon worker {{ $labels.instance }} is down (scrape failing)",
             {f'up{{instance="worker-1",job="{JOB}"}}': "1 1 0 0 0 0 0 1 1 1"}, (3, 8), 5, _W),
    SelfRule("KpimonWorkersAbsent", f'absent(up{{job="{JOB}"}})', "5m", "critical",
             "no kpimon worker is scraped at all",
             {f'up{{instance="worker-1",job="{JOB}"}}': "1 1 1 stale _ _ _ _ _ _ _ _ 1 1 1"}, (6, 13), 9,
             {"job": JOB}),
    SelfRule("KpimonSourceSilent",
             "(time() - max by (source) (kpimon_source_last_event_timestamp_seconds))"
             " > on (source) (max by (source) (kpimon_source_max_silence_seconds) > 0)", "1m", "critical",
             "source {{ $labels.source }} sent no event for longer than its max_silence",
             {'kpimon_source_last_event_timestamp_seconds{instance="worker-1",job="kpimon",source="orders"}':
              "0+60x4 240x7 780+60x3",
              'kpimon_source_max_silence_seconds{instance="worker-1",job="kpimon",source="orders"}': "300x16"},
             (9, 14), 12, {"source": "orders"}),
    SelfRule("KpimonProcessingBehind",
             "time() - max by (source) (kpimon_watermark_timestamp_seconds) > 600", "5m", "warning",
             "kpimon is more than 10 minutes behind on {{ $labels.source }} (watermark age)",
             {'kpimon_watermark_timestamp_seconds{instance="worker-1",job="kpimon",source="orders"}':
              "0+60x3 180x16 1260+60x3"}, (16, 23), 20, {"source": "orders"}),
    SelfRule("KpimonDeadLetters",
             "sum by (source) (rate(kpimon_dead_letters_total[5m]))"
             " / sum by (source) (rate(kpimon_events_total[5m])) > 0.01", "10m", "warning",
             "more than 1% of the events of {{ $labels.source }} go to the dead-letter topic",
             {'kpimon_dead_letters_total{instance="worker-1",job="kpimon",reason="bad_time",source="orders"}':
              "0x10 120+120x12 1560x20",
              'kpimon_events_total{instance="worker-1",job="kpimon",source="orders"}': "0+600x44"},
             (19, 40), 24, {"source": "orders"}),
    SelfRule("KpimonNotificationsFailing",
             'sum by (channel) (rate(kpimon_notifications_total{outcome="retry"}[10m])) > 0 unless on (channel) '
             'sum by (channel) (rate(kpimon_notifications_total{outcome="delivered"}[10m])) > 0', "10m", "critical",
             "notifications to {{ $labels.channel }} keep failing (retries, nothing delivered)",
             {'kpimon_notifications_total{channel="ops_email",instance="worker-1",job="kpimon",outcome="retry"}':
              "0+5x40",
              'kpimon_notifications_total{channel="ops_email",instance="worker-1",job="kpimon",outcome="delivered"}':
              "10x25 11+10x15"}, (5, 38), 15, {"channel": "ops_email"}),
    SelfRule("KpimonNotificationsDropped",
             "sum by (channel) (increase(kpimon_notifications_dropped_total[15m])) > 0", "0m", "critical",
             "kpimon gave up notifications to {{ $labels.channel }} (see the delivery log)",
             {'kpimon_notifications_dropped_total{channel="ops_email",instance="worker-1",job="kpimon",'
              'reason="expired"}': "0x5 1x30"}, (3, 30), 8, {"channel": "ops_email"}),
    SelfRule("KpimonOutboxBacklog", "max by (channel) (kpimon_outbox_oldest_age_seconds) > 900", "5m", "warning",
             "a notification to {{ $labels.channel }} waits in the outbox for more than 15 minutes",
             {'kpimon_outbox_oldest_age_seconds{channel="ops_email",instance="worker-1",job="kpimon"}':
              "0x3 0+60x25 0x10"}, (22, 35), 27, {"channel": "ops_email"}),
    SelfRule("KpimonAlertStoreDown", "kpimon_store_up == 0", "2m", "critical",
             "kpimon worker {{ $labels.instance }} cannot reach its alert store (Redis)",
             {f'kpimon_store_up{{instance="worker-1",job="{JOB}"}}': "1 1 0 0 0 0 0 1 1"}, (3, 8), 5, _W),
)


def _labels(rule: SelfRule) -> dict[str, str]:
    return {"severity": rule.severity, "team": "kpimon"}


def self_rules() -> dict[str, Any]:
    """The ``kpimon-self`` rule group."""
    rules = []
    for r in SELF_RULES:
        rule: dict[str, Any] = {"alert": r.alert, "expr": r.expr}
        if r.for_ != "0m":
            rule["for"] = r.for_
        rule["labels"] = _labels(r)
        rule["annotations"] = {"summary": r.summary}
        rules.append(rule)
    return {"name": "kpimon-self", "rules": rules}


def _expand(template: str, labels: dict[str, str]) -> str:
    return re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels.get(m.group(1), ""), template)


def self_rule_tests() -> list[dict[str, Any]]:
    """One promtool case per rule: quiet before its ``for`` has passed, firing, quiet again after recovery."""
    out = []
    for r in SELF_RULES:
        firing = {"exp_labels": {**r.fired_labels, **_labels(r)},
                  "exp_annotations": {"summary": _expand(r.summary, r.fired_labels)}}
        checks: list[tuple[int, list[dict[str, Any]]]] = [(t, []) for t in r.quiet_at] + [(r.firing_at, [firing])]
        out.append({
            "interval": "1m",
            "input_series": [{"series": s, "values": v} for s, v in r.inputs.items()],
            "alert_rule_test": [{"eval_time": f"{t}m", "alertname": r.alert, "exp_alerts": exp}
                                for t, exp in sorted(checks, key=lambda c: c[0])],
        })
    return out
