"""Catalog + settings → a runnable worker (the only place that knows every layer)."""

from __future__ import annotations

import logging
import time
from typing import Any

from alerting.config import AlertingConfig, build_alerting_config
from alerting.config import KpiMeta as AlertKpiMeta
from alerting.memory_store import MemoryStore
from alerting.outbox import RetryPolicy
from alerting.redis_store import RedisStore
from alerting.service import AlertService
from catalog import Catalog, defaults
from kpimon.settings import Settings, parse_listen
from streams.app import Worker, WorkerConfig
from streams.exporter import KpiMeta
from streams.observers import DetectorSpecLite, EventClock, Observers
from streams.plan import compile_plan
from streams.topics import TopicLayout, Topics

__all__ = ["alerting_config", "build_worker", "kpi_meta", "run_worker"]

log = logging.getLogger("kpimon")


def kpi_meta(catalog: Catalog) -> dict[str, KpiMeta]:
    """What the exporter needs to know about each KPI."""
    out = {}
    for spec in catalog.kpis:
        help_text = f"{spec.title_in(catalog.defaults.language)} ({spec.unit or 'value'}) per {catalog.window_of(spec).size:g}s window"
        out[spec.name] = KpiMeta(spec.name, tuple(spec.dimensions), help_text,
                                 spec.target.value if spec.target else None, spec.target.per if spec.target else None,
                                 spec.detector.enabled)
    return out


def dashboard_template(catalog: Catalog, kpi: str) -> str:
    """Link to the KPI's value panel; ``{dim}`` placeholders are filled with the alert's series labels."""
    from grafana.dashboards import PANEL
    from grafana.links import dashboard_url

    spec = catalog.kpi(kpi)
    url = f"{dashboard_url(catalog.grafana.url, catalog, kpi)}?viewPanel={PANEL['value']}"
    return url + "".join(f"&var-{dim}={{{dim}}}" for dim in spec.dimensions)


def alerting_config(catalog: Catalog) -> AlertingConfig:
    """The catalog's alerts, routes and channels, validated (raises AlertingConfigError)."""
    metas = {k.name: AlertKpiMeta(name=k.name, title=k.title or {"en": k.name}, unit=k.unit, owner=k.owner,
                                  dashboard_url=dashboard_template(catalog, k.name)) for k in catalog.kpis}
    return build_alerting_config({k.name: k.alerts for k in catalog.kpis}, catalog.routes, catalog.channels, metas,
                                 kpi_locs={k.name: ("kpis", i) for i, k in enumerate(catalog.kpis)})


def build_worker(catalog: Catalog, settings: Settings, layout: TopicLayout | None = None, **overrides: Any) -> Worker:
    """The worker for ``catalog``; ``layout`` (from ``streams.topics.prepare_topics``) gives the partition counts
    of the topics that exist, which win over the catalog's and ``settings.partitions``."""
    plan = compile_plan(catalog)
    internal = settings.partitions
    if layout is not None:
        plan, internal = plan.with_partitions(layout.source_partitions), layout.internal_partitions
    host, port = parse_listen(settings.listen)
    cfg = WorkerConfig(broker=settings.broker, app_id=settings.app_id, metrics_host=host,
                       metrics_port=port, speedup=settings.speedup,
                       topics=Topics(internal_partitions=internal).with_prefix(settings.topic_prefix),
                       **overrides)
    specs = {k.name: DetectorSpecLite(k.detector.kind, k.detector.sensitivity, k.detector.params)
             for k in catalog.kpis if k.detector.enabled}
    store = RedisStore.from_url(settings.redis_url, prefix=settings.redis_prefix or defaults.redis_prefix(settings.app_id)) if settings.redis_url else MemoryStore()
    if not settings.redis_url:
        log.warning("no --redis-url: alert state is kept in memory and lost on restart")
    annotate = None
    if settings.grafana_url:
        from kpimon.annotator import Annotator

        annotate = Annotator(catalog, settings.grafana_url).submit
    clock = EventClock(settings.speedup)
    retry = RetryPolicy(base_s=settings.delivery_backoff_base, cap_s=settings.delivery_backoff_cap,
                        max_age_s=settings.delivery_max_age)
    # alert lifecycle on event time; delivery (backoff, leases, ages) on the wall clock, whatever the speedup
    service = AlertService(alerting_config(catalog), store, clock=clock.now, wall_clock=time.time, retry=retry)
    token = settings.api_token.get_secret_value() if settings.api_token else None
    return Worker(plan, kpi_meta(catalog), cfg, observers=Observers(specs, service, clock, on_event=annotate),
                  api_token=token)


def run_worker(worker: Worker, loglevel: str = "warning") -> None:
    """Run until SIGINT/SIGTERM (Faust's worker handles signals and shuts down cleanly)."""
    from faust.worker import Worker as FaustWorker

    fw = FaustWorker(worker.app, loglevel=loglevel, quiet=True, redirect_stdouts=False)
    # Faust sets the root logger to its level at start; make sure DEBUG records are not built (FACTS: ~20 % CPU).
    logging.getLogger().setLevel(getattr(logging, loglevel.upper(), logging.WARNING))
    fw.execute_from_commandline()
