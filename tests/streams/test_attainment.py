"""Target attainment: idempotent per window (re-deliveries, revisions, period rollover), checkpointed in the
stage-2 changelog, and resumed by a worker restarted mid-period (real broker, real ``kpimon worker``)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import orjson
import pytest

from kpimon.embedded import Broker
from streams.attainment import Attainment, Goal, period_start
from streams.records import KpiValue
from tests.fixtures.kafka_io import produce, read_until
from tests.fixtures.waiting import eventually
from tests.fixtures.worker import WorkerFactory, WorkerProcess

T0 = 1_767_571_200_000          # 2026-01-05T00:00:00Z in ms
MIN = 60_000
DAY = 86_400_000
KEEP = 4 * MIN                  # streams.merge.retention_ms for 1m windows with 1m grace
GOAL = Goal(100.0, "day", additive=True, keep_ms=KEEP, definition="sk1")


def val(start_ms: int, value: float, revision: int = 0, kpi: str = "orders", series: str = "") -> KpiValue:
    return KpiValue(kpi, series, start_ms, start_ms + MIN, value, revision)


def at(i: int) -> int:
    return T0 + i * MIN


def test_same_window_twice_counts_once() -> None:
    att = Attainment({"orders": GOAL})
    assert att.observe(val(at(0), 10), 0) and att.observe(val(at(1), 20), 0)
    assert not att.observe(val(at(0), 10), 0)                  # re-published on restore: no change
    assert not att.observe(val(at(1), 7, series="region=east"), 0)   # only the total series counts
    assert att.ratio("orders") == pytest.approx(0.30)


def test_a_china_business_day_starts_at_midnight_in_shanghai() -> None:
    # 2026-01-05 07:59 and 08:01 UTC are 15:59 and 16:01 in Shanghai: the same business day (no reset at 08:00)
    day = 1767571200.0  # 2026-01-05 00:00 UTC
    assert period_start(day + 7.98 * 3600, "day", "Asia/Shanghai") == period_start(day + 8.02 * 3600, "day", "Asia/Shanghai")
    assert period_start(day + 16.5 * 3600, "day", "Asia/Shanghai") == day + 16 * 3600  # 00:30 on the 6th, local
    assert period_start(day + 16.5 * 3600, "week", "Asia/Shanghai") == day - 8 * 3600  # Monday the 5th, 00:00 local
    assert period_start(day + 40 * 86400, "month", "Asia/Shanghai") == day + 27 * 86400 - 8 * 3600  # Feb 1st local
    goal = Goal(1000.0, "day", additive=True, tz="Asia/Shanghai")
    att = Attainment({"orders": goal})
    att.observe(KpiValue("orders", "", int((day + 15.9 * 3600) * 1000), int((day + 15.9 * 3600) * 1000) + MIN, 100, 0), 0)
    att.observe(KpiValue("orders", "", int((day + 16.1 * 3600) * 1000), int((day + 16.1 * 3600) * 1000) + MIN, 50, 0), 0)
    assert att.ratio("orders") == pytest.approx(0.05)  # midnight in Shanghai started a new day


def test_revised_window_replaces_its_contribution() -> None:
    att = Attainment({"orders": GOAL})
    att.observe(val(at(0), 10), 0)
    att.observe(val(at(1), 20), 0)
    assert att.observe(val(at(0), 13, revision=1), 0)          # a late event revised window 0
    assert att.ratio("orders") == pytest.approx(0.33)
    assert not att.observe(val(at(0), 10, revision=0), 0)      # the old revision again (re-delivery)
    assert not att.observe(val(at(0), 13, revision=1), 0)
    assert att.ratio("orders") == pytest.approx(0.33)


def test_period_rollover_starts_from_the_new_period() -> None:
    att = Attainment({"orders": GOAL})
    last_of_day = T0 + DAY - MIN
    att.observe(val(last_of_day - MIN, 40), 0)
    att.observe(val(last_of_day, 30), 0)
    assert att.ratio("orders") == pytest.approx(0.70)
    att.observe(val(T0 + DAY, 5), 0)                           # first window of the next day
    assert att.ratio("orders") == pytest.approx(0.05)
    assert not att.observe(val(last_of_day, 31, revision=1), 0)    # the previous day is over
    assert att.ratio("orders") == pytest.approx(0.05)


def test_windows_past_revision_are_folded_and_redeliveries_of_them_ignored() -> None:
    att = Attainment({"orders": GOAL})
    for i in range(10):
        att.observe(val(at(i), 1), 3)
    track = att.tracks["orders"]
    assert track.through == at(4) and sorted(track.windows) == [at(i) for i in range(5, 10)]
    assert not att.observe(val(at(2), 1), 3) and not att.observe(val(at(2), 9, revision=1), 3)
    assert att.ratio("orders") == pytest.approx(0.10)


def test_checkpoint_restore_then_republished_values_do_not_count_twice() -> None:
    values = [val(at(i), i + 1) for i in range(8)] + [val(at(7), 10, revision=1)]
    att = Attainment({"orders": GOAL, "other": GOAL})
    for v in values:
        att.observe(v, 2)
    assert att.take_checkpoints(1) == []                       # fed by partition 2 only
    checkpoints = dict(att.take_checkpoints(2))
    assert list(checkpoints) == ["orders"] and att.take_checkpoints(2) == []
    before = att.ratio("orders")
    assert before is not None and before == pytest.approx((sum(range(1, 8)) + 10) / 100)

    restarted = Attainment({"orders": GOAL, "other": GOAL})
    restarted.restore(2, checkpoints | {"gone": b"{}", "orders|123": b"{}"})   # no goals: ignored
    assert restarted.ratio("orders") == pytest.approx(before)
    for v in values:                                           # stage 2 re-publishes what it restored
        restarted.observe(v, 2)
    assert restarted.ratio("orders") == pytest.approx(before)
    assert restarted.take_checkpoints(2) == []                 # nothing changed
    restarted.observe(val(at(8), 5), 2)                        # and the period goes on
    assert restarted.ratio("orders") == pytest.approx(before + 0.05)

    redefined = Attainment({"orders": Goal(100.0, "day", True, KEEP, definition="sk2")})
    redefined.restore(2, checkpoints)                          # another measure: not mixed with the old one
    assert redefined.ratio("orders") is None
    restarted.drop(2)                                          # partition moved: its new owner restores it
    assert restarted.ratio("orders") is None


def test_non_additive_kpis_compare_their_latest_value() -> None:
    att = Attainment({"rate": Goal(0.5, "day", additive=False)})
    att.observe(val(at(0), 0.2, kpi="rate"), 0)
    att.observe(val(at(1), 0.4, kpi="rate"), 0)
    att.observe(val(at(0), 0.3, revision=1, kpi="rate"), 0)    # revising an older window changes nothing
    assert att.ratio("rate") == pytest.approx(0.8)
    att.observe(val(at(1), 0.45, revision=1, kpi="rate"), 0)
    assert att.ratio("rate") == pytest.approx(0.9)


# ---- end to end -------------------------------------------------------------------------------
CATALOG = Path(__file__).with_name("attainment.yaml")
RATIO = "kpi_att_orders_attainment_ratio"


def _events(window: int, n: int, offset_ms: int = 1000) -> list[bytes]:
    return [orjson.dumps({"ts": at(window) + offset_ms + i}) for i in range(n)]


def _wait_ratio(w: WorkerProcess, expected: float, timeout_s: float, what: str) -> None:
    def reached() -> bool:
        return w.sample(RATIO) == pytest.approx(expected)

    eventually(reached, timeout_s, lambda: f"{what}: {RATIO} = {expected} (now {w.sample(RATIO)})\n{w.log_tail()}",
               poll_s=0.3)


@pytest.mark.slow
def test_restarted_worker_resumes_attainment_of_the_period(broker: Broker, worker_factory: WorkerFactory) -> None:
    # speedup 1 and a long idle time: windows close on event time only, so every number is known
    w = worker_factory(CATALOG, "attain", speedup=1.0, idle_ms=600_000)
    counts = [3, 5, 2, 4, 6, 1, 7]                             # windows 0..6: 28 events
    msgs = [m for i, n in enumerate(counts) for m in _events(i, n)] + _events(7, 1)   # the last closes window 6
    asyncio.run(produce(broker.bootstrap, "t.attain", msgs))
    _wait_ratio(w, 0.28, 30, "before the restart")
    asyncio.run(produce(broker.bootstrap, "t.attain", _events(6, 1, offset_ms=30_000)))   # late, within grace
    _wait_ratio(w, 0.29, 30, "after the revision of window 6")   # replaced, not added
    time.sleep(1.0)                                            # let the producer flush the checkpoint

    w.kill9()
    w.start()
    # The restored period, not zero and not the re-published windows counted again (0.29 + 0.27 + ...).
    _wait_ratio(w, 0.29, 45, "after the restart")
    key = (at(6) / 1000, 1)
    republished = asyncio.run(read_until(
        broker.bootstrap, "attain.kpi.values",
        lambda rs: sum((r["window_start"], r["revision"]) == key and not r["labels"] for r in rs) >= 2, timeout_s=20))
    assert sum((r["window_start"], r["revision"]) == key for r in republished) >= 2   # at-least-once output
    assert w.sample(RATIO) == pytest.approx(0.29)
    # The period goes on from there: window 7 (1 + 3 events) closes with 4 more.
    asyncio.run(produce(broker.bootstrap, "t.attain", _events(7, 3, offset_ms=5000) + _events(8, 1)))
    _wait_ratio(w, 0.33, 30, "after the restart, next window")
