"""Product gaps of the last release (issue #14, item 4), on synthetic business series with the default detector
at medium sensitivity: a 15 % drop on the morning ramp, its recovery, and drops to zero that last."""

from __future__ import annotations

import base64
import json
import math
import random

import pytest

from detectors.base import Verdict
from detectors.registry import make_detector
from detectors.seasonal import SeasonalDetector
from tests.detectors.test_seasonal import DAY, STEP, T0, business_series

SEEDS = [1, 2, 3, 4, 5]
DROP_AT = 15 * DAY + 9 * 6  # Tuesday 09:00 of week 3: the morning ramp, weekly rhythm learned
SIX_HOURS = 6 * 6
HOUR = 6


def busy_month(seed: int, peak: float) -> list[tuple[float, float]]:
    """Orders per 10 minutes shaped like :func:`business_series` (afternoon peak, weekends at 60 %), ``peak``
    at 14:00 on weekdays, Poisson-like noise (sd = sqrt(mean))."""
    rng = random.Random(seed)
    out = []
    for i in range(28 * DAY):
        ts = T0 + i * STEP
        hour = (ts % 86400.0) / 3600.0
        weekend = (int(ts // 86400.0) + 3) % 7 >= 5
        base = peak * (0.3 + 0.7 * math.exp(-(((hour - 14.0) / 4.0) ** 2))) * (0.6 if weekend else 1.0)
        out.append((ts, base + rng.gauss(0.0, math.sqrt(base))))
    return out


def with_drop(points: list[tuple[float, float]], start: int, length: int, factor: float) -> list[tuple[float, float]]:
    return [(ts, v * factor if start <= i < start + length else v) for i, (ts, v) in enumerate(points)]


def run(points: list[tuple[float, float]]) -> list[Verdict]:
    det = make_detector("seasonal", "medium")
    return [det.update(ts, value) for ts, value in points]


def alarms(verdicts: list[Verdict], start: int, stop: int) -> list[int]:
    """Indices (relative to ``DROP_AT``) of the alarms in [start, stop)."""
    return [i - DROP_AT for i in range(start, stop) if verdicts[i].is_anomaly]


@pytest.mark.parametrize("peak", [1000.0, 3000.0])  # the synthetic month's orders, and three times as busy
@pytest.mark.parametrize("seed", SEEDS)
def test_the_recovery_of_a_six_hour_drop_on_the_morning_ramp_does_not_alarm(seed: int, peak: float) -> None:
    """15 % fewer orders from 09:00 to 15:00: coming back to the normal day is not a spike (before, the fast
    level had followed the drop, or a drift had made it the normal, and the way back alarmed in 4 of 5 seeds)."""
    verdicts = run(with_drop(busy_month(seed, peak), DROP_AT, SIX_HOURS, 0.85))
    end = DROP_AT + SIX_HOURS
    assert alarms(verdicts, end, end + DAY) == [], "the recovery (and the day after it) must be quiet"


@pytest.mark.parametrize("seed", SEEDS)
def test_a_fifteen_percent_drop_of_a_busy_count_is_announced_within_an_hour(seed: int) -> None:
    """At 3000 orders per 10 minutes at the peak (≈1400 at 09:00, so 15 % is ≈ 5.6 sigma a point)."""
    verdicts = run(with_drop(busy_month(seed, 3000.0), DROP_AT, SIX_HOURS, 0.85))
    assert alarms(verdicts, DROP_AT, DROP_AT + HOUR), "not announced within the hour"


@pytest.mark.xfail(strict=True, reason="open (issue #14 item 4a): at ~450 orders per 10 minutes a 15 % drop is "
                   "~3 sigma a point and the fast level follows it within the hour; found in 1 of 5 seeds")
def test_a_fifteen_percent_drop_of_the_synthetic_month_is_announced_within_an_hour_in_every_seed() -> None:
    found = [seed for seed in SEEDS
             if alarms(run(with_drop(business_series(seed=seed), DROP_AT, SIX_HOURS, 0.85)), DROP_AT, DROP_AT + HOUR)]
    assert found == SEEDS


@pytest.mark.parametrize("hours", [1, 6, 48, 7 * 24])
@pytest.mark.parametrize("seed", [1, 2])
def test_a_drop_to_zero_is_never_the_new_normal_however_long(seed: int, hours: int) -> None:
    """Orders stop at 10:00 on a Tuesday: no drift, 0 never enters the normal band, announced at once (and
    again after each hold-off), and the return of the orders is not news (the model kept the normal day; a
    noise point at the band's edge in the day after may alarm, as it does there without the outage)."""
    start, length = 15 * DAY + 10 * 6, hours * 6
    points = [(ts, 0.0 if start <= i < start + length else v) for i, (ts, v) in enumerate(business_series(seed=seed))]
    verdicts = run(points)
    outage = verdicts[start:start + length]
    assert verdicts[start].is_anomaly, "the drop to zero is news at once"
    assert not any(v.drift for v in outage), "zero accepted as the new normal"
    assert all(v.lower is not None and v.lower > 0.0 for v in outage), "zero inside the normal band"
    assert sum(v.is_anomaly for v in outage) <= 1 + hours // 4, "more than one announcement per hold-off"
    back = verdicts[start + length:start + length + DAY]
    assert not back[0].is_anomaly, "the orders coming back alarmed"
    assert sum(v.is_anomaly for v in back) <= 1, "the day after the outage is not back to normal"


def test_a_sum_that_drops_to_zero_in_a_short_history_is_never_drift() -> None:
    """Revenue per minute without seasonality (the demo's setting): three hours at 0 stay an outage."""
    rng = random.Random(7)
    det = make_detector("seasonal", "medium", seasonality="none", warmup=30)
    for i in range(200):
        det.update(60.0 * i, 500.0 + rng.gauss(0.0, 40.0))
    verdicts = [det.update(60.0 * (200 + i), 0.0) for i in range(180)]
    assert verdicts[0].is_anomaly
    assert not any(v.drift for v in verdicts)
    assert all(v.expected is not None and v.expected > 300.0 for v in verdicts)


def test_a_version_4_state_restores_with_the_lag_channel_fresh() -> None:
    det = SeasonalDetector()
    for ts, value in business_series(days=9, seed=4):
        det.update(ts, value)
    state = json.loads(json.dumps(det.to_state()))
    # what the previous release wrote: version 4, the knots without the lag channel's six numbers
    knots = base64.b64decode(state["knots"])[:-4 * 6]
    old = state | {"version": 4, "knots": base64.b64encode(knots).decode("ascii")}
    twin = SeasonalDetector.from_state(old)
    assert list(twin.lag) == [0.0] * 6
    assert twin.to_state()["version"] == 5
    assert twin.daily == det.daily and twin.level == det.level


@pytest.mark.parametrize("kind", ["seasonal", "calibrated"])
def test_a_drop_to_zero_is_announced_even_during_the_hold_off_of_a_lesser_dip(kind: str) -> None:
    """A noise dip alarms (score up to 1), then within its hold-off the series stops (0 where the band lies above 0):
    the outage must still be announced at a score an anomaly rule with ``min_score`` 0.6 fires on. Before, a dip
    scoring over 0.8 in the 4 hours before held every zero of the outage at just under the threshold (10 of 400
    outages here, e.g. seed 17), and the outage's alert never fired. The outage's own zeros stay held after it."""
    for seed in range(25):
        for partial in (0.0, 6.0):
            rng = random.Random(seed)
            det = make_detector(kind, "medium", seasonality="none", warmup=30)
            ts = 1_700_000_000.0
            for _ in range(120):
                det.update(ts, float(sum(1 for _ in range(50) if rng.random() < 0.5)))  # ~25 a window
                ts += 60.0
            verdicts = []
            for value in [partial] + [0.0] * 30:
                verdicts.append(det.update(ts, value))
                ts += 60.0
            announced = [v for v in verdicts if v.is_anomaly and v.score >= 0.6]
            assert announced, (seed, partial, [round(v.score, 3) for v in verdicts[:4]])
            assert len([v for v in verdicts if v.is_anomaly]) <= 2, (seed, partial)   # then held, not a storm
