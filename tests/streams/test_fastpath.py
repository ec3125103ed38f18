"""The consumer tap (streams.fastpath): what it acknowledges for Faust's committer, and that the worker uses it.

The end-to-end guarantees through the tap (exactly-once through kill -9, rebalances) are the torture,
exactly-once and scale-out tests, which run the real worker; here: the bookkeeping a commit relies on."""

from __future__ import annotations

from collections import defaultdict
from types import SimpleNamespace
from typing import Any

from faust.types import TP

from streams.fastpath import TappedApp, TappedConsumer

TP0 = TP("events.orders", 0)


def _consumer(committed: int | None = None) -> Any:
    c = TappedConsumer.__new__(TappedConsumer)      # only the ack bookkeeping, no broker
    c._read_offset = defaultdict(lambda: None)
    c._committed_offset = defaultdict(lambda: committed)
    c._acked_index = defaultdict(set)
    c._acked = defaultdict(list)
    c._n_acked = 0
    return c


def _records(*offsets: int) -> list[Any]:
    return [SimpleNamespace(offset=o, value=b"{}") for o in offsets]


def test_a_batch_acks_every_offset_through_its_last_gaps_included() -> None:
    c = _consumer()
    c._ack_batch(TP0, _records(10, 11, 14))
    assert c._acked[TP0] == [10, 11, 12, 13, 14]
    assert c._n_acked == 5 and c._read_offset[TP0] == 14
    c._ack_batch(TP0, _records(17))          # the offsets between two batches count as read too
    assert c._acked[TP0][-3:] == [15, 16, 17]


def test_a_re_read_batch_is_not_acked_twice() -> None:
    c = _consumer()
    c._ack_batch(TP0, _records(0, 1, 2))
    c._read_offset[TP0] = None               # a seek back (rebalance): the same records come again
    c._ack_batch(TP0, _records(1, 2, 3))
    assert c._acked[TP0] == [0, 1, 2, 3] and c._n_acked == 4


def test_nothing_below_the_committed_offset_is_acked() -> None:
    c = _consumer(committed=5)
    c._ack_batch(TP0, _records(3, 4, 5, 6))
    assert c._acked[TP0] == [5, 6]


def test_the_worker_taps_every_source_topic() -> None:
    from pathlib import Path

    from catalog import load_catalog
    from kpimon.settings import Settings
    from kpimon.wiring import build_worker

    catalog = load_catalog(Path(__file__).resolve().parents[2] / "examples" / "shop.yaml", channels=False)
    worker = build_worker(catalog, Settings(broker="127.0.0.1:1"))
    assert isinstance(worker.app, TappedApp)
    assert set(worker.app.taps) == {s.topic for s in worker.plan.sources}
