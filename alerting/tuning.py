"""Tuning proposals for a team over its alert budget: which rule to make less touchy, and by how much. Pure.

:func:`proposals` walks the team's rules from the noisiest (most false alarms, then most alerts) and proposes a
change for each until the rules it changed account for the alerts over budget. The change depends on the rule:

=========  ===========================================================================================
anomaly    the KPI's detector sensitivity one step lower (high → medium → low: a catalog change); at low
           already, ``min_score`` 0.05 higher (a run-time override)
threshold  the limit moved to the value of the most extreme false alarm (``below`` 80 → 62 when false alarms
           were raised at 62 and 70: neither would fire again, a true alarm at 40 still would); without false
           alarm feedback, to the median of the values the rule fired on (about half as many alerts)
change     ``above_pct`` / ``below_pct`` × 1.5
absence    ``for`` doubled (at least 5 minutes)
=========  ===========================================================================================

A :class:`Proposal` is ``{team, kpi, rule, change, reason}`` plus ``basis`` (the figures the reason says, so a
message can say it in another language) and ``backtest``: empty here. ``kpimon backtest`` replays history under
the proposed change and attaches what it found with :func:`with_backtest`; nothing here applies a change.

Examples
--------
>>> noise = [RuleNoise("orders", "low", 6, 2, 1, ((62.0, "false_alarm"), (70.0, "false_alarm"), (40.0, "true_alarm")))]
>>> [p] = proposals("sales", noise, 3.0, "3/week", 7 * 86400.0, {("orders", "low"): {"type": "threshold", "below": 80}}, {})
>>> p.change, p.basis["kept"]
({'below': 62.0}, 1)
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from catalog.detectors import SENSITIVITIES

__all__ = ["Proposal", "RuleNoise", "proposals", "with_backtest"]


@dataclass(frozen=True, slots=True)
class RuleNoise:
    """What a proposal needs to know about one rule's period: alerts, feedback, and the values it fired on
    (``raised``: (value, verdict or ""))."""

    kpi: str
    rule: str
    alerts: int
    false_alarms: int
    true_alarms: int
    raised: tuple[tuple[float, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Proposal:
    """A proposed change of one rule. ``change``: field -> new value (``sensitivity`` is the KPI's detector
    setting in the catalog; every other field a threshold override, ``kpimon threshold set``)."""

    team: str
    kpi: str
    rule: str
    change: Mapping[str, Any]
    reason: str
    basis: Mapping[str, Any] = field(default_factory=dict)
    backtest: Mapping[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict."""
        return {"team": self.team, "kpi": self.kpi, "rule": self.rule, "change": dict(self.change),
                "reason": self.reason, "basis": dict(self.basis),
                "backtest": None if self.backtest is None else dict(self.backtest)}


def with_backtest(proposal: Proposal, figures: Mapping[str, Any]) -> Proposal:
    """``proposal`` with a backtest's figures attached (the seam for ``kpimon backtest``)."""
    return replace(proposal, backtest=dict(figures))


def _num(value: float) -> float:
    return float(f"{value:.6g}")


def _sensitivity(current: str, spec: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    if current in SENSITIVITIES and SENSITIVITIES.index(current) > 0:
        lower = SENSITIVITIES[SENSITIVITIES.index(current) - 1]
        return {"sensitivity": lower}, {"kind": "sensitivity", "field": "sensitivity", "old": current, "new": lower}
    old = spec.get("min_score")
    new = _num(min(0.99, (float(old) if old is not None else 0.9) + 0.05))
    return {"min_score": new}, {"kind": "step", "field": "min_score", "old": old, "new": new}


def _fires(name: str, limit: float, value: float) -> bool:
    return value < limit if name == "below" else value > limit


def _limit(name: str, old: float, noise: RuleNoise) -> tuple[float, dict[str, Any]] | None:
    """The new ``below``/``above`` limit (see the module docstring) and what it is based on."""
    on_side = [(v, verdict) for v, verdict in noise.raised if _fires(name, old, v)]
    false = [v for v, verdict in on_side if verdict == "false_alarm"]
    if false:
        new, kind = (min(false) if name == "below" else max(false)), "false_alarms"
    elif on_side:
        new, kind = statistics.median_low(v for v, _ in on_side), "median"
    else:
        return None
    kept = sum(1 for v, verdict in on_side if verdict == "true_alarm" and _fires(name, new, v))
    return new, {"kind": kind, "field": name, "old": old, "new": new, "false": len(false), "kept": kept}


def _threshold(spec: Mapping[str, Any], noise: RuleNoise) -> tuple[dict[str, Any], dict[str, Any]] | None:
    outside = spec.get("outside")
    limits = {"below": outside[0], "above": outside[1]} if outside else {
        k: spec[k] for k in ("below", "above") if spec.get(k) is not None}
    found = {name: got for name, old in limits.items() if (got := _limit(name, float(old), noise)) is not None}
    if not found:
        return None
    name = max(found, key=lambda n: sum(1 for v, _ in noise.raised if _fires(n, float(limits[n]), v)))
    new, basis = found[name]
    if outside:
        pair = [new, outside[1]] if name == "below" else [outside[0], new]
        return {"outside": pair}, {**basis, "field": "outside"}
    return {name: new}, basis


def _change_for(spec: Mapping[str, Any], noise: RuleNoise, sensitivity: str | None) -> tuple[dict[str, Any], dict[str, Any]] | None:
    kind = spec.get("type")
    if kind == "anomaly":
        return _sensitivity(sensitivity or "", spec)
    if kind == "threshold":
        return _threshold(spec, noise)
    if kind == "change":
        fields = {k: _num(float(spec[k]) * 1.5) for k in ("above_pct", "below_pct") if spec.get(k) is not None}
        first = next(iter(fields), None)
        return (fields, {"kind": "step", "field": first, "old": spec.get(first), "new": fields.get(first)}) if first else None
    if kind == "absence":
        new = max(2 * float(spec.get("for") or 0.0), 300.0)
        return {"for": new}, {"kind": "step", "field": "for", "old": spec.get("for"), "new": new}
    return None


def _reason(noise: RuleNoise, basis: Mapping[str, Any], budget: str, excess: float, days: float) -> str:
    head = (f"{noise.alerts} alerts in {days:g} days; the team is {excess:g} over its budget of {budget}; "
            f"{noise.false_alarms} marked false alarm: ")
    kind, what = basis["kind"], f"{basis['field']} {basis['old']} -> {basis['new']}"
    if kind == "false_alarms":
        return head + (f"{what}, the most extreme value a false alarm was raised on ({basis['kept']} true alarm(s) "
                       "would still fire)")
    if kind == "median":
        return head + f"{what}, the median of the values it fired on (no false alarm feedback)"
    if kind == "sensitivity":
        return head + f"detector {what} (a catalog change)"
    return head + f"{what} (one step less sensitive)"


def proposals(
    team: str,
    noise: Iterable[RuleNoise],
    excess: float,
    budget: str,
    period_s: float,
    rules: Mapping[tuple[str, str], Mapping[str, Any]],
    sensitivity: Mapping[str, str],
) -> list[Proposal]:
    """Proposals for the noisiest rules until they account for ``excess`` alerts (see the module docstring);
    a rule not in ``rules`` (removed since) or without a possible change is passed over."""
    ranked: Sequence[RuleNoise] = sorted(noise, key=lambda n: (-n.false_alarms, -n.alerts, n.kpi, n.rule))
    out: list[Proposal] = []
    covered = 0
    for item in ranked:
        if covered >= excess or excess <= 0:
            break
        spec = rules.get((item.kpi, item.rule))
        made = _change_for(spec, item, sensitivity.get(item.kpi)) if spec is not None else None
        if made is None:
            continue
        change, basis = made
        basis = {**basis, "alerts": item.alerts, "false_alarms": item.false_alarms, "budget": budget, "excess": excess}
        out.append(Proposal(team, item.kpi, item.rule, change, _reason(item, basis, budget, excess, period_s / 86400), basis))
        covered += item.alerts
    return out
