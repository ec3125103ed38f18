"""Conformance checks every registered detector must pass.

Like River's ``river.checks``: plain functions that raise ``AssertionError``
with a message, run by ``tests/detectors/test_conformance.py`` for every kind
in :data:`detectors.registry.KINDS` and every configuration its
``_test_params()`` lists.  A new detector gets the whole suite for free.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable, Sequence

from detectors.base import Detector, DetectorError, Verdict
from detectors.registry import restore_detector

__all__ = ["ALL_CHECKS", "daily_series", "sample_series"]

Points = Sequence[tuple[float, float]]
Factory = Callable[[], Detector]


def sample_series(n: int = 400, seed: int = 7, step_s: float = 600.0) -> list[tuple[float, float]]:
    """A noisy daily-seasonal series with a spike, a dip and a level shift.

    Examples
    --------
    >>> pts = sample_series(10)
    >>> len(pts), pts[1][0] - pts[0][0]
    (10, 600.0)
    """
    rng = random.Random(seed)
    out = []
    for i in range(n):
        ts = 1_700_000_000.0 + step_s * i
        value = 100.0 + 20.0 * math.sin(2 * math.pi * ts / 86400.0) + rng.gauss(0.0, 2.0)
        value += 80.0 if i == n // 3 else (-60.0 if i == n // 2 else 0.0)
        value += 40.0 if i > 3 * n // 4 else 0.0
        out.append((ts, value))
    return out


def _state_text(det: Detector) -> str:
    return json.dumps(det.to_state(), sort_keys=True)


def check_verdict_fields(make: Factory, points: Points) -> None:
    """Every field is in range; warm-up verdicts carry no band and no alarm."""
    det = make()
    for ts, value in points:
        v = det.update(ts, value)
        assert isinstance(v, Verdict), f"update returned {type(v).__name__}, not Verdict"
        assert v.ts == ts and v.value == value, "verdict must echo ts and value"
        assert 0.0 <= v.score <= 1.0, f"score {v.score} outside [0, 1]"
        assert v.is_anomaly == (not v.warming_up and v.score >= det.threshold), "is_anomaly != score >= threshold"
        if v.warming_up:
            assert not v.is_anomaly and v.expected is None, "no alarm and no band while warming up"
            continue
        assert v.expected is not None and v.lower is not None and v.upper is not None, "band missing"
        assert all(math.isfinite(x) for x in (v.expected, v.lower, v.upper)), "band not finite"
        assert v.lower <= v.expected <= v.upper, f"band {v.lower} <= {v.expected} <= {v.upper} broken"


def check_score_one_is_pure(make: Factory, points: Points) -> None:
    """``score_one`` changes nothing: the state before equals the state after."""
    det = make()
    for ts, value in points:
        before = _state_text(det)
        first = det.score_one(ts, value)
        assert _state_text(det) == before, "score_one changed the detector state"
        assert det.score_one(ts, value) == first, "score_one gave two answers for one point"
        assert det.update(ts, value) == first, "update must return what score_one said"


def check_restore_is_exact(make: Factory, points: Points) -> None:
    """A detector restored from JSON state gives the same future verdicts."""
    det = make()
    half = len(points) // 2
    for ts, value in points[:half]:
        det.update(ts, value)
    clone = restore_detector(json.loads(json.dumps(det.to_state())))
    # compare verdicts, not state text: a re-pickled River model may share objects differently
    for ts, value in points[half:]:
        assert clone.update(ts, value) == det.update(ts, value), f"verdicts differ after restore at ts={ts}"


def check_no_look_ahead(make: Factory, points: Points) -> None:
    """Verdicts for a prefix do not change when more data follows."""
    cut = len(points) // 3
    short, full = make(), make()
    prefix = [short.update(ts, value) for ts, value in points[:cut]]
    assert [full.update(ts, value) for ts, value in points][:cut] == prefix, "look-ahead detected"


def check_bad_input_is_refused(make: Factory, points: Points) -> None:
    """NaN, infinities, None and strings raise DetectorError and leave the state alone."""
    det = make()
    for ts, value in points[:50]:
        det.update(ts, value)
    before = _state_text(det)
    ts = points[50][0]
    bad: list[tuple[object, object]] = [(ts, math.nan), (ts, math.inf), (ts, -math.inf), (ts, None),
                                        (ts, "1.0"), (math.nan, 1.0), (None, 1.0)]
    for method in (det.update, det.score_one, det.learn_one):
        for bad_ts, bad_value in bad:
            try:
                method(bad_ts, bad_value)  # type: ignore[arg-type]
            except DetectorError:
                continue
            raise AssertionError(f"{method.__name__}({bad_ts!r}, {bad_value!r}) did not raise DetectorError")
    assert _state_text(det) == before, "refused input changed the state"


def check_constant_series_is_quiet(make: Factory, points: Points) -> None:
    """A constant series never alarms and never drifts."""
    det = make()
    for ts, _ in points:
        v = det.update(ts, 42.0)
        assert not v.is_anomaly and not v.drift, f"constant series flagged at ts={ts}"


def check_state_is_json(make: Factory, points: Points) -> None:
    """``to_state`` survives ``json.dumps`` and names its kind."""
    det = make()
    for ts, value in points[:20]:
        det.update(ts, value)
    state = json.loads(json.dumps(det.to_state()))
    assert isinstance(state.get("kind"), str), "state must carry its kind"


def daily_series(days: int, step_s: float = 600.0) -> list[tuple[float, float]]:
    """A clean daily-seasonal series of ``days`` days starting at a UTC midnight.

    >>> pts = daily_series(1)
    >>> len(pts), pts[0][0] % 86400
    (144, 0.0)
    """
    rng = random.Random(3)
    start = 1_700_006_400.0  # 2023-11-15 00:00 UTC
    return [(start + step_s * i, 100.0 + 20.0 * math.sin(2 * math.pi * step_s * i / 86400.0) + rng.gauss(0.0, 2.0))
            for i in range(int(days * 86400 / step_s))]


def check_label_teaches(make: Factory, points: Points) -> None:
    """``learn_label`` refuses bad input, is deterministic and restorable; a kind with ``learns_labels`` no longer
    alarms on a deviation taught as normal when it recurs at the same time the next day (an untaught twin does)
    and judges the same deviation at another hour as before; any other kind's state is left unchanged."""
    half = len(points) // 2
    det, twin = make(), make()
    for ts, value in points[:half]:
        det.update(ts, value)
        twin.update(ts, value)
    before = _state_text(det)
    for bad_ts, bad_value in [(points[half][0], math.nan), (None, 1.0), (points[half][0], "1")]:
        try:
            det.learn_label(bad_ts, bad_value, normal=True)  # type: ignore[arg-type]
        except DetectorError:
            continue
        raise AssertionError(f"learn_label({bad_ts!r}, {bad_value!r}) did not raise DetectorError")
    assert _state_text(det) == before, "refused input changed the state"
    ts, value = points[half - 1]
    for d in (det, twin):
        d.learn_label(ts, value + 50.0, normal=True)
    if not det.learns_labels:
        assert _state_text(det) == before, "learn_label changed a detector that takes no labels"
    clone = restore_detector(json.loads(json.dumps(det.to_state())))
    for ts, value in points[half:]:  # verdicts, not state text: a re-pickled River model may differ in bytes
        verdict = det.update(ts, value)
        assert twin.update(ts, value) == verdict, f"learn_label is not deterministic: verdicts differ at ts={ts}"
        assert clone.update(ts, value) == verdict, f"verdicts differ after restore at ts={ts}"
    if det.learns_labels:
        _check_next_day(make)


def _check_next_day(make: Factory) -> None:
    series, per_day, bump = daily_series(4), 144, 100.0  # 10-minute points; a deviation of about 50 sigmas
    first, second = 2 * per_day + 84, 3 * per_day + 84  # 14:00 on days 2 and 3
    taught, untaught = make(), make()
    for i, (ts, value) in enumerate(series[:second]):
        seen = value + bump if i == first else value
        taught.update(ts, seen)
        untaught.update(ts, seen)
    taught.learn_label(series[first][0], series[first][1] + bump, normal=True)
    taught = restore_detector(json.loads(json.dumps(taught.to_state())))  # the lesson survives a restart
    ts, value = series[second]
    was, now = untaught.score_one(ts, value + bump), taught.score_one(ts, value + bump)
    assert was.is_anomaly, f"the untaught twin should alarm on the recurring deviation: {was}"
    assert not now.is_anomaly and now.score < was.score, f"taught as normal, yet {now} (untaught: {was})"
    later = ts + 8 * 3600.0
    assert taught.score_one(later, value + bump) == untaught.score_one(later, value + bump), \
        "a label taught at one time of day changed the judgement at another"


ALL_CHECKS: list[Callable[[Factory, Points], None]] = [
    check_verdict_fields, check_score_one_is_pure, check_restore_is_exact, check_no_look_ahead,
    check_bad_input_is_refused, check_constant_series_is_quiet, check_state_is_json, check_label_teaches,
]
