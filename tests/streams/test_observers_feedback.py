"""Feedback reaches the detector of its series in the worker that holds it (the real Observers, AlertService and
MemoryStore; no broker): a false alarm on an anomaly rule's alert is taught once, the same deviation the next day
no longer alarms, and the lesson and the fact it was taught survive a checkpoint and restart."""

from __future__ import annotations

from typing import Any

from alerting.feedback import record_feedback
from alerting.memory_store import MemoryStore
from alerting.service import AlertService
from detectors.base import Verdict
from detectors.checks import daily_series
from streams.observers import DetectorSpecLite, EventClock, Observers
from streams.records import KpiValue
from tests.alerting.conftest import make_config

SPEC = DetectorSpecLite("calibrated", "medium", {"seasonality": "daily"})
RULES: dict[str, list[dict[str, Any]]] = {"orders": [{"type": "anomaly", "name": "odd"}, {"type": "threshold", "name": "low", "below": -1}]}
SERIES = daily_series(4)                      # 10-minute windows, a daily rhythm
PER_DAY, BUMP = 144, 100.0
FIRST, SECOND = 2 * PER_DAY + 84, 3 * PER_DAY + 84   # 14:00 on days 2 and 3


def _value(i: int, bump: float = 0.0) -> KpiValue:
    ts, value = SERIES[i]
    return KpiValue("orders", "region=east", int(ts * 1000) - 600_000, int(ts * 1000), value + bump, 0)


def _observers(store: MemoryStore) -> Observers:
    clock = EventClock(wall=lambda: 0.0)
    return Observers(detector_specs={"orders": SPEC}, clock=clock,
                     alerts=AlertService(make_config(RULES, [], {}), store, clock=clock.now))


async def _feed(obs: Observers, start: int, stop: int) -> dict[int, Verdict]:
    """Windows ``start``..``stop - 1`` through the detectors and the alert rules (the deviation at FIRST)."""
    out = {}
    for i in range(start, stop):
        val = _value(i, BUMP if i == FIRST else 0.0)
        [(_, verdict)] = obs.detect(0, [val])
        await obs.alert([val], {(val.kpi, val.series, val.window_start_ms): verdict})
        out[i] = verdict
    return out


async def test_a_false_alarm_is_taught_once_and_the_next_day_is_judged_by_it() -> None:
    store = MemoryStore()
    obs, twin = _observers(store), _observers(MemoryStore())
    verdicts = await _feed(obs, 0, FIRST + 1)
    await _feed(twin, 0, FIRST + 1)
    assert verdicts[FIRST].is_anomaly
    [alert] = [a for a in await store.list_alerts() if a.rule == "odd"]
    assert alert.state == "firing" and alert.raised is not None and alert.raised["end"] == SERIES[FIRST][0]

    await record_feedback(store, alert.fingerprint, "false", who="ann", now=0.0)
    assert await obs.take_feedback() == 1
    assert await obs.take_feedback() == 0                     # read once
    await record_feedback(store, alert.fingerprint, "false", who="bob", now=1.0)   # lands once: nothing new
    assert await obs.take_feedback() == 0

    await _feed(obs, FIRST + 1, SECOND)
    await _feed(twin, FIRST + 1, SECOND)
    ts, again = SERIES[SECOND][0], SERIES[SECOND][1] + BUMP
    assert twin.detectors[0][("orders", "region=east")].score_one(ts, again).is_anomaly
    taught = obs.detectors[0][("orders", "region=east")].score_one(ts, again)
    assert not taught.is_anomaly

    # a restart: the checkpoint carries the lesson and its seq; reading the whole log again teaches nothing twice
    records = dict(obs.take_checkpoints(0))
    restarted = _observers(store)
    restarted.restore(0, records)
    assert restarted.taught == {("orders", "region=east"): 1}
    before = restarted.detectors[0][("orders", "region=east")].to_state()
    assert await restarted.take_feedback() == 0
    assert restarted.detectors[0][("orders", "region=east")].to_state() == before
    assert not restarted.detectors[0][("orders", "region=east")].score_one(ts, again).is_anomaly


async def test_only_anomaly_rules_false_and_true_alarms_held_here_teach() -> None:
    store = MemoryStore()
    obs = _observers(store)
    await _feed(obs, 0, 40)
    record: dict[str, Any] = {"kpi": "orders", "series": {"region": "east"}, "raised": {"end": SERIES[39][0], "value": 500.0}}
    records: list[dict[str, Any]] = [
        {**record, "seq": 1, "verdict": "false_alarm", "rule_type": "threshold"},   # says nothing of the model
        {**record, "seq": 2, "verdict": "expected", "rule_type": "anomaly"},        # the occasion explains it
        {**record, "seq": 3, "verdict": "false_alarm", "rule_type": "anomaly", "kpi": "gmv"},   # not held here
        {**record, "seq": 4, "verdict": "false_alarm", "rule_type": "anomaly", "series": {}},  # the total: not held
        {**record, "seq": 5, "verdict": "true_alarm", "rule_type": "anomaly"},
    ]
    assert obs.learn_feedback(records) == 1
    assert obs.taught == {("orders", "region=east"): 5} and obs.feedback_seen == 5
    assert obs.feedback_taught == {"orders": 1}
    assert obs.learn_feedback(records) == 0
    obs.drop(0)
    assert obs.taught == {}


async def test_expected_with_a_reason_makes_the_rest_of_its_day_a_promotion() -> None:
    store = MemoryStore()
    obs, twin = _observers(store), _observers(MemoryStore())
    await _feed(obs, 0, FIRST + 1)
    await _feed(twin, 0, FIRST + 1)
    [alert] = [a for a in await store.list_alerts() if a.rule == "odd"]
    assert await obs.take_calendar_notes() == 0
    await record_feedback(store, alert.fingerprint, "expected", reason="promotion", who="ann", now=0.0)
    assert await obs.take_calendar_notes() == 1
    assert await obs.take_feedback() == 0                      # "expected" does not teach the model
    noted = obs.calendar_of("orders")
    assert noted is not None and noted.promotion(SERIES[FIRST][0]) == "promotion"
    assert noted.promotion(SERIES[FIRST][0] + 86400) is None   # that day only
    assert obs.calendar_of("gmv") is None                      # the occasion explains orders, not other KPIs
    later = FIRST + 30                                          # 19:00 the same day, after the hold-off
    await _feed(obs, FIRST + 1, later)
    await _feed(twin, FIRST + 1, later)
    ts, value = SERIES[later][0], SERIES[later][1] + BUMP
    assert twin.detectors[0][("orders", "region=east")].score_one(ts, value).is_anomaly
    assert not obs.detectors[0][("orders", "region=east")].score_one(ts, value).is_anomaly

    # a restart picks the notes up again; a changed verdict takes the note back
    restarted = _observers(store)
    restarted.restore(0, dict(obs.take_checkpoints(0)))
    assert await restarted.take_calendar_notes() == 1
    assert not restarted.detectors[0][("orders", "region=east")].score_one(ts, value).is_anomaly
    await record_feedback(store, alert.fingerprint, "true", who="ann", now=1.0)
    assert await restarted.take_calendar_notes() == 0
    assert restarted.calendar_of("orders") is None
    assert restarted.detectors[0][("orders", "region=east")].score_one(ts, value).is_anomaly
