"""The stage-1 agent of one source: messages → its partitions' engines → partials, dead letters, changelog.

Stage 1 takes the records of one source partition a fetched batch at a time, straight from the consumer
(:meth:`Stage1.take_records`, the tap of :mod:`streams.fastpath`; Faust's agent only subscribes the topic); each
message may carry many events (JSON array or NDJSON), all are folded into in-memory window state (:class:`streams.engine.PartitionEngine`, one per
partition), and the changed windows are written to the source's table once per batch, on the changelog partition
of the source partition, so state moves with its partition.

Output before state: a flush sends the partials and this batch's dead letters, awaits them, then writes the
changelog and awaits it (:class:`streams.agents.Writes`). A crash in between re-closes the window from the older
state and re-sends the same partial, never a different one; the consumer acknowledges a batch's offsets only after it returns.

What it is given is all it touches: its source, its table, the admission view, the counters, a send function and
the topic names. The worker calls :meth:`Stage1.agent` (the Faust agent), :meth:`Stage1.tick` (timer) and
:meth:`Stage1.keep` (rebalance).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson

from streams.admission import AdmissionView
from streams.agents import Agent, FaultInjection, SendFn, Writes, fail_loudly, fail_worker
from streams.config import WorkerConfig
from streams.engine import PartitionEngine
from streams.events import DeadLetter, decode_message
from streams.exporter import OpsCounters
from streams.freshness import FreshnessMonitor
from streams.plan import SourcePlan
from streams.tables import StateTable

__all__ = ["Stage1"]


class Stage1:
    """Stage 1 of one source topic: an engine per assigned partition, restored from the source's table."""

    def __init__(self, source: SourcePlan, table: StateTable, cfg: WorkerConfig, *, admissions: AdmissionView,
                 ops: OpsCounters, send: SendFn, groups: Mapping[str, str], faults: FaultInjection,
                 freshness: FreshnessMonitor | None = None) -> None:
        self.source, self.table, self.cfg = source, table, cfg
        self.admissions, self.ops, self.send, self.groups, self.faults = admissions, ops, send, groups, faults
        self.engines: dict[int, PartitionEngine] = {}
        self.freshness = freshness      # told each batch's newest event time and time jump (streams.freshness)
        # one flush at a time per engine: the agent and the timer both flush, and a flush awaits its sends
        self._locks: dict[int, asyncio.Lock] = {}

    @property
    def agent(self) -> Agent:
        """The Faust agent over the source topic (an exception out of it ends the process)."""
        async def stage1(stream: Any) -> None:
            await self.admissions.wait_ready()      # after a restart, fold nothing before reading stage 2's decisions
            async for batch in stream.take_events(self.cfg.take_max, within=self.cfg.take_within_s):
                await self._batch([event.message for event in batch])
        stage1.__name__ = f"stage1_{self.source.name}"
        return fail_loudly(f"stage 1 of source {self.source.name!r}", stage1)

    async def take_records(self, _tp: Any, records: Sequence[Any]) -> None:
        """The tap of :mod:`streams.fastpath`: one partition's fetched records, folded as one batch; returns once
        their partials, dead letters and state are written (then the consumer acknowledges their offsets)."""
        try:
            await self.admissions.wait_ready()
            await self._batch(records)
        except Exception:
            fail_worker(f"stage 1 of source {self.source.name!r}")

    async def _batch(self, messages: Sequence[Any]) -> None:
        touched: dict[int, PartitionEngine] = {}
        writes = Writes(self.send)      # this batch's own sends: another coroutine's wait() never takes them
        name = self.source.name
        check, limit = self.faults.check, self.cfg.max_message_bytes
        n_messages = n_events = 0
        try:
            for msg in messages:
                check("stage1")
                engine = touched.get(msg.partition) or self.engine(msg.partition)
                touched[msg.partition] = engine
                if msg.offset <= engine.applied:
                    engine.process([], msg.offset)      # a replay the state already holds: skipped whole
                    continue
                n_messages += 1
                events, dead, origins = decode_message(msg.value, limit)
                n_events += len(events)
                dead += engine.process(events, msg.offset, origins)
                if dead:
                    await self._dead_letters(writes, msg, dead)
        finally:
            self.ops.bump(self.ops.messages, name, n_messages)     # once per batch, not per message
            self.ops.bump(self.ops.events, name, n_events)
        for engine in touched.values():
            if self.freshness is not None:     # before the flush sends the windows it closes
                self.freshness.seen(name, engine.partition, engine.max_ts, engine.take_jump())
            await self.flush(engine, writes)

    def engine(self, partition: int) -> PartitionEngine:
        """The partition's engine, restored from the table on first use."""
        engine = self.engines.get(partition)
        if engine is None:
            engine = PartitionEngine(self.source, partition, speedup=self.cfg.speedup, idle_ms=self.cfg.idle_ms,
                                     admissions=self.admissions)
            engine.restore(self.table.records(partition))
            self.engines[partition] = engine
        return engine

    async def _dead_letters(self, writes: Writes, msg: Any, dead: Sequence[DeadLetter]) -> None:
        now = int(time.time() * 1000)
        topic = self.source.topic
        for d in dead:
            self.ops.bump(self.ops.dead_letters, (self.source.name, d.reason))
            await writes.send(self.cfg.topics.dead_letters, topic.encode(), d.to_record(
                topic=topic, partition=msg.partition, offset=msg.offset, received_ms=now))

    async def flush(self, engine: PartitionEngine, writes: Writes | None = None) -> None:
        """Advance the engine's watermark and write what changed: partials (and ``writes``' dead letters), then state."""
        async with self._locks.setdefault(engine.partition, asyncio.Lock()):
            writes = writes or Writes(self.send)
            engine.advance()
            for partial in engine.take_partials():
                await writes.send(self.cfg.topics.partials, self.groups[partial.kpi].encode(),
                                  orjson.dumps(partial.to_record()))
            await writes.wait()          # output (and this batch's dead letters) before the state that records it
            await self.table.write(writes, engine.partition, engine.take_changes())
            await writes.wait()          # the state before this batch's offsets can be committed
            self._count(engine)

    def _count(self, engine: PartitionEngine) -> None:
        st, ops, name = engine.stats, self.ops, self.source.name
        for attr in ("closes", "revisions", "late_dropped", "skipped", "folded"):
            data = getattr(st, attr)
            for kpi, n in data.items():
                ops.bump(getattr(ops, attr), kpi, n)
            data.clear()
        if st.unmatched:
            ops.bump(ops.unmatched, name, st.unmatched)
            st.unmatched = 0
        if st.replayed:
            ops.bump(ops.replayed, name, st.replayed)
            st.replayed = 0
        if engine.watermark is not None:
            ops.watermarks[name] = max(ops.watermarks.get(name, 0.0), engine.watermark / 1000)

    async def tick(self, partitions: Iterable[int]) -> None:
        """Timer: flush the assigned partitions' engines (idle watermarks close windows without events)."""
        for partition in partitions:
            await self.flush(self.engine(partition))

    def keep(self, partitions: set[int]) -> None:
        """After a rebalance: forget the engines of revoked partitions (their new owner restores them)."""
        for partition in list(self.engines):
            if partition not in partitions:
                del self.engines[partition]
