"""The series cap end to end: a real worker, two partitions, more values than the cap on two dimensions,
exact values and exact ``__other__`` on ``kpi.values``, and the admissions kept across a restart."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import orjson
import pytest

from kpimon.embedded import Broker
from streams.admission import OTHER
from tests.fixtures.kafka_io import produce, read_until
from tests.fixtures.worker import WorkerFactory
from tests.streams.test_pipeline_e2e import MIN, T0, final_values, has

CATALOG = Path(__file__).with_name("seriescap.yaml")
CAP = 3
DIMS = ("region", "channel")
pytestmark = pytest.mark.slow


def events_for(windows: range, regions: str, channels: list[str], seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [{"ts": T0 + w * MIN + rng.randrange(MIN), "region": rng.choice(regions), "channel": rng.choice(channels),
             "amount": rng.randrange(1, 100)} for w in windows for _ in range(60)]


def check_exact(records: list[dict[str, Any]], events: list[dict[str, Any]], windows: range) -> dict[str, set[str]]:
    """Every exported series exact, __other__ exactly the rest, totals exact; returns the admitted values per dimension."""
    admitted: dict[str, set[str]] = {}
    for kpi, measure in (("cap_count", lambda e: 1), ("cap_sum", lambda e: e["amount"])):
        vals = final_values(records, kpi)
        for dim in DIMS:
            series = {s.partition("=")[2] for _ws, s in vals if s.startswith(dim + "=")}
            mine = series - {OTHER}
            assert len(mine) == CAP, (kpi, dim, series)        # its own budget, full
            assert admitted.setdefault(dim, mine) == mine       # the same admissions for both KPIs of the source
        for w in windows:
            ws = T0 + w * MIN
            in_w = [e for e in events if ws <= e["ts"] < ws + MIN]
            assert vals[(ws / 1000, "")]["value"] == sum(measure(e) for e in in_w), (kpi, w)
            for dim in DIMS:
                for v in admitted[dim]:
                    assert vals[(ws / 1000, f"{dim}={v}")]["value"] == sum(measure(e) for e in in_w if e[dim] == v)
                other = sum(measure(e) for e in in_w if e[dim] not in admitted[dim])
                assert vals[(ws / 1000, f"{dim}={OTHER}")]["value"] == other, (kpi, w, dim)
    return admitted


def test_cap_is_exact_across_partitions_and_keeps_its_admissions_across_a_restart(broker: Broker, worker_factory: WorkerFactory) -> None:
    w = worker_factory(CATALOG, "cap")
    # Issue #11 as measured: partition 1 meets region a only after c, d and e; stage 2 admits a.
    first = [{"ts": T0 + 1000 + i, "region": r, "channel": "web", "amount": 1} for i, r in enumerate("cdeaaaaaaa")]
    events = events_for(range(3), "abcde", ["web", "app", "shop", "tel"], seed=7)
    p0 = [{"ts": T0 + 500, "region": "a", "channel": "app", "amount": 2}] + events[0::2]
    p1 = first + events[1::2]
    asyncio.run(produce(broker.bootstrap, "t.cap", [orjson.dumps(sorted(p0, key=lambda e: e["ts"]))], partition=0))
    asyncio.run(produce(broker.bootstrap, "t.cap", [orjson.dumps(sorted(p1, key=lambda e: e["ts"]))], partition=1))
    records = asyncio.run(read_until(broker.bootstrap, "cap.kpi.values",
                                     lambda r: has("cap_count", T0 + 4 * MIN)(r) and has("cap_sum", T0 + 4 * MIN)(r)))
    admitted = check_exact(records, p0 + p1, range(3))
    assert "a" in admitted["region"]
    assert (w.sample("kpimon_series_overflow_total", kpi="cap_count") or 0) > 0
    feedback = asyncio.run(read_until(broker.bootstrap, "cap.kpi.series", lambda r: len(r) >= 4))
    assert {v for r in feedback for v in r["admitted"]} == admitted["region"] | admitted["channel"]

    # A restarted worker restores the admissions and re-reads the feedback before stage 1 starts: a new value is
    # folded at stage 1 already (it never reaches kpi.partials), the admitted series keep reporting exactly.
    w.stop()
    w2 = worker_factory(CATALOG, "cap")
    later = events_for(range(10, 12), "abcdefz", ["web", "app", "shop", "tel", "new"], seed=8)
    asyncio.run(produce(broker.bootstrap, "t.cap", [orjson.dumps(later[0::2])], partition=0))
    asyncio.run(produce(broker.bootstrap, "t.cap", [orjson.dumps(later[1::2])], partition=1))
    records = asyncio.run(read_until(broker.bootstrap, "cap.kpi.values",
                                     lambda r: has("cap_count", T0 + 13 * MIN)(r) and has("cap_sum", T0 + 13 * MIN)(r)))
    assert check_exact(records, later, range(10, 12)) == admitted
    partials = asyncio.run(read_until(broker.bootstrap, "cap.kpi.partials",
                                      lambda r: any(p["ws"] == T0 + 12 * MIN for p in r)))
    after = [p for p in partials if T0 + 10 * MIN <= p["ws"] < T0 + 12 * MIN]
    assert after and all(s.partition("=")[2] in admitted[s.partition("=")[0]] | {OTHER}
                         for p in after for s in p["series"] if s)
    assert (w2.sample("kpimon_series_folded_total", kpi="cap_count") or 0) > 0     # counted where it was folded
    assert "Traceback" not in w.log_path.read_text() + w2.log_path.read_text()
