"""The ``calibrated`` detector keeps the seasonal detector's business behaviour and adds an alarm budget."""

from __future__ import annotations

import json
import random

import pytest

from detectors.base import DetectorError, Verdict
from detectors.calibrated import CalibratedDetector
from detectors.registry import make_detector, restore_detector
from tests.detectors.test_seasonal import DAY, T0, business_series, scaled

Points = list[tuple[float, float]]


def run(points: Points, kind: str = "calibrated", **params: object) -> list[Verdict]:
    det = make_detector(kind, **params)  # type: ignore[arg-type]
    return [det.update(ts, value) for ts, value in points]


def alarms(verdicts: list[Verdict], start: int = 0) -> list[int]:
    return [i - start for i, v in enumerate(verdicts) if v.is_anomaly]


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_business_months_raise_no_alarm(seed: int) -> None:
    assert alarms(run(business_series(seed=seed))) == []


@pytest.mark.parametrize(("name", "factor"), [("spike", 3.0), ("dip", 0.4), ("drop to zero", 0.0)])
def test_spike_dip_and_drop_are_flagged_at_once(name: str, factor: float) -> None:
    at = 20 * DAY + 14 * 6  # Sunday 14:00 of week 3
    verdicts = run(scaled(business_series(), {at: factor}))
    assert verdicts[at].is_anomaly, f"{name} not flagged"
    assert not any(v.is_anomaly for v in verdicts[at + 2:at + DAY]), f"alarms linger after the {name}"


@pytest.mark.parametrize("step", [400.0, -600.0, 3000.0])
def test_level_shift_is_one_drift_then_silence(step: float) -> None:
    start = 15 * DAY + 10 * 6
    points = [(ts, v + step if i >= start else v) for i, (ts, v) in enumerate(business_series())]
    verdicts = run(points)[start:start + 3 * DAY]
    assert verdicts[0].is_anomaly
    drifts = [i for i, v in enumerate(verdicts) if v.drift]
    assert len(drifts) == 1 and drifts[0] <= 24, drifts
    assert [a for a in alarms(verdicts) if a > drifts[0]] == []


def test_a_second_borderline_alarm_the_same_day_is_held() -> None:
    """Orders 20% up at 11:00, 15% down at 13:00: two seasonal alarms; the second, barely over the
    threshold, is over the series' budget.  A clear outage at 13:00 still alarms."""
    start = 17 * DAY + 11 * 6
    base = business_series(days=21, seed=3)
    borderline = scaled(base, {start: 1.2, start + 12: 0.85})
    assert alarms(run(borderline, "seasonal"), start) == [0, 12]
    held = run(borderline)
    assert alarms(held, start) == [0]
    assert 0.0 < held[start + 12].score < 0.55, "a held point reports its reduced score"
    assert alarms(run(scaled(base, {start: 1.2, start + 12: 0.0})), start) == [0, 12]
    assert alarms(run(borderline, budget=0.0), start) == [0, 12], "budget 0 is the seasonal detector"


def test_the_budget_recovers_within_days() -> None:
    """The borderline dip of the test above, two days after a spike, alarms: the alarm count has faded."""
    start = 15 * DAY + 11 * 6
    points = scaled(business_series(days=21, seed=3), {start: 3.0, start + 2 * DAY + 12: 0.85})
    assert alarms(run(points), start) == [0, 2 * DAY + 12]


def test_every_alarm_without_the_likelihood_is_a_seasonal_alarm() -> None:
    """A series with an outlier in either direction about every eight hours."""
    rng = random.Random(0)
    points = [(T0 + 300.0 * i, rng.gauss(10.0, 1.0) * (rng.choice([0.6, 1.5]) if rng.random() < 0.01 else 1.0))
              for i in range(4000)]
    calibrated, seasonal = set(alarms(run(points))), set(alarms(run(points, "seasonal")))
    assert calibrated <= seasonal and len(calibrated) < len(seasonal)


def test_state_restores_exactly_and_stays_small() -> None:
    points = business_series(days=10, seed=2)
    cases: list[dict[str, object]] = [{}, {"likelihood": True, "budget": 0.3, "holdoff_h": 2.0}]
    sizes = []
    for params in cases:
        det = CalibratedDetector("high", **params)  # type: ignore[arg-type]
        for ts, value in scaled(points, {5 * DAY + 40: 3.0})[:-DAY]:  # an alarm: the state holds its hour too
            det.update(ts, value)
        text = json.dumps(det.to_state())
        # measured as stored: the checkpoint writes compact JSON (orjson, streams.observers.checkpoint)
        sizes.append((len(json.dumps(det.to_state(), separators=(",", ":"))), bool(json.loads(text)["tod"])))
        twin = restore_detector(json.loads(text))
        assert isinstance(twin, CalibratedDetector) and twin.params == det.params
        assert twin.seasonal.params == det.seasonal.params
        assert [twin.update(*p) for p in points[-DAY:]] == [det.update(*p) for p in points[-DAY:]]
    size, alarmed = sizes[0]
    assert alarmed, "the default case did not alarm: it measured the small state"
    assert size <= 2048, f"the default kind keeps {size} bytes per series (target 2 KB)"


@pytest.mark.parametrize("params", [{"budget": -0.1}, {"budget_days": 0}, {"likelihood": 1}, {"memory": 0},
                                    {"colour": "red"}, {"memory_days": -1.0}])
def test_bad_parameters_are_refused(params: dict[str, object]) -> None:
    with pytest.raises(DetectorError):
        make_detector("calibrated", **params)  # type: ignore[arg-type]


def test_a_malformed_state_is_refused() -> None:
    state = make_detector("calibrated").to_state()
    del state["cal"]
    with pytest.raises(DetectorError, match="not a valid calibrated"):
        restore_detector(state)
