"""Source records to stage 1 a fetched batch at a time, past Faust's per-message machinery.

Faust delivers every Kafka message on its own: its drain loop awaits ``wait_first(callback(message), …)`` (two
asyncio tasks per message), the conductor puts the message on a channel queue, the stream builds an Event, the
agent takes it and acks it. On one-event-per-message input that cost (tens of µs per message) was the whole
worker's limit (~12k events/s against ~260k for a raw decoding consumer on the same topic).

:class:`TappedConsumer` keeps everything else Faust does — group membership, the assignment co-partitioned with
the tables, changelogs, recovery, rebalances, offset commits — and changes one step: records of a *tapped*
topic (a stage-1 source) are handed to that source's tap as the fetched list per partition, awaited there
(the tap folds them and writes partials and state, :meth:`streams.stage1.Stage1.take_records`), and only then
marked acknowledged for Faust's committer. So a committed offset still never runs ahead of the state written
for it (kill -9 safe, as with the agent path), and the exactly-once offsets in the state still skip replays.

Rebalances: a batch is tapped only while the consumer's flow is active and its generation is the one the fetch
was made in; records skipped because a rebalance started are read again, since Faust seeks every partition to
its committed offset when the rebalance ends (``Recovery._resume_streams``). Acks of a batch whose tap ran
across a generation change are dropped for the same reason (the state's offsets make the re-read a no-op).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import faust
from faust.transport.drivers.aiokafka import Consumer
from faust.types import TP

__all__ = ["Tap", "TappedApp", "TappedConsumer"]

#: ``tap(tp, records)``: fold the fetched records (aiokafka ``ConsumerRecord``: ``.offset``, ``.value``) of one
#: partition, in offset order, and return once their effects are durably written
Tap = Callable[[TP, Sequence[Any]], Awaitable[None]]


class TappedConsumer(Consumer):
    """Faust's aiokafka consumer, with per-partition batch delivery for the topics in :attr:`taps`."""

    taps: dict[str, Tap]

    async def _wait_next_records(self, timeout: float) -> tuple[Any, Any]:
        records, active = await super()._wait_next_records(timeout)
        taps = getattr(self, "taps", None)
        if not records or not taps or not self.flow_active:
            return records, active          # (flow stopped: Faust seeks back and drops the whole fetch)
        generation = self.app.consumer_generation_id
        rest = {}
        for tp, batch in records.items():
            tap = taps.get(tp.topic)
            if tap is None:
                rest[tp] = batch
                continue
            if not batch or not self.flow_active or self.app.consumer_generation_id != generation:
                continue                    # a rebalance started: read again after its seek to committed offsets
            if active is not None and tp not in active and tp not in self._buffered_partitions:
                continue
            await tap(tp, batch)
            if self.app.consumer_generation_id == generation:
                self._ack_batch(tp, batch)
        return rest, active

    def _ack_batch(self, tp: TP, batch: Sequence[Any]) -> None:
        """Mark every offset up to the batch's last as acknowledged (what ``Consumer.ack`` does per message;
        offsets between records, e.g. compacted away, count as read, as Faust's own gap tracking does)."""
        last = batch[-1].offset
        read = self._read_offset[tp]
        low = batch[0].offset if read is None else min(batch[0].offset, read + 1)
        committed = self._committed_offset[tp]
        if committed is not None:
            low = max(low, committed)
        index = self._acked_index[tp]
        offsets = [o for o in range(low, last + 1) if o not in index]
        if offsets:
            index.update(offsets)
            self._acked[tp].extend(offsets)
            self._n_acked += len(offsets)
        self._read_offset[tp] = last


class TappedApp(faust.App):
    """A Faust app whose consumer is a :class:`TappedConsumer`; ``taps`` maps a topic name to its tap."""

    taps: dict[str, Tap]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.taps = {}

    def _new_consumer(self) -> Any:
        consumer = TappedConsumer(self.transport, callback=self.topics.on_message,
                                  on_partitions_revoked=self._on_partitions_revoked,
                                  on_partitions_assigned=self._on_partitions_assigned,
                                  beacon=self.beacon, loop=self.transport.loop)
        consumer.taps = self.taps
        return consumer
