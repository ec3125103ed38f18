"""The series cap's admission feedback: stage 2 decides, every stage 1 follows.

Stage 2 (:mod:`streams.merge`) is the single owner of admission per KPI × dimension: first come in
window order, ``max_series`` values per dimension, admitted values pinned for good. It publishes each
dimension's state on the compacted topic ``<prefix>kpi.series`` (key ``kpi|state_key|dim``, value
``{"admitted": [...], "closed": bool}``). Every worker follows that topic from the beginning
(:func:`follow_admissions`) into one :class:`AdmissionView` shared by its stage-1 engines.

Stage 1 uses the view only to fold values stage 2 has *definitively rejected*: the dimension is full
(``closed``, or ``max_series`` values admitted) and the value is not among them. Anything else passes
as its own series and stage 2 decides. A view that lags behind is therefore always safe: it only
makes stage 1 pass values that stage 2 then folds itself.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

import orjson

__all__ = ["AdmissionView", "Decided", "behind_reported_end", "feedback_key", "feedback_value", "follow_admissions"]

log = logging.getLogger("kpimon.admission")


@dataclass(frozen=True, slots=True)
class Decided:
    """Stage 2's admission state of one KPI × dimension, as last published."""

    admitted: frozenset[str]
    closed: bool          # a partition folded values it could not keep (flood): nothing more is admitted

    def full(self, max_series: int) -> bool:
        return self.closed or len(self.admitted) >= max_series


def feedback_key(kpi: str, state_key: str, dim: str) -> str:
    return f"{kpi}|{state_key}|{dim}"


def feedback_value(admitted: list[str], closed: bool) -> bytes:
    return orjson.dumps({"admitted": admitted, "closed": closed})


class AdmissionView:
    """The latest published admission state of every KPI × dimension (what stage 1 reads)."""

    def __init__(self) -> None:
        self._state: dict[tuple[str, str, str], Decided] = {}
        self.version = 0                # bumped on every change (stage 1 caches what it derives from the view)
        self.ready = False              # the topic has been read to its end once (set by the follower)
        self._ready_event: asyncio.Event | None = None

    def get(self, kpi: str, state_key: str, dim: str) -> Decided | None:
        return self._state.get((kpi, state_key, dim))

    def items(self) -> list[tuple[tuple[str, str, str], Decided]]:
        return list(self._state.items())

    def apply(self, key: bytes | str, value: bytes | None) -> None:
        """Apply one record of the feedback topic (a malformed one is ignored)."""
        skey = key.decode() if isinstance(key, bytes) else key
        parts = skey.split("|")
        if len(parts) != 3:
            return
        k = (parts[0], parts[1], parts[2])
        if value is None:
            self._state.pop(k, None)
            return
        try:
            doc: Any = orjson.loads(value)
            new = Decided(frozenset(str(v) for v in doc["admitted"]), bool(doc["closed"]))
        except (orjson.JSONDecodeError, KeyError, TypeError):
            log.error("ignoring malformed admission record %r", skey)
            return
        old = self._state.get(k)
        if old is not None:             # admission only grows: an older record read late cannot shrink it
            new = Decided(old.admitted | new.admitted, old.closed or new.closed)
            if new == old:
                return
        self._state[k] = new
        self.version += 1

    def set_ready(self) -> None:
        self.ready = True
        if self._ready_event is not None:
            self._ready_event.set()

    async def wait_ready(self) -> None:
        if self.ready:
            return
        if self._ready_event is None:
            self._ready_event = asyncio.Event()
        await self._ready_event.wait()


async def follow_admissions(bootstrap: str, topic: str, view: AdmissionView, *, poll_ms: int = 200,
                            quiet_polls: int = 2) -> None:
    """Read every partition of ``topic`` from the beginning into ``view``, forever (cancel to stop).

    ``view`` becomes ready once every partition's position has passed its reported end offset and
    ``quiet_polls`` fetches in a row came back empty: the embedded broker under-reports end offsets
    (shared/FACTS.md), so the reported end alone is not the end.
    """
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None,
                                auto_offset_reset="earliest", fetch_max_wait_ms=poll_ms)
    await consumer.start()
    try:
        parts: list[TopicPartition] = []
        warned = time.monotonic()
        while not parts:
            found = consumer.partitions_for_topic(topic)
            if found:
                parts = [TopicPartition(topic, p) for p in sorted(found)]
                break
            await consumer._client.force_metadata_update()
            if time.monotonic() - warned > 30:
                warned = time.monotonic()
                log.warning("admission topic %s not found yet", topic)
            await asyncio.sleep(0.2)
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        quiet = 0
        while True:
            batch = await consumer.getmany(*parts, timeout_ms=poll_ms, max_records=10_000)
            for msgs in batch.values():
                for m in msgs:
                    if m.key is not None:
                        view.apply(m.key, m.value)
            if view.ready:
                continue
            if batch:
                quiet = 0
                continue
            quiet = 0 if await behind_reported_end(consumer, parts, ends) else quiet + 1
            if quiet >= quiet_polls:
                view.set_ready()
                log.info("admission state read: %d KPI dimensions", len(view.items()))
    finally:
        await consumer.stop()


async def behind_reported_end(consumer: Any, parts: Any, ends: dict[Any, int]) -> bool:
    """Whether any partition's position is still before its reported end offset (a lower bound on the embedded
    broker, exact on Kafka): reading is done only once this is false *and* fetches come back empty."""
    for tp in parts:
        if await consumer.position(tp) < ends[tp]:
            return True
    return False
