"""Alerting configuration: rule specs, routes, KPI metadata, and the one function that validates them together.

The catalog loader hands this module plain mappings (already parsed from YAML); :func:`build_alerting_config`
returns an immutable :class:`AlertingConfig` or raises :class:`AlertingConfigError` listing *every* problem
with its location, so nothing is ever applied halfway.

Catalog shape (durations: ``30s``, ``5m``, ``1h``, ``1d`` or seconds)::

    kpis:
      - name: paid_orders
        owner: shop                      # -> label team=shop
        alerts:
          - {name: low, type: threshold, below: 100, for: 5m, keep_firing_for: 2m, hysteresis: 5,
             severity: critical}
          - {name: drop, type: change, compare_to: same_window_last_week, below_pct: 30}
          - {name: odd, type: anomaly, fire_on: [anomaly, drift], min_score: 0.8}
          - {name: silent, type: absence, for: 10m, zero_is_absent: true, missing_after: 15m}
    routes:                              # first match wins unless `continue: true`
      - match: {team: shop, severity: critical}
        match_re: {kpi: "paid_.*"}
        channels: [shop_dingtalk]
        group_by: [kpi]
        group_wait: 30s
        group_interval: 5m
        repeat_interval: 4h
        escalate: {after: 15m, channels: [oncall_email]}

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

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)  # noqa: E501

from alerting.actions import ActionLinks
from alerting.durations import parse_duration
from alerting.notifiers.config import ChannelSpec
from alerting.notifiers.fmt import check_timezone

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

Severity = Literal["info", "warning", "critical"]
Verdict = Literal["anomaly", "drift"]
Loc = tuple[str | int, ...]
NAME = r"^[a-z][a-z0-9_]{0,62}$"
LABEL = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

Duration = Annotated[float, Field(ge=0)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class _RuleBase(_Model):
    """Fields every rule has. ``for`` is the pending time; ``keep_firing_for`` keeps a firing alert up that long
    after its condition clears (so a flapping KPI does not page twice)."""

    name: str = Field(default="", pattern=r"^$|" + NAME)
    severity: Severity = "warning"
    for_: Duration = Field(default=0.0, alias="for")
    keep_firing_for: Duration = 0.0
    labels: dict[str, str] = Field(default_factory=dict)
    # A template (``{value}``, ``{kpi}``, label names); one string (English) or one per language.
    summary: str | dict[str, str] | None = None
    enabled: bool = True

    @field_validator("for_", "keep_firing_for", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> float:
        return parse_duration(value)

    def summary_in(self, language: str) -> str | None:
        """The summary template written in ``language`` (a plain string counts as English), else ``None``."""
        if isinstance(self.summary, str):
            return self.summary if language == "en" else None
        return (self.summary or {}).get(language)

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: dict[str, str]) -> dict[str, str]:
        bad = [k for k in value if not LABEL.match(k) or k.startswith("__")]
        if bad:
            raise ValueError(f"bad label name(s) {bad}: use letters, digits and _, not starting with __")
        return value


class ThresholdRule(_RuleBase):
    """Static limits. ``hysteresis`` is an absolute margin the value must clear before a firing alert resolves."""

    type: Literal["threshold"] = "threshold"
    above: float | None = None
    below: float | None = None
    outside: tuple[float, float] | None = None
    hysteresis: float = Field(default=0.0, ge=0)

    @model_validator(mode="after")
    def _limits(self) -> ThresholdRule:
        if self.outside is not None:
            if self.above is not None or self.below is not None:
                raise ValueError("use either `outside: [lo, hi]` or `above`/`below`, not both")
            if self.outside[0] >= self.outside[1]:
                raise ValueError(f"outside: lower bound {self.outside[0]} must be < upper {self.outside[1]}")
        elif self.above is None and self.below is None:
            raise ValueError("a threshold rule needs `above`, `below` or `outside: [lo, hi]`")
        if self.above is not None and self.below is not None and self.below >= self.above:
            raise ValueError("below >= above would fire on every value; did you mean `outside: [lo, hi]`?")
        return self


class ChangeRule(_RuleBase):
    """Percent change against the previous window or the same window one week earlier."""

    type: Literal["change"] = "change"
    compare_to: Literal["previous", "same_window_last_week"] = "previous"
    above_pct: float | None = Field(default=None, gt=0)
    below_pct: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _limits(self) -> ChangeRule:
        if self.above_pct is None and self.below_pct is None:
            raise ValueError("a change rule needs `above_pct` (rise) and/or `below_pct` (drop), in percent")
        return self


class AnomalyRule(_RuleBase):
    """Fires on the detector's verdicts; ``min_score`` raises the bar (the alert-level sensitivity)."""

    type: Literal["anomaly"] = "anomaly"
    # not `on`: YAML 1.1 reads an `on` key as the boolean true
    fire_on: list[Verdict] = Field(default_factory=lambda: list[Verdict](["anomaly"]), min_length=1)
    min_score: float | None = Field(default=None, ge=0)


class AbsenceRule(_RuleBase):
    """Fires when windows hold no data; ``zero_is_absent`` treats a 0 value (e.g. a count) as no data too.

    ``missing_after`` also covers a series that stops producing windows at all: once no sample has been
    observed for that long, every tick evaluates the rule as "no data" (off by default: the stream engine closes
    empty windows on time, and a too-short value would race its grace period).
    """

    type: Literal["absence"] = "absence"
    zero_is_absent: bool = False
    missing_after: Duration | None = None

    @field_validator("missing_after", mode="before")
    @classmethod
    def _missing(cls, value: Any) -> float | None:
        return None if value is None else parse_duration(value)


AlertRuleSpec = Annotated[ThresholdRule | ChangeRule | AnomalyRule | AbsenceRule, Field(discriminator="type")]
rule_adapter: TypeAdapter[AlertRuleSpec] = TypeAdapter(AlertRuleSpec)
_channel_adapter: TypeAdapter[ChannelSpec] = TypeAdapter(ChannelSpec)

#: Fields that may be changed at run time (``kpimon threshold set``); everything else needs a catalog change.
TUNABLE: dict[str, frozenset[str]] = {
    "threshold": frozenset({"above", "below", "outside", "hysteresis", "for", "keep_firing_for", "enabled"}),
    "change": frozenset({"above_pct", "below_pct", "for", "keep_firing_for", "enabled"}),
    "anomaly": frozenset({"min_score", "for", "keep_firing_for", "enabled"}),
    "absence": frozenset({"for", "missing_after", "enabled"}),
}


class EscalateSpec(_Model):
    """Page ``channels`` when an alert of ``severities`` stays unacknowledged for ``after``."""

    after: Duration
    channels: list[str] = Field(min_length=1)
    severities: list[Severity] = Field(default_factory=lambda: list[Severity](["critical"]), min_length=1)

    @field_validator("after", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> float:
        return parse_duration(value)


class RouteSpec(_Model):
    """Where alerts go. ``match`` is exact label equality, ``match_re`` full-match regexes; routes are tried in
    order and the first match wins unless it sets ``continue: true``."""

    name: str = ""
    match: dict[str, str] = Field(default_factory=dict)
    match_re: dict[str, str] = Field(default_factory=dict)
    channels: list[str] = Field(min_length=1)
    group_by: list[str] = Field(default_factory=lambda: ["kpi"])
    group_wait: Duration = 30.0
    group_interval: Duration = 300.0
    repeat_interval: Duration = 4 * 3600.0
    escalate: EscalateSpec | None = None
    language: Literal["en", "zh"] = "en"
    external_url: str | None = None
    send_resolved: bool = True
    continue_: bool = Field(default=False, alias="continue")

    @field_validator("group_wait", "group_interval", "repeat_interval", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> float:
        return parse_duration(value)

    @field_validator("match_re")
    @classmethod
    def _regexes(cls, value: dict[str, str]) -> dict[str, str]:
        for key, pattern in value.items():
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"match_re[{key!r}]: bad regex {pattern!r}: {exc}") from None
        return value

    @model_validator(mode="after")
    def _intervals(self) -> RouteSpec:
        if self.group_interval <= 0 or self.repeat_interval <= 0:
            raise ValueError("group_interval and repeat_interval must be > 0")
        return self

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether an alert with ``labels`` belongs to this route."""
        if any(labels.get(k) != v for k, v in self.match.items()):
            return False
        return all(re.fullmatch(p, labels.get(k, "")) for k, p in self.match_re.items())


class KpiMeta(_Model):
    """What alerting needs to know about a KPI. ``dashboard_url`` may use ``{kpi}`` and label names (``None``:
    no board link). ``kind`` picks how values are written (``count`` integers, ``money`` with the currency of
    ``unit``, ``ratio`` a percentage, ``value`` 3 significant digits); ``min_value``/``max_value`` are the
    possible range an expected band is clipped to (a count is never below 0)."""

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
    #: signs ack / silence / false-alarm links; ``None``: messages carry no such links
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


def _pydantic_problems(prefix: Loc, exc: ValidationError, tag: str | None = None) -> list[tuple[Loc, str]]:
    out: list[tuple[Loc, str]] = []
    for err in exc.errors(include_input=False):
        loc = tuple(err["loc"])
        if tag is not None and loc[:1] == (tag,):
            loc = loc[1:]  # the discriminator value pydantic puts first says nothing to the user
        out.append((prefix + loc, err["msg"]))
    return out


def _build_rules(
    kpi_rules: Mapping[str, Sequence[Mapping[str, Any]]],
    kpis: Mapping[str, KpiMeta],
    problems: list[tuple[Loc, str]],
    kpi_locs: Mapping[str, Loc],
) -> dict[str, tuple[AlertRuleSpec, ...]]:
    rules: dict[str, tuple[AlertRuleSpec, ...]] = {}
    for kpi, items in kpi_rules.items():
        where = kpi_locs.get(kpi, ("kpis", kpi))
        base: Loc = (*where, "alerts")
        if kpi not in kpis:
            problems.append((where, "alerts for a KPI that is not in the catalog"))
        specs: list[AlertRuleSpec] = []
        for i, item in enumerate(items):
            tag = item.get("type") if isinstance(item, Mapping) else None
            try:
                spec = rule_adapter.validate_python(item)
            except ValidationError as exc:
                problems.extend(_pydantic_problems(base + (i,), exc, tag if isinstance(tag, str) else None))
                continue
            if not spec.name:  # default name = type, so `kpimon threshold set orders threshold` works
                spec = spec.model_copy(update={"name": spec.type})
            if any(s.name == spec.name for s in specs):
                problems.append(
                    (base + (i, "name"), f"duplicate rule name {spec.name!r}; give each rule a `name`")
                )
            specs.append(spec)
        rules[kpi] = tuple(specs)
    return rules


def _build_routes(
    routes: Sequence[Mapping[str, Any]], channels: Mapping[str, Any], problems: list[tuple[Loc, str]]
) -> tuple[RouteSpec, ...]:
    out: list[RouteSpec] = []
    for i, item in enumerate(routes):
        try:
            route = RouteSpec.model_validate(item)
        except ValidationError as exc:
            problems.extend(_pydantic_problems(("routes", i), exc))
            continue
        for j, name in enumerate(route.channels):
            if name not in channels:
                problems.append(
                    (("routes", i, "channels", j), f"unknown channel {name!r}; known: {sorted(channels)}")
                )
        for j, name in enumerate(route.escalate.channels if route.escalate else []):
            if name not in channels:
                problems.append(
                    (
                        ("routes", i, "escalate", "channels", j),
                        f"unknown channel {name!r}; known: {sorted(channels)}",
                    )
                )
        out.append(route)
    return tuple(out)


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
    problems: list[tuple[Loc, str]] = []
    built_channels: dict[str, ChannelSpec] = {}
    for name, raw in channels.items():
        try:
            built_channels[name] = _channel_adapter.validate_python(raw)
        except ValidationError as exc:
            tag = raw.get("type") if isinstance(raw, Mapping) else None
            problems.extend(
                _pydantic_problems(("channels", name), exc, tag if isinstance(tag, str) else None)
            )
    rules = _build_rules(kpi_rules, kpis, problems, kpi_locs or {})
    built_routes = _build_routes(routes, channels, problems)
    try:
        check_timezone(timezone)
    except ValueError as exc:
        problems.append((("defaults", "timezone"), str(exc)))
    if problems:
        raise AlertingConfigError(problems)
    return AlertingConfig(
        rules=rules, routes=built_routes, channels=built_channels, kpis=dict(kpis), timezone=timezone, actions=actions
    )
