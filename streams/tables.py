"""The worker's changelog-backed state tables: one per source (stage 1) and one for stage 2.

Keys follow the one scheme of :mod:`streams.changelog` (``<partition>|<key>``); the stages read and write their
partition's records through :meth:`StateTable.records` and :meth:`StateTable.write`, never the raw store.

Faust's own changelog recovery is switched off (:mod:`streams.recovery`): it stops short on the embedded broker
(end offsets are under-reported, shared/FACTS.md) and its unbounded wait stalled rebalances. On every assignment
each table reads its assigned changelog partitions from the beginning until the consumer is past the reported end
and fetches come back empty, which is correct on any broker, then tells the worker (``on_recovered``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import faust
from faust.types import TP

from streams.agents import Writes
from streams.changelog import partition_records, table_key
from streams.recovery import read_changelog_to_end

__all__ = ["StateTable", "make_table"]


class StateTable(faust.Table[bytes, bytes]):
    """A Faust table that restores its assigned changelog partitions itself, then tells the worker."""

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

    def records(self, partition: int) -> dict[str, bytes]:
        """This partition's records, keyed without the partition (see :mod:`streams.changelog`)."""
        return partition_records(list(self.data.items()), partition)

    async def write(self, writes: Writes, partition: int, changes: Iterable[tuple[str, bytes | None]]) -> None:
        """Apply ``changes`` (key without the partition, value or None to delete) to the store and send them to
        the changelog partition ``partition`` (awaited with ``writes``)."""
        changelog = self.changelog_topic.get_topic_name()
        for key, value in changes:
            bkey = table_key(partition, key)
            if value is None:
                self.data.pop(bkey, None)
            else:
                self.data[bkey] = value
            await writes.send(changelog, bkey, value, partition)


def make_table(app: faust.App, name: str, partitions: int, bootstrap: str,
               on_recovered: Callable[[set[TP]], None]) -> StateTable:
    table = StateTable(app, name=name, default=None, beacon=app.tables.beacon, partitions=partitions,
                       key_type=bytes, value_type=bytes)
    table.on_recovered = on_recovered
    table.bootstrap = bootstrap
    app.tables.add(table)
    return table
