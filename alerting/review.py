"""The review (复盘) of one team over one period, computed from what the store keeps. Pure: no I/O, no clock.

Inputs: the incident history (:mod:`alerting.history`), the audit log (feedback and threshold changes), the
team's KPIs, its budget (:class:`catalog.teams.Budget`) and the KPIs' attainment. :func:`review` returns a
:class:`Review`; ``kpimon review`` prints it and the digest (:mod:`alerting.digest`) sends it.

What the figures mean:

* an **alert** is one incident: an alert that started firing in ``[since, until)`` on a KPI the team owns or
  with the label ``team`` set to it (a rule may route to another team);
* **alerts per week** = alerts × 7 days / period; **over budget** when alerts exceed the budget pro rata
  (``5/week`` allows 10 in 14 days);
* **time to acknowledge / resolve** = ``acked_at`` / ``resolved_at`` − ``starts_at`` over the period's incidents
  that were acknowledged / resolved (whenever that happened); median (the mean of the two middle values for an
  even count) and p90 by nearest rank (the smallest value with at least 90 % of the values at or below it);
* **feedback**: the audit entries of kind ``feedback`` (``verdict`` true_alarm | false_alarm | expected,
  ``fingerprint``, ``incident`` = the alert's ``starts_at``); the latest verdict per incident counts, feedback on
  incidents outside the period is not counted. **precision** of a rule = true / (true + false) over its incidents
  with feedback (``None`` without any); ``expected`` (an alert that was right but needed no action: a planned
  promotion) is reported beside it, in neither term;
* **noisiest**: rules and series by alerts, then false alarms (top :data:`TOP`);
* **changes**: audit entries of the kinds in :data:`CHANGE_KINDS` on the team's KPIs made in the period;
* **proposals**: when over budget, :func:`alerting.tuning.proposals` (a backtest attaches figures later).

Examples
--------
>>> from alerting.history import IncidentRecord
>>> inc = [IncidentRecord("f1", "orders", "low", {"team": "sales"}, "warning", 0.0, resolved_at=600.0, acked_at=60.0)]
>>> r = review("sales", 0.0, 86400.0, inc, [], kpis=["orders"])
>>> r.alerts, r.ack.median_s, r.resolve.p90_s, r.rules[0].precision
(1, 60.0, 600.0, None)
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from alerting.history import IncidentRecord, incident_id
from alerting.tuning import Proposal, RuleNoise, proposals
from catalog.teams import Budget

__all__ = [
    "CHANGE_KINDS", "TOP", "VERDICTS", "AttainmentFigure", "BudgetFigure", "Review", "RuleFigures",
    "SeriesFigures", "Spread", "p90", "review", "series_text",
]

WEEK_S = 7 * 86400.0
TOP = 5
VERDICTS = ("true_alarm", "false_alarm", "expected")
CHANGE_KINDS = frozenset({"threshold", "sensitivity"})
_NOT_SERIES = frozenset({"alertname", "kpi", "severity", "team"})


def p90(values: Sequence[float]) -> float | None:
    """The 90th percentile by nearest rank.

    >>> p90([60.0, 120.0, 300.0]), p90(list(range(1, 11))), p90([])
    (300.0, 9, None)
    """
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


@dataclass(frozen=True, slots=True)
class Spread:
    """How long something took over ``count`` incidents (seconds); ``missing`` incidents never got there."""

    count: int
    missing: int
    median_s: float | None
    p90_s: float | None

    @classmethod
    def of(cls, values: Sequence[float], missing: int) -> Spread:
        median = float(statistics.median(values)) if values else None
        return cls(len(values), missing, median, p90(values))


@dataclass(frozen=True, slots=True)
class RuleFigures:
    """One rule of one KPI over the period."""

    kpi: str
    rule: str
    alerts: int
    true_alarms: int = 0
    false_alarms: int = 0
    expected: int = 0
    precision: float | None = None
    ack: Spread | None = None
    resolve: Spread | None = None

    @property
    def with_feedback(self) -> int:
        return self.true_alarms + self.false_alarms + self.expected


@dataclass(frozen=True, slots=True)
class SeriesFigures:
    """One series (``series``: its labels as ``region=east``, or ``total``) of one KPI over the period."""

    kpi: str
    series: str
    alerts: int
    false_alarms: int = 0


@dataclass(frozen=True, slots=True)
class BudgetFigure:
    """The team's budget against the period: ``allowed`` pro rata, ``over`` when ``alerts`` exceed it."""

    budget: str
    allowed: float
    alerts: int
    over: bool

    @property
    def excess(self) -> float:
        return max(0.0, self.alerts - self.allowed)


@dataclass(frozen=True, slots=True)
class AttainmentFigure:
    """A KPI's attainment: ``actual`` of ``target`` per ``per`` (``period``: the target over the whole review
    period; ``ratio`` = actual / target)."""

    kpi: str
    actual: float | None
    target: float
    per: str

    @property
    def ratio(self) -> float | None:
        return None if self.actual is None else self.actual / self.target


@dataclass(frozen=True, slots=True)
class Review:
    """Every figure of a team's review; :meth:`to_dict` is the JSON of ``kpimon review --json``."""

    team: str
    since: float
    until: float
    alerts: int
    per_week: float
    budget: BudgetFigure | None
    ack: Spread
    resolve: Spread
    feedback: Mapping[str, int]
    precision: float | None
    rules: tuple[RuleFigures, ...]
    series: tuple[SeriesFigures, ...]
    changes: tuple[Mapping[str, Any], ...]
    attainment: tuple[AttainmentFigure, ...]
    proposals: tuple[Proposal, ...]
    incidents: tuple[IncidentRecord, ...] = field(repr=False, default=())
    verdicts: Mapping[str, str] = field(repr=False, default_factory=dict)  # incident id -> its latest verdict

    @property
    def noisiest_rules(self) -> tuple[RuleFigures, ...]:
        return self.rules[:TOP]

    @property
    def noisiest_series(self) -> tuple[SeriesFigures, ...]:
        return self.series[:TOP]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (incidents as their records, attainment with its ratio)."""
        out = asdict(self)
        out["rules"] = [{**asdict(r), "with_feedback": r.with_feedback} for r in self.rules]
        out["attainment"] = [{**asdict(a), "ratio": a.ratio} for a in self.attainment]
        out["budget"] = None if self.budget is None else {**asdict(self.budget), "excess": self.budget.excess}
        out["incidents"] = [i.to_dict() for i in self.incidents]
        out["proposals"] = [p.to_dict() for p in self.proposals]
        out["changes"] = [dict(c) for c in self.changes]
        out["verdicts"] = dict(self.verdicts)
        out["noisiest_rules"] = [[r.kpi, r.rule] for r in self.noisiest_rules]
        out["noisiest_series"] = [[s.kpi, s.series] for s in self.noisiest_series]
        return out


def series_text(labels: Mapping[str, str]) -> str:
    """An alert's series as ``region=east,channel=app`` (``total`` for the total series).

    >>> series_text({"alertname": "low", "kpi": "orders", "team": "sales", "region": "east"}), series_text({})
    ('region=east', 'total')
    """
    parts = [f"{k}={v}" for k, v in sorted(labels.items()) if k not in _NOT_SERIES]
    return ",".join(parts) or "total"


def _verdicts(audit: Iterable[Mapping[str, Any]], ids: Collection[str]) -> dict[str, str]:
    """Incident id -> the latest feedback verdict on it (of the incidents in ``ids``)."""
    latest: dict[str, tuple[float, str]] = {}
    for entry in audit:
        if entry.get("kind") != "feedback" or entry.get("verdict") not in VERDICTS:
            continue
        try:
            key = incident_id(str(entry["fingerprint"]), float(entry["incident"]))
            at = float(entry.get("at", 0.0))
        except (KeyError, TypeError, ValueError):
            continue  # a malformed entry says nothing about an incident
        if key in ids and (key not in latest or at >= latest[key][0]):
            latest[key] = (at, str(entry["verdict"]))
    return {k: v for k, (_, v) in latest.items()}


def _spreads(items: Sequence[IncidentRecord]) -> tuple[Spread, Spread]:
    acked = [i.acked_at - i.starts_at for i in items if i.acked_at is not None]
    resolved = [i.resolved_at - i.starts_at for i in items if i.resolved_at is not None]
    return Spread.of(acked, len(items) - len(acked)), Spread.of(resolved, len(items) - len(resolved))


def _precision(true: int, false: int) -> float | None:
    return true / (true + false) if true + false else None


def _rule_figures(items: Sequence[IncidentRecord], verdicts: Mapping[str, str]) -> RuleFigures:
    said = [verdicts[i.id] for i in items if i.id in verdicts]
    true, false, expected = (said.count(v) for v in VERDICTS)
    ack, resolve = _spreads(items)
    return RuleFigures(items[0].kpi, items[0].rule, len(items), true, false, expected, _precision(true, false),
                       ack, resolve)


def _by(items: Iterable[IncidentRecord], key: Any) -> dict[Any, list[IncidentRecord]]:
    out: dict[Any, list[IncidentRecord]] = {}
    for item in items:
        out.setdefault(key(item), []).append(item)
    return out


def _noise_order(alerts: int, false: int, *names: str) -> tuple[Any, ...]:
    return (-alerts, -false, *names)


def _series(items: Sequence[IncidentRecord], verdicts: Mapping[str, str]) -> tuple[SeriesFigures, ...]:
    groups = _by(items, lambda i: (i.kpi, series_text(i.labels if i.series is None else i.series)))
    out = [SeriesFigures(kpi, text, len(g), sum(verdicts.get(i.id) == "false_alarm" for i in g))
           for (kpi, text), g in groups.items()]
    return tuple(sorted(out, key=lambda s: _noise_order(s.alerts, s.false_alarms, s.kpi, s.series)))


def _changes(audit: Iterable[Mapping[str, Any]], kpis: Collection[str], since: float, until: float) -> tuple[Mapping[str, Any], ...]:
    found = [e for e in audit if e.get("kind") in CHANGE_KINDS and e.get("kpi") in kpis
             and isinstance(e.get("at"), int | float) and since <= float(e["at"]) < until]
    return tuple(sorted(found, key=lambda e: float(e["at"])))


def review(
    team: str,
    since: float,
    until: float,
    incidents: Iterable[IncidentRecord],
    audit: Iterable[Mapping[str, Any]],
    *,
    kpis: Collection[str],
    budget: Budget | None = None,
    attainment: Iterable[AttainmentFigure] = (),
    rules: Mapping[tuple[str, str], Mapping[str, Any]] | None = None,
    sensitivity: Mapping[str, str] | None = None,
) -> Review:
    """The review of ``team`` over ``[since, until)``; see the module docstring for every figure.

    ``rules`` (``(kpi, rule)`` -> the effective rule as published, overrides applied) and ``sensitivity`` (KPI ->
    its detector's sensitivity) let proposals name a concrete change."""
    audit = list(audit)
    mine = sorted((i for i in incidents if since <= i.starts_at < until and (i.team == team or (not i.team and i.kpi in kpis))),
                  key=lambda i: (i.starts_at, i.id))
    verdicts = _verdicts(audit, {i.id for i in mine})
    per_rule = [_rule_figures(g, verdicts) for g in _by(mine, lambda i: (i.kpi, i.rule)).values()]
    per_rule.sort(key=lambda r: _noise_order(r.alerts, r.false_alarms, r.kpi, r.rule))
    said = list(verdicts.values())
    counts = {v: said.count(v) for v in VERDICTS}
    period = max(until - since, 1.0)
    budget_fig = None if budget is None else _budget(budget, len(mine), period)
    ack, resolve = _spreads(mine)
    noise = [RuleNoise(r.kpi, r.rule, r.alerts, r.false_alarms, r.true_alarms,
                       tuple(_raised(mine, verdicts, r.kpi, r.rule))) for r in per_rule]
    proposed = (proposals(team, noise, budget_fig.excess, str(budget), period, rules or {}, sensitivity or {})
                if budget_fig is not None and budget_fig.over else [])
    return Review(
        team, since, until, len(mine), len(mine) * WEEK_S / period, budget_fig, ack, resolve, counts,
        _precision(counts["true_alarm"], counts["false_alarm"]), tuple(per_rule), _series(mine, verdicts),
        _changes(audit, kpis, since, until), tuple(sorted(attainment, key=lambda a: a.kpi)), tuple(proposed),
        tuple(mine), verdicts,
    )  # fmt: skip


def _budget(budget: Budget, alerts: int, period_s: float) -> BudgetFigure:
    allowed = budget.allowed(period_s)
    return BudgetFigure(str(budget), allowed, alerts, alerts > allowed)


def _raised(items: Iterable[IncidentRecord], verdicts: Mapping[str, str], kpi: str, rule: str) -> Iterable[tuple[float, str]]:
    """(value raised on, verdict or "") of a rule's incidents with a value: what a threshold proposal is based on."""
    for i in items:
        if i.kpi == kpi and i.rule == rule and i.value is not None:
            yield i.value, verdicts.get(i.id, "")
