"""Rule conditions on single samples (pure)."""

from __future__ import annotations

from alerting.config import AbsenceRule, AnomalyRule, ChangeRule, ThresholdRule
from alerting.rules import WEEK, baseline_start, evaluate, history_retention
from alerting.samples import Sample


def s(value: float | None, **kw: object) -> Sample:
    return Sample("orders", {}, 600.0, 660.0, value, **kw)  # type: ignore[arg-type]


def test_threshold_above_below_outside() -> None:
    assert evaluate(ThresholdRule(below=10), s(9)).active
    assert not evaluate(ThresholdRule(below=10), s(10)).active
    assert evaluate(ThresholdRule(above=10), s(11)).summary == "11 is above 10"
    rule = ThresholdRule(outside=(5, 10))
    assert [evaluate(rule, s(v)).active for v in (4, 5, 7, 10, 11)] == [True, False, False, False, True]
    assert not evaluate(ThresholdRule(below=10), s(None)).active  # no data is the absence rule's job


def test_threshold_hysteresis_only_while_firing() -> None:
    rule = ThresholdRule(below=100, hysteresis=10)
    assert not evaluate(rule, s(105), firing=False).active
    assert evaluate(rule, s(105), firing=True).active  # must recover above 110 to clear
    assert not evaluate(rule, s(111), firing=True).active


def test_disabled_rule_never_fires() -> None:
    assert not evaluate(ThresholdRule(below=10, enabled=False), s(0)).active


def test_change_rule_against_previous_and_last_week() -> None:
    drop = ChangeRule(below_pct=30)
    assert baseline_start(drop, s(1)) == 540.0
    assert evaluate(drop, s(60), baseline=100).active
    assert not evaluate(drop, s(75), baseline=100).active
    assert not evaluate(drop, s(60), baseline=None).active
    assert not evaluate(drop, s(60), baseline=0).active
    rise = ChangeRule(above_pct=50, compare_to="same_window_last_week")
    assert baseline_start(rise, s(1)) == 600.0 - WEEK
    cond = evaluate(rise, s(200), baseline=100)
    assert cond.active and "+100.0% vs the same window last week" in cond.summary
    assert history_retention((drop, rise)) == WEEK + 86400.0
    assert history_retention((ThresholdRule(below=1),)) is None


def test_anomaly_rule_uses_verdicts_and_min_score() -> None:
    rule = AnomalyRule(min_score=0.8)
    assert evaluate(rule, s(5, is_anomaly=True, score=0.9, expected=20, lower=15, upper=25)).active
    assert not evaluate(rule, s(5, is_anomaly=True, score=0.5)).active
    assert not evaluate(rule, s(5, is_anomaly=False, score=0.99)).active
    drift = AnomalyRule(fire_on=["drift"])
    cond = evaluate(drift, s(5, drift=True))
    assert cond.active and "new normal" in cond.summary
    assert not evaluate(drift, s(5, is_anomaly=True)).active


def test_absence_rule() -> None:
    assert evaluate(AbsenceRule(), s(None)).active
    assert not evaluate(AbsenceRule(), s(0)).active
    assert evaluate(AbsenceRule(zero_is_absent=True), s(0)).active


def test_summary_template_with_unknown_field_does_not_break() -> None:
    rule = ThresholdRule(below=10, summary="{kpi} low: {value} ({detail}) {nope}")
    assert evaluate(rule, s(3)).summary == "orders low: 3 (3 is below 10) total"


def test_non_finite_values_are_no_data() -> None:
    assert not evaluate(ThresholdRule(above=10), s(float("inf"))).active
    assert evaluate(AbsenceRule(), s(float("nan"))).active
