"""Rule evaluation: is a rule's condition true for one sample?

Pure functions; the lifecycle (``for``, keep-firing) lives in :mod:`alerting.lifecycle`. Change rules need an
earlier value of the same series: :func:`baseline_start` names the window, the caller looks it up.

Examples
--------
>>> from alerting.config import ThresholdRule
>>> from alerting.samples import Sample
>>> evaluate(ThresholdRule(below=10), Sample("orders", {}, 0, 60, 4.0)).active
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from alerting.config import AbsenceRule, AlertRuleSpec, AnomalyRule, ChangeRule, ThresholdRule
from alerting.samples import Sample
from catalog.alerts import fill_summary

__all__ = ["WEEK", "Condition", "baseline_start", "evaluate", "fill_summary", "flagged", "history_retention", "templated"]

WEEK = 7 * 86400.0


@dataclass(frozen=True, slots=True)
class Condition:
    """Whether the rule's condition holds, and a one-line human explanation."""

    active: bool
    summary: str


def _fmt(value: float | None) -> str:
    return "no data" if value is None else f"{value:g}"


def baseline_start(rule: AlertRuleSpec, sample: Sample) -> float | None:
    """Start of the window a change rule compares against, or ``None`` for other rules."""
    if not isinstance(rule, ChangeRule):
        return None
    if rule.compare_to == "previous":
        return sample.window_start - (sample.window_end - sample.window_start)
    return sample.window_start - WEEK


def history_retention(rules: tuple[AlertRuleSpec, ...]) -> float | None:
    """How many seconds of values a KPI's change rules need, or ``None`` when it has none."""
    needs = [
        WEEK + 86400.0 if r.compare_to == "same_window_last_week" else 86400.0
        for r in rules
        if isinstance(r, ChangeRule)
    ]
    return max(needs) if needs else None


def _threshold(rule: ThresholdRule, value: float | None, firing: bool) -> Condition:
    if value is None:
        return Condition(False, "no data")
    # While firing, the limits move by `hysteresis` towards "worse", so the value must clearly recover.
    margin = rule.hysteresis if firing else 0.0
    lo, hi = rule.outside if rule.outside is not None else (rule.below, rule.above)
    if lo is not None and value < lo + margin:
        return Condition(True, f"{_fmt(value)} is below {lo:g}")
    if hi is not None and value > hi - margin:
        return Condition(True, f"{_fmt(value)} is above {hi:g}")
    return Condition(False, f"{_fmt(value)} is within limits")


def _change(rule: ChangeRule, value: float | None, baseline: float | None) -> Condition:
    if value is None or baseline is None or baseline == 0:
        return Condition(False, "no baseline to compare with")
    pct = (value - baseline) / abs(baseline) * 100.0
    against = "the previous window" if rule.compare_to == "previous" else "the same window last week"
    text = f"{_fmt(value)} is {pct:+.1f}% vs {against} ({_fmt(baseline)})"
    if rule.above_pct is not None and pct > rule.above_pct:
        return Condition(True, text)
    if rule.below_pct is not None and pct < -rule.below_pct:
        return Condition(True, text)
    return Condition(False, text)


def flagged(rule: AnomalyRule, sample: Sample) -> bool:
    """Whether the detector's verdict on ``sample`` is one ``rule`` fires on (``fire_on``, ``min_score``)."""
    hit = ("anomaly" in rule.fire_on and sample.is_anomaly) or ("drift" in rule.fire_on and sample.drift)
    return hit and not (rule.min_score is not None and (sample.score is None or sample.score < rule.min_score))


def _anomaly(rule: AnomalyRule, sample: Sample) -> Condition:
    flagged_ = flagged(rule, sample)
    band = ""
    if sample.lower is not None and sample.upper is not None:
        band = f", expected {_fmt(sample.expected)} in [{sample.lower:g}, {sample.upper:g}]"
    kind = "level shift (new normal)" if sample.drift and not sample.is_anomaly else "anomaly"
    score = f" score {sample.score:.2f}" if sample.score is not None else ""
    if flagged_:
        return Condition(True, f"{kind}: {_fmt(sample.value)}{band}{score}")
    return Condition(False, f"{_fmt(sample.value)} is normal{band}")


def evaluate(
    rule: AlertRuleSpec, sample: Sample, *, firing: bool = False, baseline: float | None = None
) -> Condition:
    """Evaluate ``rule`` on ``sample``. ``firing`` enables threshold hysteresis; ``baseline`` feeds change rules."""
    if not rule.enabled:
        return Condition(False, "rule disabled")
    # NaN/inf (e.g. a ratio over an empty window) carry no information: treat them as no data.
    value = sample.value if sample.value is not None and math.isfinite(sample.value) else None
    if isinstance(rule, ThresholdRule):
        cond = _threshold(rule, value, firing)
    elif isinstance(rule, ChangeRule):
        cond = _change(rule, value, baseline)
    elif isinstance(rule, AnomalyRule):
        cond = _anomaly(rule, sample)
    else:
        cond = _absence(rule, value)
    return templated(rule, sample, cond)


def templated(rule: AlertRuleSpec, sample: Sample, cond: Condition) -> Condition:
    """``cond`` with the rule's ``summary`` template applied while active (``{detail}`` is the built-in text)."""
    template = rule.summary_in("en") or (next(iter(rule.summary.values()), None) if isinstance(rule.summary, dict) else None)
    if template and cond.active:
        fields = {"value": _fmt(sample.value), "kpi": sample.kpi, "detail": cond.summary, **sample.labels}
        return Condition(True, fill_summary(template, fields))
    return cond


def _absence(rule: AbsenceRule, value: float | None) -> Condition:
    if value is None or (rule.zero_is_absent and value == 0):
        return Condition(True, "no data in the window")
    return Condition(False, f"data present ({_fmt(value)})")
