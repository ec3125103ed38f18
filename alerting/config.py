"""Alerting configuration: the catalog's rules, routes and channels plus KPI metadata, validated together.

The schema of rules, routes and channels is the catalog's (:mod:`catalog.alerts`, :mod:`catalog.channels`; it is
re-exported here for alerting's modules). :func:`build_alerting_config` takes plain mappings (as parsed from YAML)
and returns an immutable :class:`AlertingConfig` or raises :class:`AlertingConfigError` listing *every* problem
with its location, so nothing is ever applied halfway.

Exceptions::

    ValueError
     └── AlertingConfigError      .problems: list[(loc, message)]

Examples
--------
>>> cfg = build_alerting_config(
...     {"orders": [{"type": "threshold", "below": 10, "for": "2m"}]},
...     [{"channels": ["ops"]}],
...     {"ops": {"type": "webhook", "url": "http://localhost:9/hook"}},
...     {"orders": KpiMeta(name="orders")},
... )
>>> cfg.rules["orders"][0].for_
120.0
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from alerting.actions import ActionLinks
from alerting.notifiers.fmt import check_timezone
from catalog.alerts import (
    AbsenceRule,
    AlertRuleSpec,
    AnomalyRule,
    ChangeRule,
    EscalateSpec,
    Loc,
    RouteSpec,
    Severity,
    ThresholdRule,
    parse_routes,
    parse_rules,
    rule_adapter,
)
from catalog.channels import ChannelSpec, parse_channels
from catalog.durations import parse_duration

__all__ = [
    "AbsenceRule",
    "AlertRuleSpec",
    "AlertingConfig",
    "AlertingConfigError",
    "AnomalyRule",
    "ChangeRule",
    "EscalateSpec",
    "KpiMeta",
    "Loc",
    "RouteSpec",
    "Severity",
    "ThresholdRule",
    "TUNABLE",
    "build_alerting_config",
    "parse_duration",
    "rule_adapter",
]

#: Fields that may be changed at run time (``kpimon threshold set``); everything else needs a catalog change.
TUNABLE: dict[str, frozenset[str]] = {
    "threshold": frozenset({"above", "below", "outside", "hysteresis", "for", "keep_firing_for", "enabled"}),
    "change": frozenset({"above_pct", "below_pct", "for", "keep_firing_for", "enabled"}),
    "anomaly": frozenset({"min_score", "for", "keep_firing_for", "enabled"}),
    "absence": frozenset({"for", "missing_after", "enabled"}),
}


class KpiMeta(BaseModel):
    """What alerting needs to know about a KPI. ``dashboard_url`` may use ``{kpi}`` and label names."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str
    title: dict[str, str] = Field(default_factory=dict)
    unit: str = ""
    owner: str = ""
    dashboard_url: str | None = None
    kind: Literal["count", "money", "ratio", "value"] = "value"
    min_value: float | None = None
    max_value: float | None = None

    @field_validator("title", mode="before")
    @classmethod
    def _title(cls, value: Any) -> Any:
        return {"en": value} if isinstance(value, str) else value

    def title_in(self, language: str) -> str:
        """Title in ``language``, falling back to English, then any, then the name."""
        return self.title.get(language) or self.title.get("en") or next(iter(self.title.values()), self.name)


@dataclass(frozen=True, slots=True)
class AlertingConfig:
    """Validated alerting configuration (immutable; overrides produce a new one)."""

    rules: Mapping[str, tuple[AlertRuleSpec, ...]]
    routes: tuple[RouteSpec, ...]
    channels: Mapping[str, ChannelSpec]
    kpis: Mapping[str, KpiMeta] = field(default_factory=dict)
    #: IANA zone every time in a message is shown in (the catalog's ``defaults.timezone``)
    timezone: str = "UTC"
    #: signs ack / silence / feedback links; ``None``: messages carry no such links
    actions: ActionLinks | None = None

    def rule(self, kpi: str, name: str) -> AlertRuleSpec | None:
        """The rule ``name`` of ``kpi`` or ``None``."""
        return next((r for r in self.rules.get(kpi, ()) if r.name == name), None)


class AlertingConfigError(ValueError):
    """Invalid alerting configuration; ``problems`` lists ``(loc, message)`` pairs, loc like
    ``("kpis", "paid_orders", "alerts", 0, "below")``."""

    def __init__(self, problems: Sequence[tuple[Loc, str]]) -> None:
        self.problems = list(problems)
        lines = [f"{'.'.join(str(p) for p in loc)}: {msg}" for loc, msg in self.problems]
        super().__init__(f"{len(lines)} alerting config problem(s):\n  " + "\n  ".join(lines))


def build_alerting_config(
    kpi_rules: Mapping[str, Sequence[Mapping[str, Any]]],
    routes: Sequence[Mapping[str, Any]],
    channels: Mapping[str, Mapping[str, Any]],
    kpis: Mapping[str, KpiMeta],
    *,
    kpi_locs: Mapping[str, Loc] | None = None,
    timezone: str = "UTC",
    actions: ActionLinks | None = None,
) -> AlertingConfig:
    """Validate everything at once; raise :class:`AlertingConfigError` with every problem, or return the config.

    Problem locations start with ``("kpis", <kpi name>)``; pass ``kpi_locs`` (name -> path of that KPI in the
    catalog, e.g. ``{"paid_orders": ("kpis", 3)}`` when ``kpis:`` is a list) to get catalog paths instead.
    """
    built_channels, problems = parse_channels(channels)
    rules: dict[str, tuple[AlertRuleSpec, ...]] = {}
    for kpi, items in kpi_rules.items():
        where = (kpi_locs or {}).get(kpi, ("kpis", kpi))
        if kpi not in kpis:
            problems.append((where, "alerts for a KPI that is not in the catalog"))
        rules[kpi], found = parse_rules(items, (*where, "alerts"))
        problems += found
    built_routes, found = parse_routes(routes, channels)
    problems += found
    try:
        check_timezone(timezone)
    except ValueError as exc:
        problems.append((("defaults", "timezone"), str(exc)))
    if problems:
        raise AlertingConfigError(problems)
    return AlertingConfig(
        rules=rules, routes=built_routes, channels=built_channels, kpis=dict(kpis), timezone=timezone, actions=actions
    )
