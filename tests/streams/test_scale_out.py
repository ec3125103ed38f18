"""Several workers in one consumer group, and a worker killed with SIGKILL mid-stream, on the real broker."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from kpimon.embedded import Broker
from tests.fixtures.kafka_io import produce, read_until
from tests.fixtures.waiting import eventually
from tests.fixtures.worker import WorkerFactory, WorkerProcess
from tests.streams.test_pipeline_e2e import MIN, T0, final_values, has

CATALOG = Path(__file__).with_name("e2e.yaml")
SCALE_CATALOG = Path(__file__).with_name("scale.yaml")
pytestmark = pytest.mark.slow


def batches(n_windows: int, per_window: int, seed: int) -> list[list[dict[str, Any]]]:
    rng = random.Random(seed)
    out: list[list[dict[str, Any]]] = []
    for w in range(n_windows):
        evs = [{"ts": T0 + w * MIN + rng.randrange(MIN), "region": rng.choice("abcd"), "amount": rng.randrange(1, 100)}
               for _ in range(per_window)]
        out.extend(evs[i:i + 25] for i in range(0, per_window, 25))
    return out


def all_of(*checks: Callable[[list[dict[str, Any]]], bool]) -> Callable[[list[dict[str, Any]]], bool]:
    """All of ``checks`` hold: KPIs without a ratio between them are merged in different ``kpi.partials``
    partitions (maybe by different workers), so one KPI's last window says nothing of the other's."""
    return lambda records: all(check(records) for check in checks)


def ready_counts(workers: list[WorkerProcess]) -> list[dict[str, float]]:
    """Per worker, ``kpimon_partitions_ready`` by topic."""
    from prometheus_client.parser import text_string_to_metric_families

    return [{s.labels["topic"]: s.value for fam in text_string_to_metric_families(w.metrics())
             for s in fam.samples if s.name == "kpimon_partitions_ready"} for w in workers]


def shared_and_restored(workers: list[WorkerProcess], partitions: dict[str, int]) -> bool:
    """Every worker owns some partitions of each topic, restored, and together exactly all of them."""
    counts = ready_counts(workers)
    return all(all(c.get(t, 0) > 0 for c in counts) and sum(c.get(t, 0) for c in counts) == n
               for t, n in partitions.items())


def test_two_workers_share_partitions_and_totals_stay_exact(broker: Broker, worker_factory: WorkerFactory) -> None:
    w1 = worker_factory(SCALE_CATALOG, "scale")
    w2 = worker_factory(SCALE_CATALOG, "scale", topic_prefix="scale.")
    msgs = batches(4, 400, seed=11)
    asyncio.run(produce(broker.bootstrap, "t.scale", [orjson.dumps(b) for b in msgs]))
    records = asyncio.run(read_until(broker.bootstrap, "scale.kpi.values",
                                     all_of(has("sc_count", T0 + 6 * MIN), has("sc_sum", T0 + 6 * MIN)), timeout_s=90))
    counts = final_values(records, "sc_count")
    sums = final_values(records, "sc_sum")
    events = [e for b in msgs for e in b]
    for w in range(4):
        ws = T0 + w * MIN
        in_w = [e for e in events if ws <= e["ts"] < ws + MIN]
        assert counts[(ws / 1000, "")]["value"] == len(in_w)
        assert sums[(ws / 1000, "")]["value"] == sum(e["amount"] for e in in_w)
        for region in "abcd":
            assert counts[(ws / 1000, f"region={region}")]["value"] == sum(1 for e in in_w if e["region"] == region)
    # both workers did part of the work: each read some of the four partitions
    per_worker = [w.sample("kpimon_events_total", source="scale") or 0 for w in (w1, w2)]
    assert all(n > 0 for n in per_worker), per_worker
    assert sum(per_worker) >= len(events)


def test_kill_9_mid_stream_loses_no_closed_window_and_counts_exactly(broker: Broker, worker_factory: WorkerFactory) -> None:
    w = worker_factory(CATALOG, "crash", speedup=60.0, idle_ms=3000)
    msgs = batches(6, 500, seed=5)
    msgs.sort(key=lambda b: min(e["ts"] for e in b))
    stop = threading.Event()

    def feed() -> None:
        for i in range(0, len(msgs), 10):
            asyncio.run(produce(broker.bootstrap, "t.crash", [orjson.dumps(b) for b in msgs[i:i + 10]]))
            time.sleep(0.15)
        stop.set()

    feeder = threading.Thread(target=feed)
    feeder.start()
    time.sleep(2.0)
    w.kill9()                       # mid-stream: changelog and offsets as the broker had them at that instant
    w.start()                       # same app id: recovers tables from changelogs, resumes from committed offsets
    feeder.join()
    records = asyncio.run(read_until(broker.bootstrap, "crash.kpi.values",
                                     all_of(has("c_count", T0 + 8 * MIN), has("c_sum", T0 + 8 * MIN)), timeout_s=120))
    counts = final_values(records, "c_count")
    sums = final_values(records, "c_sum")
    events = [e for b in msgs for e in b]
    for win in range(6):
        ws = T0 + win * MIN
        in_w = [e for e in events if ws <= e["ts"] < ws + MIN]
        assert (ws / 1000, "") in counts, f"window {win} lost"
        assert counts[(ws / 1000, "")]["value"] == len(in_w), f"window {win}"
        assert sums[(ws / 1000, "")]["value"] == sum(e["amount"] for e in in_w)


def test_second_worker_joining_restores_moved_state_exactly(broker: Broker, worker_factory: WorkerFactory) -> None:
    """Worker 2 joins after worker 1 wrote state for every partition: the moved partitions restore it from
    their changelogs (kpimon reads them itself, streams/recovery.py) and the totals stay exact."""
    w1 = worker_factory(SCALE_CATALOG, "rb", idle_ms=600_000)   # windows close on event time only
    msgs = batches(4, 400, seed=21)
    msgs.sort(key=lambda b: min(e["ts"] for e in b))
    half = len(msgs) // 2
    asyncio.run(produce(broker.bootstrap, "t.rebalance", [orjson.dumps(b) for b in msgs[:half]]))
    first = sum(len(b) for b in msgs[:half])
    eventually(lambda: (w1.sample("kpimon_events_total", source="rebalance") or 0) >= first, 60,
               f"worker 1 counting the first {first} events")
    time.sleep(2)
    w2 = worker_factory(SCALE_CATALOG, "rb", idle_ms=600_000, topic_prefix="rb.")
    # the group has rebalanced and the moved partitions are restored: each worker owns some, none twice
    eventually(lambda: shared_and_restored([w1, w2], {"t.rebalance": 4, "rb.kpi.partials": 4}), 90,
               lambda: f"partitions shared and restored ({ready_counts([w1, w2])})\n{w2.log_tail()}")
    closer = [{"ts": T0 + 6 * MIN, "region": "a", "amount": 1}]
    asyncio.run(produce(broker.bootstrap, "t.rebalance", [orjson.dumps(b) for b in msgs[half:]]))
    for p in range(4):
        asyncio.run(produce(broker.bootstrap, "t.rebalance", [orjson.dumps(closer)], partition=p))
    records = asyncio.run(read_until(broker.bootstrap, "rb.kpi.values",
                                     all_of(has("rb_count", T0 + 3 * MIN), has("rb_sum", T0 + 3 * MIN)), timeout_s=120))
    counts, sums = final_values(records, "rb_count"), final_values(records, "rb_sum")
    events = [e for b in msgs for e in b]
    for w in range(4):
        ws = T0 + w * MIN
        in_w = [e for e in events if ws <= e["ts"] < ws + MIN]
        assert counts[(ws / 1000, "")]["value"] == len(in_w), f"window {w}"
        assert sums[(ws / 1000, "")]["value"] == sum(e["amount"] for e in in_w), f"window {w}"
    per_worker = [w.sample("kpimon_events_total", source="rebalance") or 0 for w in (w1, w2)]
    assert all(n > 0 for n in per_worker), per_worker
