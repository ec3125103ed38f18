"""Catalog + settings → a runnable worker (the only place that knows every layer)."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal

from aiohttp import web

from alerting.actions import ActionLinks
from alerting.config import AlertingConfig, build_alerting_config
from alerting.config import KpiMeta as AlertKpiMeta
from alerting.digest_charts import charts
from alerting.digest_job import DigestScheduler, DigestSender, ProposalBacktest, charted_kpis
from alerting.http_api import DryRun
from alerting.memory_store import MemoryStore
from alerting.notifiers.fmt import CURRENCIES
from alerting.outbox import RetryPolicy
from alerting.redis_store import RedisStore
from alerting.service import AlertService
from alerting.tuning import Proposal
from catalog import Catalog, KpiSpec, defaults
from kpimon.settings import Settings, parse_listen
from streams.app import Worker, WorkerConfig
from streams.exporter import ExportedKpi
from streams.freshness import FreshnessMonitor, SourcePolicy
from streams.heartbeat import Heartbeat
from streams.observers import DetectorSpecLite, EventClock, Observers
from streams.plan import compile_plan
from streams.topics import TopicLayout, Topics

ValueKind = Literal["count", "money", "ratio", "value"]

__all__ = ["AlertShell", "alerting_config", "build_worker", "exported_kpis", "run_worker"]

log = logging.getLogger("kpimon")


class AlertShell:
    """The shell's side of alerting (``streams.config.AlertRuntime``): runs the alert service's scheduling when the
    worker ticks and serves its admin API (``/api/*``, bearer ``api_token``; none without a token)."""

    def __init__(self, service: AlertService, api_token: str | None = None,
                 freshness: FreshnessMonitor | None = None, digests: DigestScheduler | None = None,
                 dry_run: DryRun | None = None) -> None:
        self.service = service
        self.api_token = api_token
        self.freshness = freshness
        self.digests = digests
        self.digest_task: asyncio.Task[None] | None = None
        self.dry_run = dry_run

    async def tick(self) -> None:
        self._digest_if_due()
        if self.freshness is not None and not await _store_call(self.service, self.freshness.check()):
            return                       # the pipeline must not run on stale freshness (it would release held alerts)
        await self.service.run_tick()    # an unreachable store is counted and logged once per outage, not raised

    def _digest_if_due(self) -> None:
        # In the background: rendering charts and sending mail take seconds the alert tick must not wait for;
        # one at a time (the store's markers make a second sender harmless, but there is no need for one).
        if self.digests is None or not self.digests.due():
            return
        if self.digest_task is None or self.digest_task.done():
            self.digest_task = asyncio.create_task(self._send_digests())

    async def _send_digests(self) -> None:
        assert self.digests is not None
        try:
            await _store_call(self.service, self._digest_round(self.digests))  # an outage: counted, tried again
        except Exception:  # noqa: BLE001 - a failed digest must not end the task silently; the next round retries
            log.exception("review digest failed")

    async def _digest_round(self, digests: DigestScheduler) -> None:
        for result in await digests.run():
            if result.status == "failed":
                log.warning("review digest of %s on %s not sent: %s", result.team, result.channel, result.reason)

    def http_app(self) -> web.Application:
        if self.api_token:
            from alerting.http_api import make_api

            http = make_api(self.service.store, self.api_token, dry_run=self.dry_run)   # /api/* needs the token
        else:
            http = web.Application()
        if self.service.config.actions is not None:
            from alerting.action_api import add_action_routes

            add_action_routes(http, self.service.store, self.service.config.actions)  # ack / silence links in messages
        return http

    async def aclose(self) -> None:
        if self.digest_task is not None and not self.digest_task.done():
            self.digest_task.cancel()    # an unfinished digest keeps its lease; a later run sends it
        await self.service.aclose()


def exported_kpis(catalog: Catalog) -> dict[str, ExportedKpi]:
    """What the exporter needs to know about each KPI."""
    out = {}
    for spec in catalog.kpis:
        help_text = f"{spec.title_in(catalog.defaults.language)} ({spec.unit or 'value'}) per {catalog.window_of(spec).size:g}s window"
        out[spec.name] = ExportedKpi(spec.name, tuple(spec.dimensions), help_text,
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


def kpi_sources(catalog: Catalog) -> dict[str, frozenset[str]]:
    """KPI -> the sources it is computed from (a ratio: its numerator's and denominator's)."""
    return compile_plan(catalog).sources_of()


def freshness_policies(catalog: Catalog) -> dict[str, SourcePolicy]:
    """Per source: its ``max_silence`` and the KPIs it feeds, by owner team (the source_silent alert's routing)."""
    sources = kpi_sources(catalog)
    out = {}
    for name, src in catalog.sources.items():
        teams: dict[str, list[str]] = {}
        for spec in catalog.kpis:
            if name in sources[spec.name]:
                teams.setdefault(spec.owner, []).append(spec.name)
        if teams:
            out[name] = SourcePolicy(src.max_silence, teams)
    return out


def build_worker(catalog: Catalog, settings: Settings, layout: TopicLayout | None = None, **overrides: Any) -> Worker:
    """The worker for ``catalog``; ``layout`` (from ``streams.topics.prepare_topics``) gives the partition counts
    of the topics that exist, which win over the catalog's and ``settings.partitions``."""
    plan = compile_plan(catalog)
    internal = settings.partitions
    if layout is not None:
        plan, internal = plan.with_partitions(layout.source_partitions), layout.internal_partitions
    sources_of = plan.sources_of()       # KPI -> its sources (freshness holds its alerts)
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
    service = AlertService(alerting_config(catalog, settings), store, clock=clock.now, wall_clock=time.time,
                           retry=retry, sources_of=sources_of, charted=charted_kpis(catalog))
    token = settings.api_token.get_secret_value() if settings.api_token else None
    freshness = FreshnessMonitor(freshness_policies(catalog), service, speedup=settings.speedup,
                                 quiet_s=cfg.idle_ms / 2000,    # half the idle time: held before an idle close
                                 sources_of=sources_of)
    heartbeat = None
    if settings.heartbeat_url is not None:
        heartbeat = Heartbeat(settings.heartbeat_url.get_secret_value(), interval_s=settings.heartbeat_interval,
                              app_id=settings.app_id)
    observers = Observers(specs, service, clock, on_event=annotate, no_data=freshness.no_data,
                          calendar=catalog.business_calendar())
    senders = {name: n for name, n in service.notifiers.items() if isinstance(n, DigestSender)}
    digests = DigestScheduler(store, catalog, senders, clock=clock.now, wall_clock=time.time,
                              charts=charts(store, catalog),
                              backtest=proposal_backtest(catalog, settings.broker, cfg.topics.values))
    shell = AlertShell(service, token, freshness, digests,
                       dry_run=values_dry_run(catalog, settings.broker, cfg.topics.values))
    return Worker(plan, exported_kpis(catalog), cfg, observers=observers, alerts=shell,
                  freshness=freshness, heartbeat=heartbeat)


def _catalog_judge(catalog: Catalog) -> Callable[[], Any]:
    """The catalog's backtest judge (``streams.backtest.Judge.of``), made on first use: a worker that never backtests
    (most of them, most of the time) does not build it at start-up."""
    @functools.cache
    def judge() -> Any:
        from streams.backtest import Judge

        return Judge.of(catalog)

    return judge


def values_dry_run(catalog: Catalog, broker: str, topic: str) -> DryRun:
    """The API's dry run of a threshold change: a backtest over the worker's own ``kpi.values`` (from ``topic``)."""
    judge = _catalog_judge(catalog)

    async def run(kpi: str, rule: str, current: dict[Any, Any], proposed: dict[Any, Any],
                  seconds: float) -> dict[str, Any]:
        from streams.backtest import values_dry_run as backtest

        return await backtest(broker, topic, judge(), kpi, rule, current, proposed, seconds=seconds, now=time.time())

    return run


def proposal_backtest(catalog: Catalog, broker: str, topic: str) -> ProposalBacktest:
    """The digest's backtest of a tuning proposal over the period, from the worker's own ``kpi.values``."""
    judge = _catalog_judge(catalog)

    async def run(p: Proposal, current: Mapping[tuple[str, str], Any], since: float, until: float) -> dict[str, Any]:
        from streams.backtest import proposal_backtest as backtest

        return await backtest(broker, topic, judge(), p.kpi, p.rule, p.change, current, since_s=since, until_s=until)

    return run


def run_worker(worker: Worker, loglevel: str = "warning") -> None:
    """Run until SIGINT/SIGTERM (Faust's worker handles signals and shuts down cleanly)."""
    from faust.worker import Worker as FaustWorker

    fw = FaustWorker(worker.app, loglevel=loglevel, quiet=True, redirect_stdouts=False)
    # Faust sets the root logger to its level at start; make sure DEBUG records are not built (FACTS: ~20 % CPU).
    logging.getLogger().setLevel(getattr(logging, loglevel.upper(), logging.WARNING))
    fw.execute_from_commandline()


async def _store_call(service: AlertService, call: Awaitable[None]) -> bool:
    """Await ``call`` on the alert store; an outage is counted in the service's health, not raised."""
    from alerting.health import STORE_ERRORS

    try:
        await call
    except STORE_ERRORS as exc:
        service.health.failed(exc)
        return False
    return True
