"""Exactly-once results through repeated kill -9, on the real broker with real ``kpimon worker`` processes.

A paced producer writes 60 one-minute windows of events to 4 partitions while the worker is SIGKILLed seven
times at seeded random moments — some during start-up, group join and changelog restore, some mid-stream —
and restarted each time. The values on ``kpi.values`` are then compared, window by window and series by
series, with the values computed directly from the input (the uninterrupted answer):

- every window of every KPI and series is there, and its latest revision equals the true value;
- no (kpi, labels, window, revision) was ever published with two different values.

Windows close on event time only (``idle_ms`` is long): a last message per partition, ten minutes after the
data, closes them, so the test does not depend on wall-clock idling.
"""

from __future__ import annotations

import asyncio
import math
import random
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson
import pytest

from kpimon.embedded import Broker
from tests.fixtures.kafka_io import produce_to, read_all, read_until
from tests.fixtures.worker import WorkerFactory

CATALOG = Path(__file__).with_name("torture.yaml")
MIN = 60_000
WINDOWS = 60
PARTITIONS = 4
PER_WINDOW = 40            # events per window and partition
PER_MESSAGE = 10
REGIONS = ("east", "west", "north", "south")
pytestmark = pytest.mark.slow


def make_input(t0: int, seed: int) -> dict[int, list[list[dict[str, Any]]]]:
    """Messages per partition, in event-time order within each partition."""
    rng = random.Random(seed)
    out: dict[int, list[list[dict[str, Any]]]] = {p: [] for p in range(PARTITIONS)}
    for p in range(PARTITIONS):
        for w in range(WINDOWS):
            evs = sorted(({"ts": t0 + w * MIN + rng.randrange(MIN), "region": rng.choice(REGIONS),
                           "status": rng.choice(("paid", "paid", "cart")), "amount": rng.randrange(1, 1000),
                           "user": f"u{rng.randrange(300)}"} for _ in range(PER_WINDOW)), key=lambda e: e["ts"])
            out[p].extend(evs[i:i + PER_MESSAGE] for i in range(0, PER_WINDOW, PER_MESSAGE))
    return out


def expected(events: list[dict[str, Any]], t0: int) -> dict[tuple[str, str, float], float]:
    """The true value of every (kpi, series, window_start seconds)."""
    out: dict[tuple[str, str, float], float] = {}
    by_window: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for e in events:
        by_window[(e["ts"] - t0) // MIN].append(e)
    for w, evs in by_window.items():
        ws = (t0 + w * MIN) / 1000
        for series, sel in [("", evs)] + [(f"region={r}", [e for e in evs if e["region"] == r]) for r in REGIONS]:
            paid = sum(1 for e in sel if e["status"] == "paid")
            out["tt_count", series, ws] = len(sel)
            out["tt_sum", series, ws] = sum(e["amount"] for e in sel)
            out["tt_paid", series, ws] = paid
            out["tt_rate", series, ws] = paid / len(sel) if sel else math.nan
        out["tt_max", "", ws] = max(e["amount"] for e in evs)
        out["tt_users", "", ws] = len({e["user"] for e in evs})
    return out


def series_of(record: dict[str, Any]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(record["labels"].items()))


def test_repeated_kill_9_loses_nothing_and_never_publishes_two_values(broker: Broker, worker_factory: WorkerFactory, tmp_path: Path) -> None:
    rng = random.Random(20261201)
    t0 = (int(time.time() * 1000) // MIN - 3 * WINDOWS) * MIN       # three hours ago, on a minute
    messages = make_input(t0, seed=7)
    closers = {p: [{"ts": t0 + (WINDOWS + 10) * MIN, "region": "east", "status": "cart", "amount": 1,
                    "user": "closer"}] for p in range(PARTITIONS)}
    done = threading.Event()

    def feed() -> None:           # ~2 windows per second over the 4 partitions, while the worker is killed
        step = 2 * PER_WINDOW // PER_MESSAGE
        for i in range(0, len(messages[0]), step):
            asyncio.run(produce_to(broker.bootstrap, "t.torture",
                                   [(p, orjson.dumps(m)) for p in range(PARTITIONS) for m in messages[p][i:i + step]]))
            time.sleep(0.5)
        asyncio.run(produce_to(broker.bootstrap, "t.torture",
                               [(p, orjson.dumps(closers[p])) for p in range(PARTITIONS)]))
        done.set()

    w = worker_factory(CATALOG, "torture", idle_ms=600_000, partition_wait_s=3.0)
    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    kills = 0
    while kills < 7:
        # early kills land in start-up, group join and restore; later ones mid-stream
        time.sleep(rng.choice([rng.uniform(0.0, 2.0), rng.uniform(2.0, 9.0)]))
        w.kill9()
        kills += 1
        w.start(wait=kills % 2 == 0)    # odd kills come before /metrics even answers
    feeder.join(timeout=120)
    assert done.is_set(), "the producer did not finish"

    want = expected([e for p in messages.values() for m in p for e in m], t0)

    def complete(records: list[dict[str, Any]]) -> bool:
        latest = latest_values(records)
        return all(latest.get(k) == v or (math.isnan(v) and latest.get(k) is None) for k, v in want.items())

    try:
        records = asyncio.run(read_until(broker.bootstrap, "torture.kpi.values", complete, timeout_s=150))
    except TimeoutError:    # say what is wrong instead of only that it took too long
        records = asyncio.run(read_all(broker.bootstrap, "torture.kpi.values"))
    (tmp_path / "values.json").write_bytes(orjson.dumps({"t0": t0, "records": records}))    # for a post-mortem
    published: dict[tuple[str, str, float, int], set[Any]] = defaultdict(set)
    for r in records:
        published[r["kpi"], series_of(r), r["window_start"], r["revision"]].add(r["value"])
    twice = {k: v for k, v in published.items() if len(v) > 1}
    latest = latest_values(records)
    wrong = {k: (latest.get(k), v) for k, v in want.items()
             if not (latest.get(k) == v or (math.isnan(v) and latest.get(k) is None))}
    extra = {k for k in latest if k[2] < (t0 + WINDOWS * MIN) / 1000 and k not in want and latest[k] not in (0, None)}
    counted = sum(latest.get(("tt_count", "", (t0 + w * MIN) / 1000)) or 0 for w in range(WINDOWS))
    total = sum(len(m) for p in messages.values() for m in p)
    assert counted == total, f"{total - counted} of {total} events lost; wrong: {sorted(wrong.items())[:10]}"
    assert not wrong, f"{len(wrong)} values wrong, e.g. {sorted(wrong.items())[:10]}"
    assert not twice, f"{len(twice)} keys published with two values, e.g. {sorted(twice.items())[:5]}"
    assert not extra, f"series with values that the input does not have: {sorted(extra)[:10]}"


def latest_values(records: list[dict[str, Any]]) -> dict[tuple[str, str, float], Any]:
    best: dict[tuple[str, str, float], tuple[int, Any]] = {}
    for r in records:
        key = (r["kpi"], series_of(r), r["window_start"])
        if key not in best or r["revision"] >= best[key][0]:
            best[key] = (r["revision"], r["value"])
    return {k: v for k, (_rev, v) in best.items()}
