"""End to end on the real embedded broker with real ``kpimon worker`` processes: exact values,
ratios, hopping windows, percentiles, absence, bad input, late events, two workers, kill -9."""

from __future__ import annotations

import asyncio
import math
import random
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from kpimon.embedded import Broker
from streams.aggregations import RELATIVE_ACCURACY
from tests.fixtures.kafka_io import produce, read_until
from tests.fixtures.worker import WorkerFactory, WorkerProcess

CATALOG = Path(__file__).with_name("e2e.yaml")
T0 = 1_767_571_200_000          # 2026-01-05T00:00:00Z, a Monday, in ms
MIN = 60_000

pytestmark = pytest.mark.slow


def final_values(records: list[dict[str, Any]], kpi: str) -> dict[tuple[float, str], dict[str, Any]]:
    """Latest revision per (window_start, series) of one KPI."""
    out: dict[tuple[float, str], dict[str, Any]] = {}
    for r in records:
        if r["kpi"] != kpi:
            continue
        key = (r["window_start"], ",".join(f"{k}={v}" for k, v in sorted(r["labels"].items())))
        if key not in out or r["revision"] >= out[key]["revision"]:
            out[key] = r
    return out


def has(kpi: str, window_start_ms: int, series: str = "", revision: int = 0) -> Callable[[list[dict[str, Any]]], bool]:
    def check(records: list[dict[str, Any]]) -> bool:
        vals = final_values(records, kpi)
        r = vals.get((window_start_ms / 1000, series))
        return r is not None and r["revision"] >= revision
    return check


def exact_events() -> list[dict[str, Any]]:
    rng = random.Random(3)
    events = []
    for i in range(400):
        window = i % 2
        events.append({"ts": T0 + window * MIN + rng.randrange(MIN), "region": rng.choice(["east", "west", "north"]),
                       "status": rng.choice(["paid", "paid", "cart"]), "amount": round(rng.uniform(1, 500), 2),
                       "user": f"u{rng.randrange(50)}"})
    return events


@pytest.fixture(scope="module")
def e2e_worker(broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerProcess]:
    w = WorkerProcess(CATALOG, broker, "e2e", tmp_path_factory.mktemp("e2e") / "worker.log")
    w.start()
    yield w
    w.stop()


def test_exact_values_per_kpi_window_and_dimension(broker: Broker, e2e_worker: WorkerProcess) -> None:
    events = exact_events()
    # Two partitions, batched messages (JSON arrays, NDJSON) and single-event messages mixed.
    p0 = [orjson.dumps(events[:150])]
    p1 = [b"\n".join(orjson.dumps(e) for e in events[150:300])] + [orjson.dumps(e) for e in events[300:]]
    asyncio.run(produce(broker.bootstrap, "t.exact", p0, partition=0))
    asyncio.run(produce(broker.bootstrap, "t.exact", p1, partition=1))
    # Out-of-order events close windows early on a partition and then revise them (within grace).
    # A later (empty) window closed by the idle watermark means every revision before it was merged.
    records = asyncio.run(read_until(broker.bootstrap, "e2e.kpi.values",
                                     lambda r: has("e_rate", T0 + 4 * MIN)(r) and has("e_hop", T0 + 4 * MIN)(r)
                                     and has("e_p90", T0 + 4 * MIN)(r)))
    for w in (0, 1):
        ws = T0 + w * MIN
        in_w = [e for e in events if ws <= e["ts"] < ws + MIN]
        amounts = sorted(e["amount"] for e in in_w)
        def value(kpi: str, series: str = "") -> float | None:
            got: float | None = final_values(records, kpi)[(ws / 1000, series)]["value"]  # noqa: B023
            return got
        assert value("e_count") == len(in_w)
        assert value("e_sum") == pytest.approx(sum(amounts), rel=1e-12)
        assert value("e_avg") == pytest.approx(sum(amounts) / len(amounts), rel=1e-12)
        assert value("e_min") == amounts[0] and value("e_max") == amounts[-1]
        assert value("e_users") == len({e["user"] for e in in_w})
        for region in ("east", "west", "north"):
            sub = [e for e in in_w if e["region"] == region]
            paid = [e for e in sub if e["status"] == "paid"]
            assert value("e_count", f"region={region}") == len(sub)
            assert value("e_paid", f"region={region}") == len(paid)
            assert value("e_sum", f"region={region}") == pytest.approx(sum(e["amount"] for e in sub), rel=1e-12)
            assert value("e_rate", f"region={region}") == pytest.approx(len(paid) / len(sub), rel=1e-12)
        # p90 within the sketch's documented relative error of the true nearest-rank value
        true_p90 = amounts[math.floor(0.9 * (len(amounts) - 1))]
        assert abs(value("e_p90") - true_p90) <= RELATIVE_ACCURACY * true_p90 * 1.0001
    # Hopping 2m window every 1m: the window starting at T0 holds both minutes.
    assert final_values(records, "e_hop")[(T0 / 1000, "")]["value"] == len(events)
    # /metrics shows the same numbers for the latest closed window (a later, empty one by now: 0 or the value).
    text = e2e_worker.metrics()
    assert "kpi_e_count{by=\"region\",region=\"east\"}" in text
    assert e2e_worker.sample("kpimon_events_total", source="exact") == len(events)


def test_absence_closes_windows_with_zero(broker: Broker, e2e_worker: WorkerProcess) -> None:
    asyncio.run(produce(broker.bootstrap, "t.absent", [{"ts": T0 + 5_000 + i} for i in range(7)]))
    # No more events: the idle watermark closes the next windows on time, with 0.
    records = asyncio.run(read_until(broker.bootstrap, "e2e.kpi.values", has("a_count", T0 + 3 * MIN)))
    vals = final_values(records, "a_count")
    assert vals[(T0 / 1000, "")]["value"] == 7
    assert vals[((T0 + MIN) / 1000, "")]["value"] == 0
    assert vals[((T0 + 2 * MIN) / 1000, "")]["value"] == 0


def test_bad_input_goes_to_dead_letters_and_worker_keeps_counting(broker: Broker, e2e_worker: WorkerProcess) -> None:
    ts = T0 + 1000
    bad = [
        b'{"ts": 1767571201000, "amount": ',                                  # malformed JSON
        b'{"ts": 1767571201000, "amount": NaN, "region": "x"}',               # NaN is not JSON
        orjson.dumps({"amount": 3, "region": "x"}),                            # missing time
        orjson.dumps({"ts": "yesterday", "amount": 3}),                        # bad time
        orjson.dumps({"ts": ts, "region": "x"}),                               # missing measured field
        orjson.dumps({"ts": ts, "amount": "12", "region": "x"}),               # wrong type
        orjson.dumps({"ts": ts, "amount": True, "region": "x"}),               # bool is not a number
        orjson.dumps({"ts": ts, "amount": 1, "region": {"a": 1}}),             # dimension not a scalar
        b"[1, 2]",                                                             # array items not objects
        b"x" * (1024 * 1024 + 10),                                             # over 1 MiB
    ]
    good = [{"ts": ts + i, "amount": 2.5, "region": "east"} for i in range(4)]
    asyncio.run(produce(broker.bootstrap, "t.bad", bad + [orjson.dumps(good)]))
    asyncio.run(produce(broker.bootstrap, "t.samples", [{"kpi": "nope", "ts": ts, "value": 1},
                                                        {"kpi": "s_last", "ts": ts, "value": 4},
                                                        {"kpi": "s_last", "ts": ts + 5, "value": 9}]))
    dead = asyncio.run(read_until(broker.bootstrap, "e2e.kpi.deadletter", lambda r: len(r) >= 12))
    reasons = Counter(d["reason"] for d in dead)
    assert reasons == Counter({"malformed_json": 2, "missing_time": 1, "bad_time": 1, "missing_field": 1,
                               "wrong_type": 3, "not_an_object": 2, "too_large": 1, "unknown_kpi": 1})
    assert any(d["original"] == '{"ts": 1767571201000, "amount": ' for d in dead)
    big = next(d for d in dead if d["reason"] == "too_large")
    assert big["size"] == 1024 * 1024 + 10 and big["truncated"]
    records = asyncio.run(read_until(broker.bootstrap, "e2e.kpi.values", has("b_sum", T0, "region=east")))
    assert final_values(records, "b_sum")[(T0 / 1000, "region=east")]["value"] == 10.0
    assert final_values(records, "b_sum")[(T0 / 1000, "")]["value"] == 10.0
    records = asyncio.run(read_until(broker.bootstrap, "e2e.kpi.values", has("s_last", T0)))
    assert final_values(records, "s_last")[(T0 / 1000, "")]["value"] == 9
    assert e2e_worker.sample("kpimon_dead_letters_total", source="bad", reason="wrong_type") == 3
    assert e2e_worker.exit_code() is None


def test_late_events_revise_within_grace_and_dead_letter_beyond(broker: Broker, worker_factory: WorkerFactory) -> None:
    # speedup 1 so the watermark moves only with event time here
    w = worker_factory(CATALOG, "late", speedup=1.0, idle_ms=600_000)
    asyncio.run(produce(broker.bootstrap, "t.late", [{"ts": T0 + 10_000}, {"ts": T0 + 65_000}]))
    records = asyncio.run(read_until(broker.bootstrap, "late.kpi.values", has("l_count", T0)))
    assert final_values(records, "l_count")[(T0 / 1000, "")] | {"value": 1.0, "revision": 0} == \
        final_values(records, "l_count")[(T0 / 1000, "")]
    # out of order, within grace (1m after the window's end): the window is revised
    asyncio.run(produce(broker.bootstrap, "t.late", [{"ts": T0 + 30_000}, {"ts": T0 + 20_000}]))
    records = asyncio.run(read_until(broker.bootstrap, "late.kpi.values", has("l_count", T0, revision=1)))
    assert final_values(records, "l_count")[(T0 / 1000, "")]["value"] == 3.0
    # watermark far ahead, then an event for the first window: too late
    asyncio.run(produce(broker.bootstrap, "t.late", [{"ts": T0 + 10 * MIN}, {"ts": T0 + 40_000}]))
    def late_only(records: list[dict[str, Any]]) -> list[dict[str, Any]]:   # this worker reads every test source
        return [d for d in records if d["topic"] == "t.late"]

    dead = late_only(asyncio.run(read_until(broker.bootstrap, "late.kpi.deadletter", lambda r: len(late_only(r)) >= 1)))
    assert [d["reason"] for d in dead] == ["too_late"]
    assert orjson.loads(dead[0]["original"])["ts"] == T0 + 40_000
    assert w.sample("kpimon_window_revisions_total", kpi="l_count") == 1
