"""The business calendar in the default detector (issue #14, item 5): on a synthetic series with China's 2026 Spring
Festival and Qingming holidays, their adjusted working days and a promotion, the detector given the calendar compares
a holiday with holidays and a promotion with its raised band; without it, the same days alarm."""

from __future__ import annotations

import json
import math
import random
from datetime import UTC, date, datetime

import pytest

from catalog.calendar import Calendar, CalendarSpec, Promotion
from detectors.base import Verdict
from detectors.registry import make_detector, restore_detector

STEP = 600.0
DAY = int(86400 / STEP)
T0 = datetime(2026, 1, 5, tzinfo=UTC).timestamp()  # a Monday; the series runs 14 weeks, to 2026-04-12
WEEKS = 14
PROMO = (date(2026, 3, 18), date(2026, 3, 19))  # Wednesday and Thursday: sales at twice a normal day
CN = CalendarSpec(builtin="cn", promotions=[Promotion.model_validate({"name": "spring_sale", "from": PROMO[0],
                                                                      "to": PROMO[1], "lift": 3.0})]).resolve()


def _day(i: int) -> date:
    return datetime.fromtimestamp(T0 + i * STEP, UTC).date()


def shop(seed: int, promo_factor: float = 2.0) -> list[tuple[float, float]]:
    """Orders per 10 minutes: afternoon peak, days off (weekends and holidays) at 60 %, adjusted working days (调休
    Saturdays) like any working day, the promotion days at ``promo_factor``; Poisson-like noise."""
    rng = random.Random(seed)
    out = []
    for i in range(WEEKS * 7 * DAY):
        ts = T0 + i * STEP
        hour = (ts % 86400.0) / 3600.0
        day = _day(i)
        off = CN.kind_of(day) != "workday"
        base = 1000.0 * (0.3 + 0.7 * math.exp(-(((hour - 14.0) / 4.0) ** 2))) * (0.6 if off else 1.0)
        if PROMO[0] <= day <= PROMO[1]:
            base *= promo_factor
        out.append((ts, base + rng.gauss(0.0, math.sqrt(base))))
    return out


def run(points: list[tuple[float, float]], calendar: Calendar | None) -> list[Verdict]:
    det = make_detector(sensitivity="medium", calendar=calendar)
    return [det.update(ts, value) for ts, value in points]


def alarm_days(verdicts: list[Verdict]) -> set[date]:
    return {_day(i) for i, v in enumerate(verdicts) if v.is_anomaly}


HOLIDAYS = [*(date(2026, 2, 15 + k) for k in range(9)), *(date(2026, 4, 4 + k) for k in range(3))]
WORKED = [date(2026, 2, 14), date(2026, 2, 28)]  # Saturdays worked (调休)
# the special days and the first working day after each holiday
SPECIAL = {*HOLIDAYS, *WORKED, date(2026, 2, 24), date(2026, 4, 7)}


def test_holidays_and_adjusted_working_days_alarm_without_the_calendar_and_not_with_it() -> None:
    """Eight seeds: without the calendar the holidays and the worked Saturdays are news in every seed; with it,
    two marginal alarms in all (seed 5: 00:40 of the first working day after the nine-day Spring Festival, score
    0.57, and 00:50 of the Qingming Saturday, 0.58; medium's threshold is 0.55), and the calendar adds no alarm
    on any other day."""
    with_total = 0
    for seed in range(1, 9):
        points = shop(seed, promo_factor=1.0)
        without, with_ = alarm_days(run(points, None)), alarm_days(run(points, CN))
        assert without & SPECIAL, seed
        with_total += len(with_ & SPECIAL)
        assert with_ - SPECIAL <= without - SPECIAL, seed  # the base model's own noise alarms, if any, only
    assert with_total <= 2


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_promotion_raises_the_band_instead_of_alarming(seed: int) -> None:
    points = shop(seed)
    first = next(i for i in range(len(points)) if _day(i) == PROMO[0])
    without, with_ = run(points, None), run(points, CN)
    assert any(v.is_anomaly for v in without[first:first + 6]), "the first hour of the promotion alarms without it"
    assert not alarm_days(with_) & {PROMO[0], PROMO[1], date(2026, 3, 20)}, sorted(alarm_days(with_))
    assert alarm_days(with_) - SPECIAL <= alarm_days(without)
    inside = [v for v in with_ if PROMO[0] <= datetime.fromtimestamp(v.ts, UTC).date() <= PROMO[1]]
    assert all(v.upper is not None and v.upper >= v.value for v in inside)


def test_a_promotion_does_not_hide_an_outage_or_a_rise_beyond_its_lift() -> None:
    points = shop(1)
    first = next(i for i in range(len(points)) if _day(i) == PROMO[0])
    noon = first + 12 * 6
    for broken, factor in ((noon, 0.0), (noon, 2.5)):  # a stop, and four times a normal day (lift is 3)
        pts = [(ts, v * factor) if i == broken else (ts, v) for i, (ts, v) in enumerate(points)]
        assert run(pts[:broken + 1], CN)[broken].is_anomaly, factor


def test_restore_with_the_calendar_is_exact_mid_holiday_and_the_state_stays_small() -> None:
    points = shop(2)
    cut = next(i for i in range(len(points)) if _day(i) == date(2026, 4, 5))
    det = make_detector(calendar=CN)
    for ts, v in points[:cut]:
        det.update(ts, v)
    state = det.to_state()
    assert twin_free(state) and len(json.dumps(state, separators=(",", ":"))) <= 2048
    twin = restore_detector(json.loads(json.dumps(state)), CN)
    assert [det.update(ts, v) for ts, v in points[cut:]] == [twin.update(ts, v) for ts, v in points[cut:]]


def twin_free(state: dict[str, object]) -> bool:
    """The state holds a learned holiday factor (one more float32 knot), and nothing of the calendar."""
    plain = make_detector().to_state()
    return set(state) == set(plain) and len(str(state["knots"])) > len(str(plain["knots"]))


def test_a_calendar_with_nothing_on_these_days_changes_nothing() -> None:
    points = shop(3, promo_factor=1.0)[: 6 * 7 * DAY]  # six weeks before the first holiday
    empty = CalendarSpec().resolve()
    assert run(points, None) == run(points, empty)
    assert make_detector(calendar=None).to_state() == make_detector().to_state()
