"""The Faust worker: agents, changelog-backed tables, timers and the /metrics endpoint.

Hot path: Faust's per-message cost is paid per *batch*. Stage 1 takes up to ``take_max``
messages at a time (``take_events``), each message may carry many events (JSON array or
NDJSON), all are folded into in-memory window state, and the changed windows are written
to the table's changelog once per batch (``send_changelog`` with the source partition,
so state moves with its partition). Faust flushes the producer before it commits offsets,
so a committed offset never runs ahead of the state written for it.

Durable writes are awaited, in order. Faust's ``send_soon`` buffer is not enough: its flush gives
up after 0.1 s without a message sent (``ProducerBuffer.flush_atmost``), so an offset commit could
run ahead of changelog records still in the buffer, and a kill -9 then lost the events between
(measured: 7 % of the torture test's events). kpimon sends its partials, dead letters, changelog
records and values straight to the producer and awaits their acknowledgements (:class:`_Writes`)
before a batch ends, i.e. before Faust can ack and commit its offsets.

Output before state: what a flush sends downstream (stage 1: partials and dead letters; stage 2:
values) must never be lost once the state that records it as sent is durable, or a restart would
not send it again. So stage 1 sends partials and dead letters, awaits them, then writes its
changelog; stage 2 writes its changelog (the values it is about to publish, with their revision),
awaits it, then publishes. A crash in between re-sends (stage 1: the window is re-closed from the
older state; stage 2: the restore re-publishes what the changelog holds), never a different value
under the same (kpi, series, window, revision).

Failure policy: bad input never raises out of an agent (it becomes a dead letter, or a logged and
counted bad partial). Anything else an agent raises is a bug: it is logged once with its traceback
and the *process* exits with status 70 (``EXIT_AGENT_FAILED``), so the orchestrator restarts the
worker, which recovers from the changelogs like after kill -9. Faust's own behaviour, restarting
the agent in the same process, left a source silently stalled. ``KPIMON_FAULT_INJECT`` (test only,
see :func:`_fault_injection`) makes an agent raise on purpose to test exactly that.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import faust
import orjson
from aiohttp import web
from faust.types import TP
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from catalog import defaults
from streams.admission import AdmissionView, follow_admissions
from streams.attainment import Attainment, Goal
from streams.engine import PartitionEngine
from streams.events import DeadLetter, decode_message
from streams.exporter import KpiCollector, KpiMeta, OpsCounters
from streams.merge import META_KEY, BadPartial, KpiValue, Merger, retention_ms
from streams.observers import Observers, anomaly_record
from streams.plan import Plan
from streams.recovery import SelfRecoveringTableManager, read_changelog_to_end
from streams.topics import STAGE2_TABLE, Topics, stage1_table

__all__ = ["EXIT_AGENT_FAILED", "Worker", "WorkerConfig"]

log = logging.getLogger("kpimon.worker")
EXIT_AGENT_FAILED = 70          # EX_SOFTWARE: an agent raised (a bug, not bad input)


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    broker: str = defaults.BROKER
    app_id: str = defaults.APP_ID
    metrics_host: str = defaults.METRICS_HOST   # /metrics and /api/*: loopback unless the deployment says otherwise
    metrics_port: int = defaults.METRICS_PORT
    speedup: float = defaults.SPEEDUP    # event-time seconds per wall second when idle (simulations)
    idle_ms: int = defaults.IDLE_MS      # wall ms without events before the watermark follows the clock
    tick_s: float = 0.5
    take_max: int = 200
    take_within_s: float = 0.1
    fetch_max_wait_ms: int = 100
    partition_wait_s: float = defaults.PARTITION_WAIT_S
    max_message_bytes: int = 1_048_576
    session_timeout_s: float = 10.0
    topics: Topics = field(default_factory=Topics)


class _Writes:
    """Sends whose delivery a flush awaits (see the module docstring for why not ``send_soon``)."""

    def __init__(self, app: faust.App) -> None:
        self.app = app
        self.pending: list[Awaitable[Any]] = []

    async def send(self, topic: str, key: bytes | None, value: bytes | None, partition: int | None = None) -> None:
        self.pending.append(await self.app.producer.send(topic, key, value, partition, None, None))

    async def wait(self) -> None:
        """Return once every send so far is acknowledged by the broker (raises if one failed)."""
        pending, self.pending = self.pending, []
        if pending:
            await asyncio.gather(*pending)


def _limit_fetch_wait(max_wait_ms: int) -> None:
    """Faust hard-codes ``fetch_max_wait_ms=1500`` for its consumer, and the embedded broker holds a fetch
    for the full wait even when data arrives meanwhile: every hop (source → partials) would cost up to
    1.5 s. Give Faust's driver an AIOKafkaConsumer factory with a shorter wait (idempotent)."""
    import types

    import aiokafka
    from faust.transport.drivers import aiokafka as driver

    if getattr(driver.aiokafka, "_kpimon_wait", None) == max_wait_ms:  # type: ignore[attr-defined]
        return

    def consumer(*args: Any, **kwargs: Any) -> aiokafka.AIOKafkaConsumer:
        kwargs["fetch_max_wait_ms"] = max_wait_ms
        return aiokafka.AIOKafkaConsumer(*args, **kwargs)

    proxy = types.ModuleType("aiokafka_for_faust")
    proxy.__dict__.update(aiokafka.__dict__)
    proxy.AIOKafkaConsumer = consumer  # type: ignore[attr-defined]
    proxy._kpimon_wait = max_wait_ms  # type: ignore[attr-defined]
    driver.aiokafka = proxy  # type: ignore[attr-defined]


class _StateTable(faust.Table[bytes, bytes]):
    """A Faust table that restores its assigned changelog partitions itself, then tells the worker.

    Faust's own changelog recovery is switched off (``streams.recovery``): it stops short on the
    embedded broker (end offsets are under-reported, shared/FACTS.md) and its unbounded wait stalled
    rebalances. On every assignment we read each assigned changelog partition from the beginning until
    the consumer is past the reported end and fetches come back empty, which is correct on any broker.
    """

    on_recovered: Callable[[set[TP]], None] | None = None
    bootstrap: str = ""
    _restore_gen: int = 0

    async def on_recovery_completed(self, active_tps: set[TP], standby_tps: set[TP]) -> None:
        await super().on_recovery_completed(active_tps, standby_tps)
        self._restore_gen += 1
        gen = self._restore_gen            # a newer rebalance makes an unfinished restore stop applying
        mine = [tp for tp in active_tps if tp.topic == self.changelog_topic.get_topic_name()]
        if mine and self.bootstrap:
            await read_changelog_to_end(self.bootstrap, mine, self._apply_raw,
                                        still_wanted=lambda: gen == self._restore_gen)
        if self.on_recovered is not None and gen == self._restore_gen:
            self.on_recovered(active_tps)

    def _apply_raw(self, key: bytes, value: bytes | None) -> None:
        if value is None:
            self.data.pop(key, None)
        else:
            self.data[key] = value


class Worker:
    """Builds the Faust app for a plan; ``app`` is what ``faust worker`` runs."""

    def __init__(self, plan: Plan, kpis: dict[str, KpiMeta], cfg: WorkerConfig,
                 registry: CollectorRegistry | None = None, observers: Observers | None = None,
                 api_token: str | None = None) -> None:
        self.plan, self.cfg = plan, cfg
        self.observers = observers or Observers({})
        self.api_token = api_token
        self.ops = OpsCounters()
        self.ops.extra.append(self._observer_metrics)
        self.engines: dict[tuple[str, int], PartitionEngine] = {}
        self.mergers: dict[int, Merger] = {}
        self.admissions = AdmissionView()    # stage 2's series-cap decisions, followed from the admission topic
        self.registry = registry or CollectorRegistry()
        self.attainment = Attainment({name: _goal(plan, name, m.target, m.target_per or "day")
                                      for name, m in kpis.items() if m.target is not None})
        self.collector = KpiCollector(kpis, self._latest, self.ops, verdicts=lambda: self.observers.verdicts,
                                      attainment=self.attainment.ratio)
        self.registry.register(self.collector)
        self.app = self._make_app()
        # one flush at a time per engine / merger: the agent and the timer both flush, and a flush awaits its sends
        self._flush_locks: dict[tuple[str, int], asyncio.Lock] = {}
        self._republish: dict[int, list[KpiValue]] = {}
        self._runner: web.AppRunner | None = None
        self._fault = _fault_injection(os.environ.get("KPIMON_FAULT_INJECT", ""))

    # ---- app wiring -----------------------------------------------------------------------
    def _make_app(self) -> faust.App:
        cfg = self.cfg
        _limit_fetch_wait(cfg.fetch_max_wait_ms)
        app = faust.App(
            cfg.app_id, broker=f"kafka://{cfg.broker}", store="memory://", web_enabled=False,
            topic_partitions=cfg.topics.internal_partitions, consumer_auto_offset_reset="earliest",
            broker_session_timeout=cfg.session_timeout_s, broker_heartbeat_interval=min(3.0, cfg.session_timeout_s / 3),
            producer_linger_ms=5, stream_wait_empty=False, table_standby_replicas=0, loghandlers=[],
            consumer_max_fetch_size=4 * 1024 * 1024, broker_commit_every=10_000, broker_commit_interval=1.0,
            TableManager=SelfRecoveringTableManager,
            # Kafka's default message.max.bytes: a bigger request would only move the failure to the broker.
            # Every record kpimon writes is bounded far below it (distinct states are sketches past a threshold).
            producer_max_request_size=1024 * 1024,
        )
        self.partials_topic = app.topic(cfg.topics.partials, partitions=cfg.topics.internal_partitions,
                                        key_serializer="raw", value_serializer="raw")
        self.values_topic = app.topic(cfg.topics.values, partitions=cfg.topics.internal_partitions,
                                      key_serializer="raw", value_serializer="raw")
        self.anomalies_topic = app.topic(cfg.topics.anomalies, partitions=cfg.topics.internal_partitions,
                                         key_serializer="raw", value_serializer="raw")
        self.dlq_topic = app.topic(cfg.topics.dead_letters, partitions=cfg.topics.internal_partitions,
                                   key_serializer="raw", value_serializer="raw")
        self.series_topic = app.topic(cfg.topics.series, partitions=cfg.topics.internal_partitions,
                                      key_serializer="raw", value_serializer="raw")
        self.tables: dict[str, faust.Table[bytes, bytes]] = {}
        for src in self.plan.sources:
            topic = app.topic(src.topic, partitions=src.partitions, key_serializer="raw", value_serializer="raw")
            table = self._table(app, stage1_table(src.name), src.partitions)
            self.tables[src.name] = table
            app.agent(topic, name=f"kpimon.stage1.{src.name}")(self._stage1_agent(src.name, table))
        self.merge_table = self._table(app, STAGE2_TABLE, cfg.topics.internal_partitions)
        app.agent(self.partials_topic, name="kpimon.stage2")(self._stage2_agent())
        app.timer(cfg.tick_s)(_tick_guard(self._tick))
        app.service(self._metrics_service())
        app.service(self._admission_service())
        return app

    def _table(self, app: faust.App, name: str, partitions: int) -> faust.Table[bytes, bytes]:
        table = _StateTable(app, name=name, default=None, beacon=app.tables.beacon, partitions=partitions,
                            key_type=bytes, value_type=bytes)
        table.on_recovered = self._on_recovered
        table.bootstrap = self.cfg.broker
        app.tables.add(table)
        return table

    # ---- stage 1 ----------------------------------------------------------------------------
    def _stage1_agent(self, source: str, table: faust.Table[bytes, bytes]) -> Callable[[Any], Awaitable[None]]:
        src = next(s for s in self.plan.sources if s.name == source)

        async def stage1(stream: Any) -> None:
            await self.admissions.wait_ready()      # after a restart, fold nothing before reading stage 2's decisions
            async for batch in stream.take_events(self.cfg.take_max, within=self.cfg.take_within_s):
                touched: dict[int, PartitionEngine] = {}
                writes = _Writes(self.app)      # this batch's own sends: another coroutine's wait() never takes them
                for event in batch:
                    msg = event.message
                    self._inject("stage1")
                    engine = touched.get(msg.partition) or self._engine(source, msg.partition)
                    touched[msg.partition] = engine
                    if msg.offset <= engine.applied:
                        engine.process([], msg.offset)      # a replay the state already holds: skipped whole
                        continue
                    self.ops.bump(self.ops.messages, source)
                    events, dead, origins = decode_message(msg.value, self.cfg.max_message_bytes)
                    self.ops.bump(self.ops.events, source, len(events))
                    dead += engine.process(events, msg.offset, origins)
                    if dead:
                        await self._dead_letters(writes, src.topic, source, msg, dead)
                for engine in touched.values():
                    await self._flush_engine(engine, table, writes)
        stage1.__name__ = f"stage1_{source}"
        return _fail_loudly(f"stage 1 of source {source!r}", stage1)

    def _engine(self, source: str, partition: int) -> PartitionEngine:
        engine = self.engines.get((source, partition))
        if engine is None:
            src = next(s for s in self.plan.sources if s.name == source)
            engine = PartitionEngine(src, partition, speedup=self.cfg.speedup, idle_ms=self.cfg.idle_ms,
                                     admissions=self.admissions)
            engine.restore(_records(self.tables[source], f"{partition}|"))
            self.engines[(source, partition)] = engine
        return engine

    async def _dead_letters(self, writes: _Writes, topic: str, source: str, msg: Any, dead: Sequence[DeadLetter]) -> None:
        now = int(time.time() * 1000)
        for d in dead:
            self.ops.bump(self.ops.dead_letters, (source, d.reason))
            await writes.send(self.dlq_topic.get_topic_name(), topic.encode(), d.to_record(
                topic=topic, partition=msg.partition, offset=msg.offset, received_ms=now))

    async def _flush_engine(self, engine: PartitionEngine, table: faust.Table[bytes, bytes],
                            writes: _Writes | None = None) -> None:
        async with self._flush_lock(engine.source.name, engine.partition):
            await self._flush_engine_locked(engine, table, writes or _Writes(self.app))

    def _flush_lock(self, kind: str, partition: int) -> asyncio.Lock:
        return self._flush_locks.setdefault((kind, partition), asyncio.Lock())

    async def _flush_engine_locked(self, engine: PartitionEngine, table: faust.Table[bytes, bytes], writes: _Writes) -> None:
        engine.advance()
        topic = self.partials_topic.get_topic_name()
        for partial in engine.take_partials():
            await writes.send(topic, self.plan.groups[partial["kpi"]].encode(), orjson.dumps(partial))
        await writes.wait()          # output (and this batch's dead letters) before the state that records it
        changelog = table.changelog_topic.get_topic_name()
        for key, value in engine.take_changes():
            bkey = key.encode()
            if value is None:
                table.data.pop(bkey, None)
            else:
                table.data[bkey] = value
            await writes.send(changelog, bkey, value, engine.partition)
        await writes.wait()          # the state before this batch's offsets can be committed
        self._sync_stats(engine)

    def _sync_stats(self, engine: PartitionEngine) -> None:
        st, ops = engine.stats, self.ops
        for attr in ("closes", "revisions", "late_dropped", "skipped"):
            data = getattr(st, attr)
            for kpi, n in data.items():
                ops.bump(getattr(ops, attr), kpi, n)
            data.clear()
        if st.unmatched:
            ops.bump(ops.unmatched, engine.source.name, st.unmatched)
            st.unmatched = 0
        if st.replayed:
            ops.bump(ops.replayed, engine.source.name, st.replayed)
            st.replayed = 0
        if engine.watermark is not None:
            ops.watermarks[engine.source.name] = max(ops.watermarks.get(engine.source.name, 0.0), engine.watermark / 1000)

    # ---- stage 2 ----------------------------------------------------------------------------
    def _stage2_agent(self) -> Callable[[Any], Awaitable[None]]:
        async def stage2(stream: Any) -> None:
            await self.admissions.wait_ready()      # a restored merger adopts the published decisions
            async for batch in stream.take_events(self.cfg.take_max, within=self.cfg.take_within_s):
                touched = set()
                for event in batch:
                    self._inject("stage2")
                    merger = self._merger(event.message.partition)
                    try:
                        merger.add_partial(orjson.loads(event.message.value), event.message.offset)
                    except (orjson.JSONDecodeError, BadPartial) as exc:
                        self.ops.bump(self.ops.bad_partials, "stage2")
                        log.error("ignoring malformed partial at offset %s: %s", event.message.offset, exc)
                        continue
                    touched.add(event.message.partition)
                for partition in touched:
                    await self._flush_merger(partition)
        return _fail_loudly("stage 2", stage2)

    def _inject(self, stage: str) -> None:
        """Test-only fault injection (``KPIMON_FAULT_INJECT``): raise on the stage's Nth message."""
        if self._fault is not None and self._fault[0] == stage:
            self._fault[1] -= 1
            if self._fault[1] == 0:
                raise RuntimeError(f"KPIMON_FAULT_INJECT: injected fault in {stage}")

    def _merger(self, partition: int) -> Merger:
        merger = self.mergers.get(partition)
        if merger is None:
            merger = Merger(self.plan, partition_wait_s=self.cfg.partition_wait_s)
            records = {k.partition("|")[2]: v for k, v in _records(self.merge_table, f"{partition}|").items()}
            # "~det|…" (detectors) and "~att|…" (attainment) are checkpoints, not merger entries
            restored = merger.restore({k: orjson.loads(v) for k, v in records.items()
                                       if not k.startswith("~") or k == META_KEY})
            merger.adopt(self.admissions)
            self.attainment.restore(partition, records)
            # at-least-once output across crashes (see Merger.restore): published by the next flush, before it
            # writes any state (a purge written first and a kill would lose a value that never reached kpi.values)
            self._republish[partition] = restored
            for val in restored:
                # counted once per window: fills in what a lost checkpoint missed, changes nothing else
                self.attainment.observe(val, partition)
            self.observers.restore(partition, records)
            self.mergers[partition] = merger
        return merger

    def _checkpoints(self, partition: int) -> list[tuple[str, bytes | None]]:
        """Detector and attainment states of ``partition`` changed since the last write."""
        return [*self.observers.take_checkpoints(partition), *self.attainment.take_checkpoints(partition)]

    async def _flush_merger(self, partition: int) -> None:
        async with self._flush_lock("~stage2", partition):
            if partition in self.mergers:           # not revoked while waiting
                await self._flush_merger_locked(partition)

    async def _flush_merger_locked(self, partition: int) -> None:
        merger = self.mergers[partition]
        restored = self._republish.pop(partition, None)
        if restored:
            writes = _Writes(self.app)
            await self._send_values(writes, restored)
            await writes.wait()
        values = merger.poll()
        for kpi, n in merger.dropped.items():
            self.ops.bump(self.ops.partials_dropped, kpi, n)
        merger.dropped.clear()
        changes = [(k, None if doc is None else orjson.dumps(doc)) for k, doc in merger.take_changes()]
        if not values:   # a restore may still have changed attainment
            await self._write_stage2(partition, changes + self._checkpoints(partition))
            return
        for val in values:
            self.attainment.observe(val, partition)
        verdicts = {}
        anomalies = []
        for val, verdict in self.observers.detect(partition, values):
            verdicts[(val.kpi, val.series, val.window_start_ms)] = verdict
            if verdict.is_anomaly or verdict.drift:
                anomalies.append((val, verdict))
        # state first: once the changelog holds (window, revision, values), a restart re-publishes exactly these
        await self._write_stage2(partition, changes + self._checkpoints(partition))
        writes = _Writes(self.app)
        await self._send_values(writes, values)
        for val in values:
            self.ops.bump(self.ops.values_published, val.kpi)
        anomalies_topic = self.anomalies_topic.get_topic_name()
        for val, verdict in anomalies:
            await writes.send(anomalies_topic, _value_key(val), orjson.dumps(anomaly_record(val, verdict)))
        await writes.wait()
        try:
            if await self.observers.alert(values, verdicts):
                await self._tick_alerts()       # deliver now, not at the next timer tick (latency)
        except Exception:  # Redis down etc.: values and detectors go on; the next window is evaluated again
            log.exception("alert evaluation failed")

    async def _send_values(self, writes: _Writes, values: Iterable[KpiValue]) -> None:
        topic = self.values_topic.get_topic_name()
        for val in values:
            await writes.send(topic, _value_key(val), orjson.dumps(val.to_record()))

    async def _write_stage2(self, partition: int, changes: list[tuple[str, bytes | None]]) -> None:
        changelog = self.merge_table.changelog_topic.get_topic_name()
        writes = _Writes(self.app)
        for key, value in changes:
            bkey = f"{partition}|{key}".encode()
            if value is None:
                self.merge_table.data.pop(bkey, None)
            else:
                self.merge_table.data[bkey] = value
            await writes.send(changelog, bkey, value, partition)
        await writes.wait()
        merger = self.mergers.get(partition)
        if merger is not None:            # after the changelog records that hold the same decisions
            for fkey, fvalue in merger.take_feedback():
                self.series_topic.send_soon(key=fkey, value=fvalue)
            for kpi, n in merger.overflow.items():
                self.ops.bump(self.ops.overflow, kpi, n)
            merger.overflow.clear()

    # ---- time, rebalance --------------------------------------------------------------------
    async def _tick(self) -> None:
        if self.app.in_recovery or self.app.rebalancing or not self.admissions.ready:
            return
        assigned = self.app.consumer.assignment()
        for src in self.plan.sources:
            for tp in assigned:
                if tp.topic == src.topic:
                    await self._flush_engine(self._engine(src.name, tp.partition), self.tables[src.name])
        for tp in assigned:
            if tp.topic == self.cfg.topics.partials:
                self._merger(tp.partition)
        for partition in list(self.mergers):
            await self._flush_merger(partition)
        await self._tick_alerts()

    async def _tick_alerts(self) -> None:
        service = self.observers.alerts
        if service is not None:
            await service.run_tick()    # an unreachable store is counted and logged once per outage, not raised

    def _observer_metrics(self) -> Iterable[Any]:
        from prometheus_client.core import CounterMetricFamily

        from streams.alert_metrics import alert_families

        for merger in list(self.mergers.values()):      # drained here: mergers come and go with partitions
            for kpi, n in merger.saturated.items():
                self.ops.bump(self.ops.saturated, kpi, n)
            merger.saturated.clear()
        saturated = CounterMetricFamily("kpimon_values_saturated", "KPI values clamped to the largest finite float "
                                        "(a stage-2 merge overflowed)", labels=["kpi"])
        for kpi, n in sorted(self.ops.saturated.items()):
            saturated.add_metric([kpi], n)
        yield saturated
        yield from alert_families(self.observers)

    def _on_recovered(self, active: set[TP]) -> None:
        assigned = {(tp.topic, tp.partition) for tp in self.app.consumer.assignment()}
        for (source, partition) in list(self.engines):
            topic = next(s.topic for s in self.plan.sources if s.name == source)
            if (topic, partition) not in assigned:
                del self.engines[(source, partition)]      # revoked: the new owner recovers it
        for partition in list(self.mergers):
            if (self.cfg.topics.partials, partition) not in assigned:
                del self.mergers[partition]
                self._republish.pop(partition, None)       # the new owner re-publishes from its own restore
                self.observers.drop(partition)
                self.attainment.drop(partition)

    def _latest(self) -> Iterable[KpiValue]:
        for merger in list(self.mergers.values()):
            yield from list(merger.latest.values())

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
        service = self.observers.alerts
        if self.api_token and service is not None:
            from alerting.http_api import make_api

            http = make_api(service.store, self.api_token)    # /api/* needs the bearer token
        else:
            http = web.Application()
        http.router.add_get("/metrics", self._metrics)
        http.router.add_get("/healthz", lambda _r: _ok())
        self._runner = web.AppRunner(http, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.cfg.metrics_host, self.cfg.metrics_port).start()
        log.info("metrics at http://%s:%s/metrics", self.cfg.metrics_host, self.cfg.metrics_port)

    async def stop_http(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self.observers.alerts is not None:
            await self.observers.alerts.aclose()

    async def _metrics(self, _request: web.Request) -> web.Response:
        body = generate_latest(self.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def _ok() -> web.Response:
    return web.Response(text="ok\n")


def _value_key(val: KpiValue) -> bytes:
    return f"{val.kpi}|{val.series}".encode()


def _goal(plan: Plan, name: str, target: float, per: str) -> Goal:
    """Attainment settings of a KPI: count/sum over tumbling windows add up over the period."""
    kp = plan.kpis.get(name)
    if kp is None:                       # a ratio: compared by its latest value
        ratio = plan.ratios.get(name)
        definition = f"ratio:{ratio.numerator}/{ratio.denominator}*{ratio.scale:g}" if ratio else ""
        return Goal(target, per, additive=False, definition=definition)
    additive = kp.kind in ("count", "sum") and kp.advance_ms == kp.size_ms
    return Goal(target, per, additive, keep_ms=retention_ms(kp), definition=kp.state_key)


def _records(table: faust.Table[bytes, bytes], prefix: str) -> dict[str, bytes]:
    """This partition's records of a table's store (keys are prefixed with the partition)."""
    out = {}
    for key, value in list(table.data.items()):
        skey = key.decode() if isinstance(key, bytes) else str(key)
        if skey.startswith(prefix) and value is not None:
            out[skey] = value
    return out


def _fault_injection(spec: str) -> list[Any] | None:
    """TEST ONLY. ``KPIMON_FAULT_INJECT=stage1[:N]`` (or ``stage2[:N]``) makes that agent raise a RuntimeError
    on its Nth message (default 1st) since start, to test that an agent failure stops the worker loudly.
    Never set it in production."""
    if not spec:
        return None
    stage, _, nth = spec.partition(":")
    if stage not in ("stage1", "stage2") or not (nth or "1").isdigit() or int(nth or "1") < 1:
        raise ValueError(f"KPIMON_FAULT_INJECT={spec!r}: use stage1[:N] or stage2[:N]")
    log.warning("KPIMON_FAULT_INJECT=%s: this worker will fail on purpose (test only)", spec)
    return [stage, int(nth or "1")]


def _fail_loudly(what: str, agent: Callable[[Any], Awaitable[None]]) -> Callable[[Any], Awaitable[None]]:
    """The agent, but an exception out of it ends the process (see the module docstring), not just the agent."""
    async def run(stream: Any) -> None:
        try:
            await agent(stream)
        except Exception:
            _fail_worker(what)
    run.__name__ = agent.__name__
    return run


def _fail_worker(what: str) -> None:
    """Log the exception being handled once, with its traceback, and end the process non-zero now.

    ``os._exit``: Faust would catch a SystemExit in the agent and restart the agent in-process. Exiting
    hard is what kill -9 does, which the design recovers from (changelogs; offsets never ahead of state)."""
    log.critical("%s failed: a bug, not bad input; exiting with status %d so the worker is restarted",
                 what, EXIT_AGENT_FAILED, exc_info=True)
    for handler in [*logging.getLogger().handlers, *log.handlers]:
        with contextlib.suppress(Exception):      # exiting anyway
            handler.flush()
    os._exit(EXIT_AGENT_FAILED)


def _tick_guard(coro: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        try:
            await coro()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("tick failed")
    return run
