"""The review's figures from a known set of incidents, acks and feedback, each computed by hand below."""

from __future__ import annotations

from typing import Any

import pytest

from alerting.history import IncidentRecord
from alerting.review import AttainmentFigure, Review, review
from alerting.tuning import RuleNoise, proposals, with_backtest
from catalog.teams import Budget

S = 1_700_000_000.0
H, D = 3600.0, 86400.0
UNTIL = S + 7 * D


def inc(fp: str, kpi: str, rule: str, start: float, *, ack: float | None = None, resolve: float | None = None,
        value: float = 0.0, team: str = "sales", **series: str) -> IncidentRecord:
    labels = {"alertname": rule, "kpi": kpi, "severity": "warning", "team": team, **series}
    return IncidentRecord(fp, kpi, rule, labels, "warning", S + start,
                          resolved_at=None if resolve is None else S + start + resolve,
                          acked_at=None if ack is None else S + start + ack, acked_by="ann" if ack else "",
                          value=value)


INCIDENTS = [
    inc("e", "orders", "low", 1 * H, ack=60, resolve=600, value=62.0, region="east"),      # 1 false (revised)
    inc("e", "orders", "low", 2 * H, ack=120, resolve=1200, value=70.0, region="east"),    # 2 false
    inc("w", "orders", "low", 3 * H, ack=300, resolve=1800, value=40.0, region="west"),    # 3 true
    inc("e", "orders", "low", 1 * D, resolve=300, value=75.0, region="east"),              # 4 no ack, no feedback
    inc("g", "gmv", "odd", 2 * D, ack=600, resolve=3600, value=5.0),                       # 5 expected
    inc("g", "gmv", "odd", 3 * D, ack=900, value=4.0),                                     # 6 true, still open
    inc("r", "refunds", "high", 1 * D, ack=10, resolve=20, team="service"),                # another team's
    inc("e", "orders", "low", -1 * H, ack=5, resolve=50, value=1.0, region="east"),        # before the period
]


def fb(verdict: str, fp: str, start: float, at: float) -> dict[str, Any]:
    return {"kind": "feedback", "verdict": verdict, "fingerprint": fp, "kpi": "x", "rule": "y", "labels": {},
            "incident": S + start, "who": "ann", "at": S + at, "reason": ""}


AUDIT = [
    fb("true_alarm", "e", 1 * H, 2 * H), fb("false_alarm", "e", 1 * H, 3 * H),  # the later verdict counts
    fb("false_alarm", "e", 2 * H, 3 * H), fb("true_alarm", "w", 3 * H, 4 * H),
    fb("expected", "g", 2 * D, 2 * D + H), fb("true_alarm", "g", 3 * D, 3 * D + H),
    fb("false_alarm", "e", -1 * H, 0),                                              # on an incident before
    fb("maybe", "g", 3 * D, 4 * D), {"kind": "feedback", "verdict": "true_alarm"},   # not a verdict; malformed
    {"kind": "threshold", "kpi": "orders", "rule": "low", "field": "below", "old": 90, "new": 80, "who": "bob",
     "at": S + D},
    {"kind": "threshold", "kpi": "refunds", "rule": "high", "field": "above", "old": 1, "new": 2, "at": S + D},
    {"kind": "threshold", "kpi": "orders", "rule": "low", "field": "below", "old": 95, "new": 90, "at": S - 10},
    {"kind": "ack", "fingerprint": "e", "at": S + H},
]
RULES: dict[tuple[str, str], dict[str, Any]] = {("orders", "low"): {"type": "threshold", "below": 80.0}, ("gmv", "odd"): {"type": "anomaly"}}
KPIS = ["orders", "gmv"]


THREE_A_WEEK = Budget(3, "week")


def sales(budget: Budget | None = THREE_A_WEEK) -> Review:
    return review("sales", S, UNTIL, INCIDENTS, AUDIT, kpis=KPIS, budget=budget, rules=RULES,
                  sensitivity={"gmv": "medium", "orders": "medium"},
                  attainment=[AttainmentFigure("orders", 800.0, 1000.0, "day")])


def test_counts_budget_and_times() -> None:
    r = sales()
    assert r.alerts == 6 and r.per_week == 6.0  # 1-6; 7 is another team's, 8 started before the period
    assert r.budget is not None and (r.budget.allowed, r.budget.over, r.budget.excess) == (3.0, True, 3.0)
    # acks 60 120 300 600 900 (4 never): median 300, p90 = the 5th of 5 (ceil(0.9*5) = 5)
    assert (r.ack.count, r.ack.missing, r.ack.median_s, r.ack.p90_s) == (5, 1, 300.0, 900.0)
    # resolved 300 600 1200 1800 3600 (6 open)
    assert (r.resolve.count, r.resolve.missing, r.resolve.median_s, r.resolve.p90_s) == (5, 1, 1200.0, 3600.0)
    assert r.attainment[0].ratio == 0.8


def test_feedback_precision_per_rule_and_noisiest() -> None:
    r = sales()
    assert r.feedback == {"true_alarm": 2, "false_alarm": 2, "expected": 1} and r.precision == 0.5
    low, odd = r.rules
    assert (low.kpi, low.rule, low.alerts, low.true_alarms, low.false_alarms, low.expected) == ("orders", "low", 4, 1, 2, 0)
    assert low.precision == pytest.approx(1 / 3) and low.with_feedback == 3
    assert low.ack is not None and (low.ack.median_s, low.ack.p90_s) == (120.0, 300.0)          # 60 120 300
    assert low.resolve is not None and (low.resolve.median_s, low.resolve.p90_s) == (900.0, 1800.0)  # 300 600 1200 1800
    assert (odd.rule, odd.alerts, odd.precision, odd.expected) == ("odd", 2, 1.0, 1)  # expected is in neither term
    assert [(s.kpi, s.series, s.alerts, s.false_alarms) for s in r.noisiest_series] == [
        ("orders", "region=east", 3, 2), ("gmv", "total", 2, 0), ("orders", "region=west", 1, 0)]
    assert [(c["kpi"], c["new"]) for c in r.changes] == [("orders", 80)]  # in the period, on the team's KPIs


def test_threshold_proposal_from_the_false_alarms() -> None:
    [p] = sales().proposals  # 3 over: the noisiest rule (2 false alarms, 4 alerts) covers it alone
    assert (p.team, p.kpi, p.rule, dict(p.change)) == ("sales", "orders", "low", {"below": 62.0})
    assert p.basis["kept"] == 1 and p.backtest is None  # the true alarm at 40 would still fire
    assert p.reason.startswith("4 alerts in 7 days; the team is 3 over its budget of 3/week; 2 marked false alarm")
    assert with_backtest(p, {"alerts": 1}).backtest == {"alerts": 1}


def test_more_rules_when_one_does_not_cover_the_excess() -> None:
    low, odd = sales(Budget(1, "week")).proposals  # 5 over: orders/low (4) then gmv/odd
    assert dict(low.change) == {"below": 62.0} and dict(odd.change) == {"sensitivity": "low"}
    assert not sales(Budget(6, "week")).proposals and not sales(None).proposals  # within budget / none agreed


def test_other_rule_kinds() -> None:
    values = ((10.0, ""), (20.0, ""), (30.0, ""))
    def one(spec: dict[str, Any], sens: str = "") -> dict[str, Any]:
        [p] = proposals("t", [RuleNoise("k", "r", 3, 0, 0, values)], 1.0, "1/week", 7 * D, {("k", "r"): spec},
                        {"k": sens} if sens else {})
        return dict(p.change)
    assert one({"type": "threshold", "above": 5.0}) == {"above": 20.0}  # no feedback: the median of 10 20 30
    assert one({"type": "threshold", "outside": [40.0, 100.0]}) == {"outside": [20.0, 100.0]}
    assert one({"type": "change", "below_pct": 30.0}) == {"below_pct": 45.0}
    assert one({"type": "absence", "for": 600.0}) == {"for": 1200.0}
    assert one({"type": "anomaly", "min_score": 0.8}, "low") == {"min_score": 0.85}
    assert one({"type": "anomaly"}, "high") == {"sensitivity": "medium"}


def test_json_is_complete() -> None:
    out = sales().to_dict()
    assert out["budget"]["excess"] == 3.0 and out["noisiest_rules"][0] == ["orders", "low"]
    assert out["proposals"][0]["change"] == {"below": 62.0} and len(out["incidents"]) == 6
    assert out["rules"][0]["with_feedback"] == 3 and out["attainment"][0]["ratio"] == 0.8


def test_a_rule_label_is_not_a_series() -> None:
    rec = IncidentRecord("f", "orders", "low", {"team": "sales", "region": "east", "page": "yes"}, "warning", S,
                         series={"region": "east"})
    old = IncidentRecord("g", "orders", "low", {"team": "sales", "region": "west", "page": "yes"}, "warning", S + 1)
    r = review("sales", S, UNTIL, [rec, old], [], kpis=KPIS)
    assert sorted(s.series for s in r.series) == ["page=yes,region=west", "region=east"]  # a record without series
