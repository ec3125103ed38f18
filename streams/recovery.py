"""Table recovery that does not depend on Faust's changelog wait.

Faust's recovery resumes the changelog partitions on its own consumer and waits, with no timeout,
until ``_slurp_changelogs`` has seen each partition's "highwater" (ListOffsets latest - 1). On the
embedded broker that target is short (it reports the base offset of the last record batch,
shared/FACTS.md), so Faust's pass is incomplete anyway, and after a rebalance that moves partitions
whose changelogs hold data the wait was seen never to end: not one changelog record reached the
recovery for any partition ("No event received for active tp ...").

So Faust is told there is nothing to recover (every active highwater is -1: it never resumes the
changelog partitions and never waits) and each table restores its assigned changelog partitions
itself in ``on_recovery_completed`` (``_StateTable``) with its own consumer, reading until the
position has passed the reported end *and* fetches come back empty. That is correct on any broker:
on Apache Kafka the reported end is exact, here it is a lower bound.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from faust.tables import TableManager
from faust.tables.recovery import Recovery
from faust.types import TP

from streams.admission import behind_reported_end

__all__ = ["NoWaitRecovery", "SelfRecoveringTableManager", "read_changelog_to_end"]

log = logging.getLogger("kpimon.recovery")


class NoWaitRecovery(Recovery):
    """Faust's recovery with active highwaters forced to -1: ``need_recovery()`` is always false."""

    async def _build_highwaters(self, consumer: Any, tps: set[TP], destination: Any, title: str) -> None:
        if title != "active":  # standbys are not used (table_standby_replicas=0); keep Faust's behaviour
            await super()._build_highwaters(consumer, tps, destination, title)
            return
        destination.clear()
        destination.update({tp: -1 for tp in tps})


class SelfRecoveringTableManager(TableManager):
    @property
    def recovery(self) -> Recovery:
        if self._recovery is None:
            self._recovery = NoWaitRecovery(self.app, self, beacon=self.beacon, loop=self.loop)
        return self._recovery


async def read_changelog_to_end(bootstrap: str, tps: Iterable[TP], apply: Callable[[bytes, bytes | None], None],
                                still_wanted: Callable[[], bool] = lambda: True,
                                quiet_polls: int = 2, poll_ms: int = 250) -> int:
    """Apply every record of ``tps`` from the beginning to the true end; returns the number applied.

    Done when every partition's position is at least its reported end offset (a lower bound on
    the embedded broker, exact on Kafka) and then ``quiet_polls`` fetches in a row return nothing.
    Stops early, without applying more, once ``still_wanted()`` is false (a newer rebalance).
    """
    from aiokafka import AIOKafkaConsumer, TopicPartition

    parts = [TopicPartition(tp.topic, tp.partition) for tp in tps]
    if not parts:
        return 0
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None,
                                auto_offset_reset="earliest", fetch_max_wait_ms=100)
    await consumer.start()
    applied = 0
    try:
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        quiet, warned_at = 0, time.monotonic()
        while quiet < quiet_polls:
            batch = await consumer.getmany(*parts, timeout_ms=poll_ms, max_records=10_000)
            if not still_wanted():
                return applied
            for msgs in batch.values():
                for m in msgs:
                    apply(m.key, m.value)
                    applied += 1
            if batch:
                quiet = 0
                continue
            behind = await behind_reported_end(consumer, parts, ends)
            quiet = 0 if behind else quiet + 1
            if behind and time.monotonic() - warned_at > 30:
                warned_at = time.monotonic()
                log.warning("changelog restore of %s: no records for 30 s but still before the reported end %s", parts, ends)
    finally:
        await consumer.stop()
    return applied

