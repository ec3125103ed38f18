"""Catalog + settings → a runnable worker (the only place that knows every layer)."""

from __future__ import annotations

import hashlib
import logging
import time
from typing import Any, Literal

from alerting.actions import ActionLinks
from alerting.config import AlertingConfig, build_alerting_config
from alerting.config import KpiMeta as AlertKpiMeta
from alerting.memory_store import MemoryStore
from alerting.notifiers.fmt import CURRENCIES
from alerting.outbox import RetryPolicy
from alerting.redis_store import RedisStore
from alerting.service import AlertService
from kpimon.catalog import Catalog, KpiSpec
from kpimon.settings import Settings, parse_listen
from streams.app import Worker, WorkerConfig
from streams.exporter import KpiMeta
from streams.observers import DetectorSpecLite, EventClock, Observers
from streams.plan import compile_plan
from streams.topics import TopicLayout, Topics

ValueKind = Literal["count", "money", "ratio", "value"]

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


def dashboard_template(catalog: Catalog, kpi: str, base_url: str | None = None) -> str | None:
    """Link to the KPI's value panel; ``{dim}`` placeholders are filled with the alert's series labels.

    ``None`` (no link) unless a Grafana base URL is configured: ``base_url`` (``KPIMON_GRAFANA_URL``) or the
    catalog's ``grafana.url`` when the catalog sets it; a made-up ``localhost`` link helps nobody."""
    from grafana.dashboards import PANEL
    from grafana.links import dashboard_url

    base = base_url or (catalog.grafana.url if "url" in catalog.grafana.model_fields_set else None)
    if not base:
        return None
    spec = catalog.kpi(kpi)
    url = f"{dashboard_url(base, catalog, kpi)}?viewPanel={PANEL['value']}"
    return url + "".join(f"&var-{dim}={{{dim}}}" for dim in spec.dimensions)


def value_kind(catalog: Catalog, spec: KpiSpec) -> tuple[ValueKind, float | None, float | None]:
    """How a KPI's values are written in messages and the range its band is clipped to.

    Counts and distinct counts are integers >= 0; a ratio with scale 1 a percentage in [0, 1]; money (a
    currency unit) >= 0 for sums, averages and percentiles of amounts; anything else unclipped.
    """
    measure = spec.parsed_measure
    if spec.ratio is not None:
        return ("ratio", 0.0, 1.0) if spec.ratio.scale == 1 and spec.unit in ("", "ratio") else ("value", 0.0, None)
    if measure is not None and measure.kind in ("count", "distinct"):
        return "count", 0.0, None
    if spec.unit.upper() in CURRENCIES:
        return "money", (0.0 if measure is not None and measure.kind != "last" else None), None
    return "value", None, None


def alerting_config(catalog: Catalog, settings: Settings | None = None) -> AlertingConfig:
    """The catalog's alerts, routes and channels, validated (raises AlertingConfigError)."""
    grafana = settings.grafana_url if settings else None
    metas = {}
    for k in catalog.kpis:
        kind, lo, hi = value_kind(catalog, k)
        metas[k.name] = AlertKpiMeta(name=k.name, title=k.title or {"en": k.name}, unit=k.unit, owner=k.owner,
                                     dashboard_url=dashboard_template(catalog, k.name, grafana), kind=kind,
                                     min_value=lo, max_value=hi)
    return build_alerting_config({k.name: k.alerts for k in catalog.kpis}, catalog.routes, catalog.channels, metas,
                                 kpi_locs={k.name: ("kpis", i) for i, k in enumerate(catalog.kpis)},
                                 timezone=catalog.defaults.timezone, actions=action_links(settings))


def action_links(settings: Settings | None) -> ActionLinks | None:
    """Signed ack / silence / false-alarm links when ``KPIMON_PUBLIC_URL`` says where people reach the worker;
    signed with ``KPIMON_ACTION_SECRET``, else a key derived from the API token(s) all workers share."""
    if settings is None or not settings.public_url:
        return None
    secret = settings.action_secret.get_secret_value() if settings.action_secret else ""
    if not secret and settings.api_token:
        secret = hashlib.sha256(b"kpimon-action-links\0" + settings.api_token.get_secret_value().encode()).hexdigest()
    if not secret:
        log.warning("KPIMON_PUBLIC_URL is set but there is neither KPIMON_ACTION_SECRET nor an API token: "
                    "messages carry no ack / silence / false-alarm links")
        return None
    return ActionLinks(settings.public_url, secret)


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
    store = RedisStore.from_url(settings.redis_url, prefix=settings.redis_prefix or f"{settings.app_id}:") if settings.redis_url else MemoryStore()
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
    service = AlertService(alerting_config(catalog, settings), store, clock=clock.now, wall_clock=time.time, retry=retry)
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
