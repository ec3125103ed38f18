"""Behaviour of the default ``seasonal`` detector on business-like series."""

from __future__ import annotations

import json
import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.base import DetectorError, Verdict
from detectors.registry import make_detector
from detectors.seasonal import THRESHOLDS, SeasonalDetector

STEP = 600.0  # 10-minute windows
T0 = 1_704_067_200.0  # Monday 2024-01-01 00:00 UTC
DAY = int(86400 / STEP)


def business_series(days: int = 28, seed: int = 1, noise: float | None = None) -> list[tuple[float, float]]:
    """Orders per 10 minutes: afternoon peak, quiet nights, weekends at 60%.

    Orders are counts, so the noise is Poisson's (sd = sqrt(mean): 3% at the
    peak of 1000, 6% at night); ``noise`` makes it a fixed fraction instead.
    """
    rng = random.Random(seed)
    out = []
    for i in range(days * DAY):
        ts = T0 + i * STEP
        hour = (ts % 86400.0) / 3600.0
        weekend = (int(ts // 86400.0) + 3) % 7 >= 5
        base = 1000.0 * (0.3 + 0.7 * math.exp(-(((hour - 14.0) / 4.0) ** 2))) * (0.6 if weekend else 1.0)
        sd = math.sqrt(base) if noise is None else noise * base
        out.append((ts, base + rng.gauss(0.0, sd)))
    return out


def scaled(points: list[tuple[float, float]], factors: dict[int, float]) -> list[tuple[float, float]]:
    """The series with the value at each index in ``factors`` multiplied by its factor."""
    return [(ts, value * factors.get(i, 1.0)) for i, (ts, value) in enumerate(points)]


def run(points: list[tuple[float, float]], **params: object) -> list[Verdict]:
    det = make_detector("seasonal", **params)  # type: ignore[arg-type]
    return [det.update(ts, value) for ts, value in points]


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_seasonal_series_raises_no_alarm_after_warm_up(seed: int) -> None:
    verdicts = run(business_series(seed=seed))
    assert verdicts[0].warming_up and not verdicts[DAY + 1].warming_up
    alarms = [i for i, v in enumerate(verdicts) if v.is_anomaly]
    assert alarms == []


@pytest.mark.parametrize(("name", "change"), [
    ("spike", lambda v: v * 3.0), ("dip", lambda v: v * 0.4), ("drop to zero", lambda v: 0.0)])
def test_spike_dip_and_drop_are_flagged_at_once(name: str, change: object) -> None:
    points = business_series()
    at = 20 * DAY + 14 * 6  # Sunday 14:00 of week 3, so the weekend profile is in play
    ts, value = points[at]
    points[at] = (ts, change(value))  # type: ignore[operator]
    verdicts = run(points)
    assert verdicts[at].is_anomaly, f"{name} not flagged"
    assert verdicts[at].score >= THRESHOLDS["medium"]
    assert not any(v.is_anomaly for v in verdicts[at + 2:at + DAY]), f"alarms linger after the {name}"


@pytest.mark.parametrize("step", [400.0, -600.0, 3000.0])
def test_level_shift_becomes_the_new_normal_once(step: float) -> None:
    points = business_series()
    start = 15 * DAY + 10 * 6  # Tuesday 10:00, week 3
    points = [(ts, v + step if i >= start else v) for i, (ts, v) in enumerate(points)]
    verdicts = run(points)[start:start + 3 * DAY]
    assert verdicts[0].is_anomaly, "the shift itself is news"
    drifts = [i for i, v in enumerate(verdicts) if v.drift]
    assert len(drifts) == 1, f"expected one drift event, got {drifts}"
    assert drifts[0] <= 24, "a shift should be accepted within a few hours"
    later = [i for i, v in enumerate(verdicts) if v.is_anomaly and i > drifts[0]]
    assert later == [], "after the drift the new level is normal"


def test_sensitivities_are_nested() -> None:
    """Point by point without the hold-off (with it, a more sensitive detector may hold a point back
    because it already announced the incident a point earlier)."""
    points = business_series(days=10, noise=0.08)
    flagged = {s: {i for i, v in enumerate(run(points, sensitivity=s, holdoff_h=0)) if v.is_anomaly}
               for s in ("low", "medium", "high")}
    assert flagged["low"] <= flagged["medium"] <= flagged["high"]
    assert flagged["high"], "8% noise with a 0.45 threshold should flag something in ten days"


def test_is_anomaly_matches_score_threshold_and_band() -> None:
    det = SeasonalDetector(seasonality="none")
    rng = random.Random(5)
    for i in range(500):
        value = rng.gauss(50.0, 5.0) + (60.0 if i % 97 == 0 else 0.0)
        v = det.update(60.0 * i, value)
        if v.warming_up:
            continue
        assert v.is_anomaly == (v.score >= det.threshold)
        assert v.lower is not None and v.upper is not None
        inside = v.lower < value < v.upper
        held = math.isclose(v.score, det.threshold - 1e-3)  # within an announced incident's hold-off
        # the band is the set of values that would not alarm outside a hold-off (edges aside)
        assert inside != (v.is_anomaly or held) or math.isclose(v.score, det.threshold, rel_tol=1e-6)


def test_state_is_compact_plain_json() -> None:
    det = SeasonalDetector()
    for ts, value in business_series(days=8):
        det.update(ts, value)
    state = det.to_state()
    assert "pickle" not in state
    assert len(json.dumps(state)) <= 2048


@pytest.mark.parametrize("params", [
    {"sensitivity": "extreme"}, {"seasonality": "monthly"}, {"level_rate": 0.0}, {"level_rate": 2},
    {"warmup": 0}, {"warmup": True}, {"clip": -1.0}, {"utc_offset_h": 30}, {"memory_days": math.inf}])
def test_bad_parameters_are_refused(params: dict[str, object]) -> None:
    with pytest.raises(DetectorError):
        SeasonalDetector(**params)  # type: ignore[arg-type]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False), min_size=1, max_size=120),
       st.floats(min_value=1.0, max_value=7200.0))
def test_any_finite_series_gives_sane_verdicts(values: list[float], step: float) -> None:
    det = SeasonalDetector(warmup=5, seasonality="daily")
    for i, value in enumerate(values):
        v = det.update(T0 + step * i, value)
        assert 0.0 <= v.score <= 1.0
        if not v.warming_up:
            assert v.lower is not None and v.expected is not None and v.upper is not None
            assert v.lower <= v.expected <= v.upper


@pytest.mark.parametrize("start_day", [2, 5, 6])  # Wednesday, Saturday, Sunday
def test_series_starting_any_day_raises_no_alarm(start_day: int) -> None:
    """A first weekend (or a first Monday after a weekend start) is not news."""
    points = business_series(days=28 + start_day)[start_day * DAY:]
    alarms = [i for i, v in enumerate(run(points)) if v.is_anomaly]
    assert alarms == []


def test_value_beyond_anything_seen_is_flagged_even_when_it_creeps_up() -> None:
    """A slow climb to values never seen is news, though the fast level follows it."""
    rng = random.Random(3)
    points = [(T0 + 60.0 * i, 100.0 + rng.gauss(0.0, 2.0)) for i in range(3000)]
    ramp = [(T0 + 60.0 * (3000 + i), 100.0 + 0.5 * i + rng.gauss(0.0, 2.0)) for i in range(300)]
    verdicts = run(points + ramp, seasonality="none")
    assert not any(v.is_anomaly for v in verdicts[:3000])
    first = next(i for i, v in enumerate(verdicts) if v.is_anomaly) - 3000
    assert 0 < first < 150, f"a climb to 175 (range 100 +- 7) flagged only at {first}"


def test_old_state_versions_are_refused_clearly() -> None:
    det = SeasonalDetector()
    for ts, value in business_series(days=2):
        det.update(ts, value)
    state = json.loads(json.dumps(det.to_state()))
    assert state["version"] == 5
    state["version"] = 2
    with pytest.raises(DetectorError, match="version 2 is not supported"):
        SeasonalDetector.from_state(state)


@pytest.mark.parametrize("seasonality", ["none", "weekly"])
def test_noise_breaking_its_own_records_stays_quiet(seasonality: str) -> None:
    """Plain noise keeps setting new highs and lows; that alone is not news."""
    alarms = 0
    for seed in range(3):
        rng = random.Random(seed)
        det = SeasonalDetector(seasonality=seasonality)
        for i in range(20000):
            alarms += det.update(T0 + 300.0 * i, 100.0 + rng.gauss(0.0, 2.0)).is_anomaly
    assert alarms <= 1, f"{alarms} alarms in 60,000 points of white noise"


def _poisson(rng: random.Random, lam: float) -> int:
    """Knuth's Poisson sampler (lam small enough for exp(-lam) not to underflow)."""
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


@pytest.mark.parametrize("seasonality", ["none", "weekly"])
@pytest.mark.parametrize("n", [45, 200])
@pytest.mark.parametrize("seed", range(8))
def test_drop_to_zero_of_short_poisson_history_is_flagged_at_once(seed: int, n: int, seasonality: str) -> None:
    """Paid orders per minute fall from Poisson(30) (sigma ~5.5) to 0: a 5.5-sigma drop."""
    rng = random.Random(seed)
    step = 60.0 if seasonality == "none" else 600.0
    history = n if seasonality == "none" else 7 * DAY + n  # weekly: a week of history first
    det = make_detector("seasonal", "medium", seasonality=seasonality, warmup=30)
    verdicts = [det.update(T0 + step * i, _poisson(rng, 30.0)) for i in range(history)]
    assert not any(v.is_anomaly for v in verdicts), "the clean history itself must be quiet"
    v = det.update(T0 + step * history, 0.0)
    assert not v.warming_up
    assert v.is_anomaly, f"drop to zero after {n} points scored {v.score:.2f}"


@pytest.mark.parametrize("seed", range(6))
def test_six_sigma_deviation_of_short_gaussian_history_is_flagged(seed: int) -> None:
    rng = random.Random(seed)
    det = make_detector("seasonal", "medium", seasonality="none")
    for i in range(45):
        det.update(T0 + 60.0 * i, rng.gauss(100.0, 5.0))
    assert det.update(T0 + 60.0 * 45, 100.0 + (6.0 if seed % 2 else -6.0) * 5.0).is_anomaly


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_poisson_counts_without_incidents_stay_quiet(seed: int) -> None:
    rng = random.Random(seed)
    det = make_detector("seasonal", "medium", seasonality="none", warmup=30)
    alarms = [i for i in range(2000) if det.update(T0 + 60.0 * i, _poisson(rng, 30.0)).is_anomaly]
    assert len(alarms) <= 1, f"false alarms at {alarms}"


def test_an_incident_is_announced_once_unless_it_gets_clearly_worse() -> None:
    """Six points at half the usual orders: one alarm, then the hold-off (4 h) keeps the incident quiet."""
    start = 17 * DAY + 11 * 6  # Thursday 11:00, week 3
    points = scaled(business_series(days=21, seed=3), {start + k: 0.5 for k in range(6)})
    held = [i - start for i, v in enumerate(run(points)) if v.is_anomaly]
    each = [i - start for i, v in enumerate(run(points, holdoff_h=0)) if v.is_anomaly]
    assert held == [0]
    assert len(each) > 1 and each[0] == 0


def test_a_worse_turn_during_the_hold_off_alarms_again() -> None:
    start = 17 * DAY + 11 * 6
    # a dip (an alarm with a middling score), then an hour later four times the orders
    points = scaled(business_series(days=21, seed=3), {start: 0.8, start + 6: 4.0})
    verdicts = run(points)
    alarms = [i - start for i, v in enumerate(verdicts) if v.is_anomaly]
    assert alarms == [0, 6], alarms
    assert verdicts[start + 6].score >= verdicts[start].score + 0.2


def test_a_nightly_job_stops_alarming_while_other_hours_still_do() -> None:
    """A batch job triples the 03:10 value every night: after a few nights that hour's spike is held."""
    noon = 18 * DAY + 12 * 6 + 1
    factors = {day * DAY + 3 * 6 + 1: 3.0 for day in range(8, 21)} | {noon: 1.6}
    verdicts = run(scaled(business_series(days=21, seed=2), factors))
    nights = [day for day in range(8, 21) if verdicts[day * DAY + 19].is_anomaly]
    assert nights[0] == 8, "the first night is news"
    assert len(nights) <= 5 and nights[-1] <= 13, f"still alarming on nights {nights}"
    assert verdicts[noon].is_anomaly, "a spike at another hour is still news"


def test_state_round_trip_keeps_day_factors_and_hour_noise() -> None:
    det = SeasonalDetector()
    points = business_series(days=16, seed=4)
    for ts, value in points[:-DAY]:
        det.update(ts, value)
    twin = SeasonalDetector.from_state(json.loads(json.dumps(det.to_state())))
    assert any(twin.dayf) and any(h != 1.0 for h in twin.hours)
    for ts, value in points[-DAY:]:
        assert det.update(ts, value) == twin.update(ts, value)


def test_a_drop_after_a_spike_is_a_new_incident() -> None:
    """The hold-off is per direction: a spike at 11:00 does not hide an outage at 12:00."""
    start = 17 * DAY + 11 * 6
    points = scaled(business_series(days=21, seed=3), {start: 4.0, start + 6: 0.0})
    alarms = [i - start for i, v in enumerate(run(points)) if v.is_anomaly]
    assert alarms == [0, 6], alarms


def test_a_series_below_zero_gets_its_weekly_rhythm_too() -> None:
    """Net cash flow: the same rhythm 1500 below zero (day factors are added unscaled)."""
    for seed in (1, 2, 3):
        verdicts = run([(ts, v - 1500.0) for ts, v in business_series(seed=seed)])
        assert not any(v.is_anomaly for v in verdicts[8 * DAY:]), f"seed {seed}"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_spikes_that_come_more_often_are_news(seed: int) -> None:
    """A load balancer's 2.5 spike every two hours is normal; one every 15 minutes is not.

    No single point is new (every spike has the size of the ones seen for ten
    days): only the hours channel, a few hours' mean against its own spread,
    sees that they come eight times as often.
    """
    rng = random.Random(seed)
    step, day = 300.0, 288
    start = 10 * day
    points = []
    for i in range(12 * day):
        spike = i % 3 == 0 if start <= i < start + 96 else i % 24 == 7
        points.append((T0 + i * step, rng.uniform(0.0, 0.2) + (2.5 if spike else 0.0)))
    alarms = [i - start for i, v in enumerate(run(points)) if v.is_anomaly]
    assert not [a for a in alarms if -7 * day <= a < 0], f"alarms before the incident: {alarms}"
    assert [a for a in alarms if 0 <= a < 12], f"denser spikes not flagged within an hour: {alarms}"
