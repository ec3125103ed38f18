"""The series cap, in one place: stage 2 decides (:class:`SeriesCap`), every stage 1 follows (:class:`AdmissionView`).

Stage 2's merger holds one :class:`SeriesCap`, the single owner of admission per KPI × dimension: first come in
window order, ``max_series`` values per dimension (:func:`dimension_full`), admitted values pinned for good;
everything else of the dimension is merged into ``<dim>=__other__`` (:data:`OTHER`) and counted
(:attr:`SeriesCap.overflow`, ``kpimon_series_overflow_total``). A partial whose partition folded values at its
memory bound (``folded``) closes the dimension from that merge on: nothing is admitted on it any more, so no value
a partition may have folded becomes a series later; admitted series that partition may have folded there without
knowing of their admission get no value for that window (:meth:`SeriesCap.unsafe`). The state is checkpointed in
the stage-2 changelog (:meth:`SeriesCap.take_changes`) and published (:meth:`SeriesCap.take_feedback`): stage 2
publishes each dimension's state on the compacted topic ``<prefix>kpi.series`` (key ``kpi|state_key|dim``, value
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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from streams.changelog import admission_key
from streams.plan import Plan
from streams.records import series_key, split_series

__all__ = ["OTHER", "UNSEEN", "Admission", "AdmissionView", "Decided", "SeriesCap", "behind_reported_end",
           "dimension_full", "feedback_key", "feedback_value", "follow_admissions"]

log = logging.getLogger("kpimon.admission")
OTHER = "__other__"     # the series value every value of a full dimension is merged into
UNSEEN = 2**62          # first window of a value adopted from the feedback topic but not in any window here


def dimension_full(admitted: int, closed: bool, max_series: int) -> bool:
    """Whether a dimension admits no more values: closed by a flood, or ``max_series`` values admitted.

    >>> dimension_full(3, False, 3), dimension_full(0, True, 3), dimension_full(2, False, 3)
    (True, True, False)
    """
    return closed or admitted >= max_series


@dataclass(frozen=True, slots=True)
class Decided:
    """Stage 2's admission state of one KPI × dimension, as last published."""

    admitted: frozenset[str]
    closed: bool          # a partition folded values it could not keep (flood): nothing more is admitted

    def full(self, max_series: int) -> bool:
        return dimension_full(len(self.admitted), self.closed, max_series)


@dataclass(slots=True)
class Admission:
    """Stage 2's admission state of one KPI × dimension (pinned: values are never un-admitted)."""

    sk: str
    admitted: dict[str, int] = field(default_factory=dict)   # value -> first window start, in admission order
    closed: bool = False                  # a partition folded at its memory bound: admit nothing more
    other: int | None = None              # first window with an __other__ series

    def full(self, max_series: int) -> bool:
        return dimension_full(len(self.admitted), self.closed, max_series)

    def to_doc(self) -> dict[str, Any]:
        """Its stage-2 changelog document (key :func:`streams.changelog.admission_key`)."""
        return {"sk": self.sk, "admitted": [[v, ws] for v, ws in self.admitted.items()], "closed": self.closed,
                "other": self.other}

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Admission:
        return cls(doc["sk"], {str(v): int(ws) for v, ws in doc["admitted"]}, bool(doc["closed"]), doc.get("other"))


class SeriesCap:
    """The admission state of every KPI × dimension one merger merges (see the module docstring)."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.dims: dict[tuple[str, str], Admission] = {}     # (KPI, dimension) -> state
        self.overflow: dict[str, int] = {}       # KPI -> windows × dimensions whose first merge folded values
        self._dirty: set[tuple[str, str]] = set()            # changed: write to the changelog
        self._fb_dirty: set[tuple[str, str]] = set()         # admitted set or closed changed: publish
        self._warned: set[tuple[str, str]] = set()
        self._published: AdmissionView | None = None          # see adopt()

    def get(self, kpi: str, dim: str) -> Admission | None:
        return self.dims.get((kpi, dim))

    def admission(self, kpi: str, dim: str) -> Admission:
        """The dimension's state, new (or reset after the KPI was redefined) with what was published adopted."""
        sk = self.plan.kpis[kpi].state_key
        adm = self.dims.get((kpi, dim))
        if adm is None or adm.sk != sk:          # new, or left from an earlier definition of the KPI
            adm = self.dims[(kpi, dim)] = Admission(sk)
            self._adopt(kpi, dim, adm)
        return adm

    def _adopt(self, kpi: str, dim: str, adm: Admission) -> None:
        decided = None if self._published is None else self._published.get(kpi, adm.sk, dim)
        if decided is None:
            return
        new = [v for v in sorted(decided.admitted) if v not in adm.admitted]
        if new or (decided.closed and not adm.closed):
            adm.admitted.update(dict.fromkeys(new, UNSEEN))
            adm.closed = adm.closed or decided.closed
            self._dirty.add((kpi, dim))

    def apply(self, kpi: str, ws: int, merged: dict[str, Any], merge: Callable[[Any, Any], Any], *,
              parts: Mapping[str, Mapping[str, Any]], folded: Mapping[str, Mapping[str, list[int]]],
              first: bool) -> tuple[dict[str, Any], set[str]]:
        """Admit and fold one window's merged series (``first``: its first final merge, counted in ``overflow``);
        also returns the admitted series that have no exact value in it (see :meth:`unsafe`)."""
        kp = self.plan.kpis[kpi]
        out: dict[str, Any] = {}
        unknown: set[str] = set()
        by_dim: dict[str, list[str]] = {}
        for skey in sorted(merged):
            if skey == "":
                out[skey] = merged[skey]
            else:
                by_dim.setdefault(split_series(skey)[0], []).append(skey)
        for dim, skeys in by_dim.items():
            adm = self.admission(kpi, dim)
            key = (kpi, dim)
            unsafe = self.unsafe(kpi, dim, adm, parts, folded)
            other = series_key(dim, OTHER)
            for skey in skeys:
                value = split_series(skey)[1]
                if value != OTHER and value not in unsafe and (value in adm.admitted or not adm.full(kp.max_series)):
                    if value not in adm.admitted:
                        self._fb_dirty.add(key)
                    if adm.admitted.get(value, UNSEEN) > ws:
                        adm.admitted[value] = min(adm.admitted.get(value, UNSEEN), ws)
                        self._dirty.add(key)
                    out[skey] = merged[skey]
                    continue
                out[other] = merged[skey] if other not in out else merge(out[other], merged[skey])
            unknown.update(series_key(dim, v) for v in unsafe)
            if other in out:
                if first:
                    self.overflow[kpi] = self.overflow.get(kpi, 0) + 1
                if adm.other is None or adm.other > ws:
                    adm.other = ws
                    self._dirty.add(key)
        return out, unknown

    def unsafe(self, kpi: str, dim: str, adm: Admission, parts: Mapping[str, Mapping[str, Any]],
               folded: Mapping[str, Mapping[str, list[int]]]) -> set[str]:
        """Admitted values of ``dim`` that a partition may have folded in this window at its memory bound.

        Such a partial closes the dimension. Its ``[lo, hi]`` says how many admitted values the partition knew of
        at its first fold there and at its last event of the dimension: it never folds a value it knew of, and
        while folding it takes no new undecided values, so a value it had not heard of even at the end (seq ≥ hi)
        was folded in this window if and only if it is missing from the partial's own series. Values heard of
        during the window (lo ≤ seq < hi) may have been folded before: unsafe too.
        """
        spans = {part: f[dim] for part, f in folded.items() if dim in f}
        if not spans:
            return set()
        if not adm.closed:
            adm.closed = True
            self._dirty.add((kpi, dim))
            self._fb_dirty.add((kpi, dim))
            log.warning("%s: a partition met more new %r values than it can hold undecided; the dimension admits no "
                        "more values (%d admitted)", kpi, dim, len(adm.admitted))
        unsafe: set[str] = set()
        order = list(adm.admitted)
        for part, (lo, hi) in spans.items():
            series = parts.get(part, {})
            unsafe.update(v for seq, v in enumerate(order)
                          if seq >= lo and not (seq >= hi and series_key(dim, v) in series))
        if unsafe and (kpi, dim) not in self._warned:
            self._warned.add((kpi, dim))
            log.warning("%s: a partition folded %r values at its memory bound before it heard that %s were admitted; "
                        "those series have no value in the windows concerned (their events are in __other__)",
                        kpi, dim, sorted(unsafe))
        return unsafe

    # ---- persistence (stage-2 changelog) and feedback ------------------------------------------
    def take_changes(self) -> list[tuple[str, dict[str, Any]]]:
        out = [(admission_key(kpi, dim), self.dims[(kpi, dim)].to_doc()) for kpi, dim in sorted(self._dirty)]
        self._dirty.clear()
        return out

    def take_feedback(self) -> list[tuple[bytes, bytes]]:
        """Records for the admission topic (key ``kpi|state_key|dim``) whose admitted set or closed flag changed.

        Write them after :meth:`take_changes`' records: stage 1 must never learn of a decision the stage-2
        changelog could lose (a restarted stage 2 also adopts what was published, see :meth:`adopt`).
        """
        out = []
        for kpi, dim in sorted(self._fb_dirty):
            adm = self.dims[(kpi, dim)]
            out.append((feedback_key(kpi, adm.sk, dim).encode(), feedback_value(list(adm.admitted), adm.closed)))
        self._fb_dirty.clear()
        return out

    def adopt(self, view: AdmissionView) -> None:
        """After a restore: take in decisions published on the admission topic that the changelog lacks.

        The changelog and the topic are separate writes; stage 1 may already fold by a published decision,
        so stage 2 must keep it (a value admitted only there gets its first window when it is next seen).
        Only the KPI dimensions this merger holds or comes to merge take them in.
        """
        self._published = view
        for (kpi, dim), adm in self.dims.items():
            self._adopt(kpi, dim, adm)

    def restore(self, kpi: str, dim: str, doc: Mapping[str, Any]) -> bool:
        """Take in one changelog document; False if it belongs to another definition of the KPI (ignored).
        Restored states are published again (a publication may have been lost)."""
        kp = self.plan.kpis.get(kpi)
        if kp is None or kp.state_key != doc["sk"] or dim not in kp.dims:
            return False
        self.dims[(kpi, dim)] = Admission.from_doc(doc)
        self._fb_dirty.add((kpi, dim))
        return True

    def admit_seen(self, kpi: str, dim: str, value: str, ws: int) -> None:
        """A value a final window of a changelog written before admission records existed holds: admitted."""
        adm = self.admission(kpi, dim)
        adm.admitted[value] = min(adm.admitted.get(value, ws), ws)
        self._dirty.add((kpi, dim))
        self._fb_dirty.add((kpi, dim))


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
