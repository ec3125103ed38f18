"""The Faust worker, wired: topics, the state tables, the stage agents, the timer and the /metrics endpoint.

Hot path: stage 1 gets each source partition's fetched records as one list from the consumer
(:mod:`streams.fastpath`), past Faust's per-message dispatch; stage 2 takes up to ``take_max`` partials at a
time from its agent, and a message may carry many events. Faust flushes the producer before it commits offsets, and the stages await
their own sends (:mod:`streams.agents`), so a committed offset never runs ahead of the state written for it.

Where things are:

- :mod:`streams.tables` and :mod:`streams.changelog`: the changelog-backed tables and their one key scheme;
- :mod:`streams.stage1`: the engine agent per source (events → partials, dead letters, stage-1 state);
- :mod:`streams.stage2`: the merger agent (partials → values, detectors, attainment, alert evaluation);
- :mod:`streams.agents`: durable sends, the failure policy (an agent that raises ends the process with status
  70, ``EXIT_AGENT_FAILED``), test-only fault injection;
- :mod:`streams.exporter`: every ``kpi_*`` and ``kpimon_*`` family.

This module only wires them. The alert service's scheduling and admin API belong to the shell, which hands the
worker an :class:`streams.config.AlertRuntime`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import faust
from aiohttp import web
from faust.types import TP
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from streams.admission import AdmissionView, follow_admissions
from streams.agents import EXIT_AGENT_FAILED, FaultInjection, limit_fetch_wait, tick_guard
from streams.attainment import Attainment, Goal
from streams.config import AlertRuntime, WorkerConfig
from streams.engine import PartitionEngine
from streams.exporter import ExportedKpi, KpiCollector, OpsCounters
from streams.fastpath import TappedApp
from streams.freshness import FreshnessMonitor
from streams.heartbeat import Heartbeat
from streams.merge import retention_ms
from streams.observers import Observers
from streams.plan import Plan
from streams.recovery import SelfRecoveringTableManager
from streams.stage1 import Stage1
from streams.stage2 import Stage2
from streams.tables import make_table
from streams.topics import STAGE2_TABLE, stage1_table

__all__ = ["EXIT_AGENT_FAILED", "Worker", "WorkerConfig", "kpi_goal"]

log = logging.getLogger("kpimon.worker")


class Worker:
    """Builds the Faust app for a plan; ``app`` is what ``faust worker`` runs."""

    def __init__(self, plan: Plan, kpis: dict[str, ExportedKpi], cfg: WorkerConfig,
                 registry: CollectorRegistry | None = None, observers: Observers | None = None,
                 alerts: AlertRuntime | None = None, freshness: FreshnessMonitor | None = None,
                 heartbeat: Heartbeat | None = None) -> None:
        self.plan, self.cfg, self.alerts = plan, cfg, alerts
        self.freshness = freshness       # which sources still send (streams.freshness); stage 1 reports arrivals
        self.heartbeat = heartbeat       # the dead man's switch (streams.heartbeat), pinged from the tick
        self.observers = observers or Observers({})
        self.ops = OpsCounters()
        self.admissions = AdmissionView()    # stage 2's series-cap decisions, followed from the admission topic
        self.registry = registry or CollectorRegistry()
        self.attainment = Attainment({name: kpi_goal(plan, name, m.target, m.target_per or "day")
                                      for name, m in kpis.items() if m.target is not None})
        self._runner: web.AppRunner | None = None
        self.app = self._make_app(FaultInjection.from_env())
        self.collector = KpiCollector(kpis, self.stage2.latest, self.ops, observers=self.observers,
                                      attainment=self.attainment.ratio, freshness=freshness, heartbeat=heartbeat,
                                      owned=self._owned,
                                      topics=[*(s.topic for s in plan.sources), cfg.topics.partials])
        self.registry.register(self.collector)

    def _make_app(self, faults: FaultInjection) -> faust.App:
        cfg, topics = self.cfg, self.cfg.topics
        limit_fetch_wait(cfg.fetch_max_wait_ms)
        app = TappedApp(
            cfg.app_id, broker=f"kafka://{cfg.broker}", store="memory://", web_enabled=False,
            topic_partitions=topics.internal_partitions, consumer_auto_offset_reset="earliest",
            broker_session_timeout=cfg.session_timeout_s, broker_heartbeat_interval=min(3.0, cfg.session_timeout_s / 3),
            producer_linger_ms=5, stream_wait_empty=False, table_standby_replicas=0, loghandlers=[],
            consumer_max_fetch_size=4 * 1024 * 1024, broker_commit_every=10_000, broker_commit_interval=1.0,
            TableManager=SelfRecoveringTableManager,
            # Kafka's default message.max.bytes: a bigger request would only move the failure to the broker.
            # Every record kpimon writes is bounded far below it (distinct states are sketches past a threshold).
            producer_max_request_size=1024 * 1024,
        )

        def internal(name: str) -> Any:
            return app.topic(name, partitions=topics.internal_partitions, key_serializer="raw", value_serializer="raw")

        async def send(topic: str, key: bytes | None, value: bytes | None, partition: int | None) -> Any:
            return await app.producer.send(topic, key, value, partition, None, None)

        partials = internal(topics.partials)
        for name in (topics.values, topics.anomalies, topics.dead_letters):
            internal(name)
        series = internal(topics.series)
        self.stage1: dict[str, Stage1] = {}
        for src in self.plan.sources:
            topic = app.topic(src.topic, partitions=src.partitions, key_serializer="raw", value_serializer="raw")
            table = make_table(app, stage1_table(src.name), src.partitions, cfg.broker, self._on_recovered)
            stage = self.stage1[src.name] = Stage1(src, table, cfg, admissions=self.admissions, ops=self.ops,
                                                   send=send, groups=self.plan.groups, faults=faults,
                                                   freshness=self.freshness)
            # the agent subscribes the topic (and co-partitions its table); its records reach the stage a fetched
            # batch at a time through the consumer's tap (streams.fastpath), not one stream event per message
            app.agent(topic, name=f"kpimon.stage1.{src.name}")(stage.agent)
            app.taps[src.topic] = stage.take_records
        self.stage2 = Stage2(self.plan, make_table(app, STAGE2_TABLE, topics.internal_partitions, cfg.broker,
                                                   self._on_recovered),
                             cfg, admissions=self.admissions, ops=self.ops, send=send,
                             feedback=lambda key, value: series.send_soon(key=key, value=value),
                             observers=self.observers, attainment=self.attainment, after_alerts=self._tick_alerts,
                             faults=faults)
        app.agent(partials, name="kpimon.stage2")(self.stage2.agent)
        app.on_partitions_assigned.connect(self._on_assigned)
        app.timer(cfg.tick_s)(tick_guard(self._tick))
        app.service(self._metrics_service())
        app.service(self._admission_service())
        return app

    # ---- time, rebalance --------------------------------------------------------------------
    def _assigned(self, topic: str) -> list[int]:
        return [tp.partition for tp in self.app.consumer.assignment() if tp.topic == topic]

    async def _tick(self) -> None:
        if self.heartbeat is not None:
            self.heartbeat.maybe_beat()     # the tick runs: this worker is alive (never waits for the checker)
        if self.app.in_recovery or self.app.rebalancing or not self.admissions.ready:
            return
        for src in self.plan.sources:
            partitions = self._assigned(src.topic)
            if self.freshness is not None:
                for partition in partitions:
                    engine = self.stage1[src.name].engine(partition)
                    self.freshness.behind(src.name, partition, self._unread(TP(src.topic, partition), engine))
            await self.stage1[src.name].tick(partitions)
        await self.stage2.tick(self._assigned(self.cfg.topics.partials))
        await self.observers.take_feedback()    # people's verdicts on alerts, to the detectors of their series
        await self.observers.take_calendar_notes()  # and the occasions they named ("expected"), to their calendar
        marks = [e.watermark for st in self.stage1.values() for e in st.engines.values() if e.watermark is not None]
        if self.observers.clock is not None and marks:
            self.observers.clock.seed(max(marks) / 1000)    # a restarted worker's alert clock: its restored watermark
        await self._tick_alerts()

    def _unread(self, tp: TP, engine: PartitionEngine) -> bool:
        """Whether the broker holds messages of ``tp`` this worker has not applied yet (it is behind; a source
        is not silent then). The embedded broker under-reports the high watermark by its last batch
        (shared/FACTS.md), which errs toward "not behind", i.e. toward judging a real silence."""
        try:
            highwater = self.app.consumer.highwater(tp)
        except Exception:       # not fetched yet, or a rebalance in between: nothing known
            return False
        return highwater is not None and highwater - 1 > engine.applied

    async def _tick_alerts(self) -> None:
        if self.alerts is not None:
            await self.alerts.tick()    # an unreachable store is counted and logged once per outage, not raised

    def _owned(self) -> list[tuple[str, int]]:
        """Partitions this worker owns with their state restored (none while a rebalance is under way)."""
        owned = () if self.app.rebalancing else self.app.consumer.assignment()   # restored once the rebalance ends
        return [(tp.topic, tp.partition) for tp in owned]

    def _on_recovered(self, active: set[TP]) -> None:
        self._keep(self.app.consumer.assignment())

    async def _on_assigned(self, _app: Any, /, *args: Any, signal: Any = None, **_kwargs: Any) -> None:
        """Every new assignment, even one a further rebalance overtakes before its restore ends: forget the
        partitions it does not hold. Another worker may own them meanwhile, so state held from before is stale
        if they come back (they are then restored from their changelogs). Faust sends ``(app, assigned)``."""
        self._keep(set(args[0]))

    def _keep(self, assigned: set[TP]) -> None:
        for src in self.plan.sources:
            self.stage1[src.name].keep({tp.partition for tp in assigned if tp.topic == src.topic})
        self.stage2.keep({tp.partition for tp in assigned if tp.topic == self.cfg.topics.partials})

    def _admission_service(self) -> Any:
        worker = self

        class AdmissionService(faust.Service):
            """Follows the admission topic (all partitions, no group) into ``worker.admissions``."""

            _task: asyncio.Future[None] | None = None

            async def on_start(self) -> None:
                self._task = asyncio.ensure_future(self._follow())

            async def _follow(self) -> None:
                while True:       # stage 1 and 2 wait for this view: a broken connection must not stop them for good
                    try:
                        await follow_admissions(worker.cfg.broker, worker.cfg.topics.series, worker.admissions)
                    except asyncio.CancelledError:
                        raise
                    except Exception:
                        log.exception("following %s failed; reading it again", worker.cfg.topics.series)
                        await asyncio.sleep(1.0)

            async def on_stop(self) -> None:
                if self._task is not None:
                    self._task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await self._task

        return AdmissionService

    # ---- /metrics ---------------------------------------------------------------------------
    def _metrics_service(self) -> Any:
        worker = self

        class MetricsService(faust.Service):
            async def on_start(self) -> None:
                await worker.start_http()

            async def on_stop(self) -> None:
                await worker.stop_http()

        return MetricsService

    async def start_http(self) -> None:
        http = self.alerts.http_app() if self.alerts is not None else web.Application()
        http.router.add_get("/metrics", self._metrics)
        http.router.add_get("/healthz", lambda _r: _ok())
        self._runner = web.AppRunner(http, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.cfg.metrics_host, self.cfg.metrics_port).start()
        log.info("metrics at http://%s:%s/metrics", self.cfg.metrics_host, self.cfg.metrics_port)

    async def stop_http(self) -> None:
        if self.heartbeat is not None:
            await self.heartbeat.aclose()
        if self._runner is not None:
            await self._runner.cleanup()
        if self.alerts is not None:
            await self.alerts.aclose()

    async def _metrics(self, _request: web.Request) -> web.Response:
        body = generate_latest(self.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def _ok() -> web.Response:
    return web.Response(text="ok\n")


def kpi_goal(plan: Plan, name: str, target: float, per: str) -> Goal:
    """Attainment settings of a KPI: count/sum over tumbling windows add up over the period."""
    kp = plan.kpis.get(name)
    if kp is None:                       # a ratio: compared by its latest value
        ratio = plan.ratios.get(name)
        definition = f"ratio:{ratio.numerator}/{ratio.denominator}*{ratio.scale:g}" if ratio else ""
        return Goal(target, per, additive=False, definition=definition, tz=plan.timezone)
    additive = kp.kind in ("count", "sum") and kp.advance_ms == kp.size_ms
    return Goal(target, per, additive, keep_ms=retention_ms(kp), definition=kp.state_key, tz=plan.timezone)
