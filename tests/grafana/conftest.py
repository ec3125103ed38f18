"""Fixtures for the boards-and-rules tests.

``kpi_metrics_endpoint`` is a STAND-IN for the real worker: a local prometheus_client HTTP server exporting
exactly the metric families the worker promises (see grafana/promql.py and the README's metric list) for every
KPI of examples/shop.yaml, with realistic label sets. To test the boards against the real thing, make this
fixture return ``MetricsEndpoint(target=<host:port of worker_metrics>)`` from tests/fixtures/worker.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from catalog import Catalog, KpiSpec, load_catalog, parse_catalog
from tests.fixtures.prometheus import PrometheusServer
from tests.fixtures.shop import ShopRun
from tests.fixtures.waiting import eventually

__all__ = ["MetricsEndpoint", "alerts_catalog", "kpi_metrics_endpoint", "shop",
           "shop_prometheus"]

REPO = Path(__file__).resolve().parents[2]
SHOP = REPO / "examples" / "shop.yaml"
DIMENSION_VALUES = {"region": ["east", "west", "north", "__other__"], "channel": ["app", "web", "mini_program"]}
SOURCES = ["orders", "payments", "visits", "refunds", "samples"]

#: Threshold alerts added to shop.yaml for the rule tests (above, below, outside, both, keep_firing_for, labels).
EXTRA_ALERTS: dict[str, list[dict[str, Any]]] = {
    "gmv": [{"type": "threshold", "name": "too_low", "below": 1000, "for": "5m", "severity": "critical"}],
    "conversion_rate": [{"type": "threshold", "outside": [0.01, 0.2], "for": "10m", "keep_firing_for": "5m",
                         "labels": {"page": "yes"}}],
    "order_amount_p95": [{"type": "threshold", "above": 5000}],
    "refund_rate": [{"type": "threshold", "above": 0.1, "below": 0.001, "for": "90s"},
                    {"type": "anomaly", "min_score": 0.9}],
}


@dataclass(frozen=True)
class MetricsEndpoint:
    """Where Prometheus should scrape KPI metrics (``host:port``, path /metrics)."""

    target: str


@pytest.fixture(scope="session")
def shop() -> Catalog:
    return load_catalog(SHOP)


@pytest.fixture(scope="session")
def alerts_catalog() -> Catalog:
    """examples/shop.yaml plus :data:`EXTRA_ALERTS` (the example defines no threshold alerts of its own)."""
    doc = yaml.safe_load(SHOP.read_text(encoding="utf-8"))
    for kpi in doc["kpis"]:
        kpi["alerts"] = [*kpi.get("alerts", []), *EXTRA_ALERTS.get(kpi["name"], [])]
    return parse_catalog(yaml.safe_dump(doc, allow_unicode=True), "shop+alerts.yaml")


def _label_sets(kpi: KpiSpec) -> list[dict[str, str]]:
    """The total (every dimension empty) and one series per value of each dimension."""
    sets = [dict.fromkeys(kpi.dimensions, "")]
    for dim in kpi.dimensions:
        sets += [{**dict.fromkeys(kpi.dimensions, ""), dim: v} for v in DIMENSION_VALUES[dim]]
    return sets


def _export_kpi(registry: CollectorRegistry, kpi: KpiSpec, base: float, now: float) -> None:
    def gauge(suffix: str, doc: str, labels: list[str]) -> Gauge:
        return Gauge(f"kpi_{kpi.name}{suffix}", doc, labels, registry=registry)

    families = [("", "value of the last closed window"), ("_window_end_timestamp_seconds", "window end")]
    if kpi.detector.enabled:
        families += [("_expected", "expected"), ("_lower", "band lower"), ("_upper", "band upper"),
                     ("_anomaly_score", "anomaly score 0..1")]
    metrics = {suffix: gauge(suffix, doc, kpi.dimensions) for suffix, doc in families}
    for i, labels in enumerate(_label_sets(kpi)):
        value = base / (1 + i)
        values = {"": value, "_window_end_timestamp_seconds": now - 60, "_expected": value * 1.02,
                  "_lower": value * 0.8, "_upper": value * 1.2, "_anomaly_score": 0.1 * (i % 10)}
        for suffix, metric in metrics.items():
            (metric.labels(**labels) if kpi.dimensions else metric).set(values[suffix])
    if kpi.target is not None:
        gauge("_target", "target per period", []).set(kpi.target.value)
        gauge("_attainment_ratio", "attainment of the current period", []).set(0.42)


def _export_operational(registry: CollectorRegistry, catalog: Catalog) -> None:
    events = Counter("kpimon_events_total", "events read", ["source"], registry=registry)
    dead = Counter("kpimon_dead_letters_total", "dead letters", ["source", "reason"], registry=registry)
    watermark = Gauge("kpimon_watermark_timestamp_seconds", "watermark", ["source"], registry=registry)
    for source in SOURCES:
        events.labels(source).inc(1000)
        dead.labels(source, "too_late").inc(3)
        watermark.labels(source).set(1.7e9)
    per_kpi = {name: Counter(name, doc, ["kpi"], registry=registry) for name, doc in [
        ("kpimon_window_closes_total", "closes"), ("kpimon_window_revisions_total", "revisions"),
        ("kpimon_series_overflow_total", "overflow"), ("kpimon_anomalies_total", "anomalies")]}
    series = Gauge("kpimon_series", "series per KPI", ["kpi"], registry=registry)
    alerts = Gauge("kpimon_alerts", "alerts by state", ["kpi", "severity", "state"], registry=registry)
    for kpi in catalog.kpis:
        for counter in per_kpi.values():
            counter.labels(kpi.name).inc(5)
        series.labels(kpi.name).set(len(_label_sets(kpi)))
    alerts.labels("gmv", "critical", "firing").set(1)
    alerts.labels("refund_rate", "warning", "pending").set(2)
    Counter("kpimon_notifications_total", "notifications", ["channel", "outcome"],
            registry=registry).labels("email", "sent").inc(4)


@pytest.fixture(scope="session")
def kpi_metrics_endpoint(shop_run: ShopRun) -> MetricsEndpoint:
    """The REAL worker's /metrics: examples/shop.yaml fed by the simulator with a payment outage and
    malformed messages (tests/fixtures/shop.py). Waits until every family the boards query has series:
    detector bands (after warm-up), a firing alert, a dead letter, a delivered notification."""
    needed = ("kpi_paid_orders_expected{", "kpi_paid_orders_anomaly_score{", 'state="firing"',
              "kpimon_dead_letters_total{", "kpimon_notifications_total{", "kpi_gmv_attainment_ratio ")
    missing: list[str] = []

    def complete() -> bool:
        text = shop_run.worker.metrics()
        missing[:] = [n for n in needed if n not in text]
        return not missing

    eventually(complete, 150, lambda: f"worker metrics with {missing}; worker log:\n{shop_run.worker.log_tail()}",
               poll_s=1)
    return MetricsEndpoint(f"127.0.0.1:{shop_run.worker.metrics_port}")


@pytest.fixture(scope="session")
def standin_metrics_endpoint(shop: Catalog) -> Iterator[MetricsEndpoint]:
    """A STAND-IN exporter with synthetic values for every family (used where exact values matter)."""
    import time

    registry = CollectorRegistry()
    for i, kpi in enumerate(shop.kpis):
        _export_kpi(registry, kpi, 1000.0 * (i + 1), time.time())
    _export_operational(registry, shop)
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    try:
        yield MetricsEndpoint(f"127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture(scope="session")
def shop_prometheus(prometheus_factory: Any, kpi_metrics_endpoint: MetricsEndpoint) -> PrometheusServer:
    """A real Prometheus that has scraped the KPI metrics at least twice (so rate() has data)."""
    prom: PrometheusServer = prometheus_factory([kpi_metrics_endpoint.target])
    prom.wait_for("count(rate(kpimon_events_total[5m]))")
    return prom
