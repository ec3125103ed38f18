"""The stage-2 agent: partials → one merger per ``kpi.partials`` partition → values, detectors, alerts.

Output before state, reversed for stage 2: a flush writes its changelog (the values it is about to publish, with
their revision, and the checkpoints of the per-partition state that rides along: detectors and attainment,
:class:`streams.changelog.PartitionState`), awaits it, then publishes. A crash in between re-publishes on restore
what the changelog holds (:meth:`streams.merge.Merger.restore`), never a different value under the same (kpi,
series, window, revision). Admission decisions go to the admission topic only after the changelog records that
hold them.

The worker calls :meth:`Stage2.agent` (the Faust agent), :meth:`Stage2.tick` (timer), :meth:`Stage2.keep`
(rebalance) and :meth:`Stage2.latest` (the exporter); ``after_alerts`` is the shell's hook to deliver at once
when alert rules changed state.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from typing import Any

import orjson

from streams.admission import AdmissionView
from streams.agents import Agent, FaultInjection, SendFn, Writes, fail_loudly
from streams.attainment import Attainment
from streams.changelog import PartitionState, namespaced, split_stage2
from streams.config import WorkerConfig
from streams.exporter import OpsCounters
from streams.merge import Merger
from streams.observers import Observers, anomaly_record
from streams.plan import Plan
from streams.records import BadPartial, KpiValue
from streams.tables import StateTable

__all__ = ["Stage2"]

log = logging.getLogger("kpimon.worker")


class Stage2:
    """Stage 2: a merger per assigned ``kpi.partials`` partition, with its detectors and attainment."""

    def __init__(self, plan: Plan, table: StateTable, cfg: WorkerConfig, *, admissions: AdmissionView,
                 ops: OpsCounters, send: SendFn, feedback: Callable[[bytes, bytes], None], observers: Observers,
                 attainment: Attainment, after_alerts: Callable[[], Awaitable[None]], faults: FaultInjection) -> None:
        self.plan, self.table, self.cfg = plan, table, cfg
        self.admissions, self.ops, self.send, self.feedback, self.faults = admissions, ops, send, feedback, faults
        self.observers, self.attainment, self.after_alerts = observers, attainment, after_alerts
        self.states: list[PartitionState] = [observers, attainment]
        self.mergers: dict[int, Merger] = {}
        self._republish: dict[int, list[KpiValue]] = {}
        # one flush at a time per merger: the agent and the timer both flush, and a flush awaits its sends
        self._locks: dict[int, asyncio.Lock] = {}

    @property
    def agent(self) -> Agent:
        """The Faust agent over ``kpi.partials`` (an exception out of it ends the process)."""
        async def stage2(stream: Any) -> None:
            await self.admissions.wait_ready()      # a restored merger adopts the published decisions
            async for batch in stream.take_events(self.cfg.take_max, within=self.cfg.take_within_s):
                await self._batch([event.message for event in batch])
        return fail_loudly("stage 2", stage2)

    async def _batch(self, messages: Sequence[Any]) -> None:
        touched = set()
        for msg in messages:
            self.faults.check("stage2")
            merger = self.merger(msg.partition)
            try:
                merger.add_partial(orjson.loads(msg.value), msg.offset)
            except (orjson.JSONDecodeError, BadPartial) as exc:
                self.ops.bump(self.ops.bad_partials, "stage2")
                log.error("ignoring malformed partial at offset %s: %s", msg.offset, exc)
                continue
            touched.add(msg.partition)
        for partition in touched:
            await self.flush(partition)

    def merger(self, partition: int) -> Merger:
        """The partition's merger, restored (with its detectors and attainment) from the table on first use."""
        merger = self.mergers.get(partition)
        if merger is None:
            merger = Merger(self.plan, partition_wait_s=self.cfg.partition_wait_s)
            records, states = split_stage2(self.table.records(partition), [s.namespace for s in self.states])
            restored = merger.restore({k: orjson.loads(v) for k, v in records.items()})
            merger.adopt(self.admissions)
            for state in self.states:
                state.restore(partition, states[state.namespace])
            # at-least-once output across crashes (see Merger.restore): published by the next flush, before it
            # writes any state (a purge written first and a kill would lose a value that never reached kpi.values)
            self._republish[partition] = restored
            for val in restored:
                # counted once per window: fills in what a lost checkpoint missed, changes nothing else
                self.attainment.observe(val, partition)
            self.mergers[partition] = merger
        return merger

    async def flush(self, partition: int) -> None:
        async with self._locks.setdefault(partition, asyncio.Lock()):
            if partition in self.mergers:           # not revoked while waiting
                await self._flush(partition, self.mergers[partition])

    async def _flush(self, partition: int, merger: Merger) -> None:
        restored = self._republish.pop(partition, None)
        if restored:
            writes = Writes(self.send)
            await self._send_values(writes, restored)
            await writes.wait()
        values = merger.poll()
        self._count(merger)
        changes = [(k, None if doc is None else orjson.dumps(doc)) for k, doc in merger.take_changes()]
        if not values:   # a restore may still have changed attainment
            await self._write(partition, merger, changes + self._checkpoints(partition))
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
        await self._write(partition, merger, changes + self._checkpoints(partition))
        writes = Writes(self.send)
        await self._send_values(writes, values)
        for val in values:
            self.ops.bump(self.ops.values_published, val.kpi)
        for val, verdict in anomalies:
            await writes.send(self.cfg.topics.anomalies, val.key, orjson.dumps(anomaly_record(val, verdict)))
        await writes.wait()
        try:
            if await self.observers.alert(values, verdicts):
                await self.after_alerts()       # deliver now, not at the next timer tick (latency)
        except Exception:  # Redis down etc.: values and detectors go on; the next window is evaluated again
            log.exception("alert evaluation failed")

    def _count(self, merger: Merger) -> None:
        for counts, into in ((merger.dropped, self.ops.partials_dropped), (merger.saturated, self.ops.saturated)):
            for kpi, n in counts.items():
                self.ops.bump(into, kpi, n)
            counts.clear()

    def _checkpoints(self, partition: int) -> list[tuple[str, bytes | None]]:
        """The per-partition states' checkpoints changed since the last write, keyed in their namespaces."""
        return [(namespaced(state.namespace, key), doc) for state in self.states
                for key, doc in state.take_checkpoints(partition)]

    async def _send_values(self, writes: Writes, values: Iterable[KpiValue]) -> None:
        for val in values:
            await writes.send(self.cfg.topics.values, val.key, orjson.dumps(val.to_record()))

    async def _write(self, partition: int, merger: Merger, changes: list[tuple[str, bytes | None]]) -> None:
        writes = Writes(self.send)
        await self.table.write(writes, partition, changes)
        await writes.wait()
        if self.mergers.get(partition) is not merger:
            return                          # revoked meanwhile: the new owner publishes what it restores
        for fkey, fvalue in merger.take_feedback():     # after the changelog records that hold the same decisions
            self.feedback(fkey, fvalue)
        for kpi, n in merger.cap.overflow.items():
            self.ops.bump(self.ops.overflow, kpi, n)
        merger.cap.overflow.clear()

    async def tick(self, partitions: Iterable[int]) -> None:
        """Timer: restore newly assigned partitions, flush every merger (partitions waited out become final)."""
        for partition in partitions:
            self.merger(partition)
        for partition in list(self.mergers):
            await self.flush(partition)

    def keep(self, partitions: set[int]) -> None:
        """After a rebalance: forget revoked partitions' mergers and per-partition state (the new owner restores
        and re-publishes them)."""
        for partition in list(self.mergers):
            if partition not in partitions:
                del self.mergers[partition]
                self._republish.pop(partition, None)
                for state in self.states:
                    state.drop(partition)

    def latest(self) -> Iterator[KpiValue]:
        """The latest final value of every series this worker merges (what ``/metrics`` exports)."""
        for merger in list(self.mergers.values()):
            yield from list(merger.latest.values())
