"""The alert-rule and route schema: what ``kpis[].alerts`` and ``routes`` may say (one schema, read by alerting,
which fires the rules, and by grafana, which draws and exports the static ones).

Catalog shape (durations: ``30s``, ``5m``, ``1h``, ``1d`` or seconds)::

    kpis:
      - name: paid_orders
        owner: shop                      # -> label team=shop
        alerts:
          - {name: low, type: threshold, below: 100, for: 5m, keep_firing_for: 2m, hysteresis: 5,
             severity: critical}
          - {name: drop, type: change, compare_to: same_window_last_week, below_pct: 30}
          - {name: odd, type: anomaly, fire_on: [anomaly, drift], min_score: 0.8, resolve_after: 3}
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

:func:`parse_rules` and :func:`parse_routes` validate lists of plain mappings (as YAML gives them) and return
every problem as ``(loc, message)`` instead of stopping at the first; the catalog loader and
``alerting.config.build_alerting_config`` both use them, so a rule means the same everywhere.

Examples
--------
>>> rules, problems = parse_rules([{"type": "threshold", "below": 10, "for": "2m"}], ("kpis", 0, "alerts"))
>>> rules[0].name, rules[0].for_, problems
('threshold', 120.0, [])
>>> _, problems = parse_rules([{"type": "threshold"}], ("kpis", 0, "alerts"))
>>> problems[0][0]
('kpis', 0, 'alerts', 0)
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from catalog.durations import Duration, OptionalDuration

__all__ = [
    "AbsenceRule",
    "AlertRuleSpec",
    "AnomalyRule",
    "ChangeRule",
    "DetectorSignal",
    "EscalateSpec",
    "Loc",
    "RouteSpec",
    "Severity",
    "ThresholdRule",
    "parse_routes",
    "parse_rules",
    "pydantic_problems",
    "rule_adapter",
    "fill_summary",
]

Severity = Literal["info", "warning", "critical"]
#: What a detector reports that an anomaly rule can fire on.
DetectorSignal = Literal["anomaly", "drift"]
Loc = tuple[str | int, ...]
NAME = r"^[a-z][a-z0-9_]{0,62}$"
LABEL = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


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

    @property
    def upper_limit(self) -> float | None:
        """The value above which the rule fires, if any."""
        return self.outside[1] if self.outside else self.above

    @property
    def lower_limit(self) -> float | None:
        """The value below which the rule fires, if any."""
        return self.outside[0] if self.outside else self.below


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
    """Fires on the detector's verdicts; ``min_score`` raises the bar (the alert-level sensitivity).

    Once firing, the alert follows the value, not the verdicts (see :mod:`alerting.incidents`): it resolves
    after ``resolve_after`` windows in a row back inside the normal band it left (or at a new level the
    detector accepted as drift), never because the detector holds back further alarms.
    """

    type: Literal["anomaly"] = "anomaly"
    # not `on`: YAML 1.1 reads an `on` key as the boolean true
    fire_on: list[DetectorSignal] = Field(default_factory=lambda: list[DetectorSignal](["anomaly"]), min_length=1)
    min_score: float | None = Field(default=None, ge=0)
    resolve_after: int = Field(default=3, ge=1, le=10_000)


class AbsenceRule(_RuleBase):
    """Fires when windows hold no data; ``zero_is_absent`` treats a 0 value (e.g. a count) as no data too.

    ``missing_after`` also covers a series that stops producing windows at all: once no sample has been
    observed for that long, every tick evaluates the rule as "no data" (off by default: the stream engine closes
    empty windows on time, and a too-short value would race its grace period).
    """

    type: Literal["absence"] = "absence"
    zero_is_absent: bool = False
    missing_after: OptionalDuration = None


AlertRuleSpec = Annotated[ThresholdRule | ChangeRule | AnomalyRule | AbsenceRule, Field(discriminator="type")]
rule_adapter: TypeAdapter[AlertRuleSpec] = TypeAdapter(AlertRuleSpec)


class EscalateSpec(_Model):
    """Page ``channels`` when an alert of ``severities`` stays unacknowledged for ``after``."""

    after: Duration
    channels: list[str] = Field(min_length=1)
    severities: list[Severity] = Field(default_factory=lambda: list[Severity](["critical"]), min_length=1)


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


def pydantic_problems(prefix: Loc, exc: ValidationError, tag: str | None = None) -> list[tuple[Loc, str]]:
    """``exc``'s errors as ``(prefix + loc, message)``; ``tag`` is a discriminator value to drop from locs."""
    out: list[tuple[Loc, str]] = []
    for err in exc.errors(include_input=False):
        loc = tuple(err["loc"])
        if tag is not None and loc[:1] == (tag,):
            loc = loc[1:]  # the discriminator value pydantic puts first says nothing to the user
        out.append((prefix + loc, err["msg"]))
    return out


def parse_rules(items: Sequence[Any], at: Loc) -> tuple[tuple[AlertRuleSpec, ...], list[tuple[Loc, str]]]:
    """One KPI's ``alerts`` items (at ``at``, e.g. ``("kpis", 3, "alerts")``): the valid rules, each named (the
    default name is the type, so ``kpimon threshold set orders threshold`` works), and every problem."""
    problems: list[tuple[Loc, str]] = []
    specs: list[AlertRuleSpec] = []
    for i, item in enumerate(items):
        tag = item.get("type") if isinstance(item, Mapping) else None
        try:
            spec = rule_adapter.validate_python(item)
        except ValidationError as exc:
            problems.extend(pydantic_problems((*at, i), exc, tag if isinstance(tag, str) else None))
            continue
        if not spec.name:
            spec = spec.model_copy(update={"name": spec.type})
        if any(s.name == spec.name for s in specs):
            problems.append(((*at, i, "name"), f"duplicate rule name {spec.name!r}; give each rule a `name`"))
        specs.append(spec)
    return tuple(specs), problems


def parse_routes(items: Sequence[Any], channels: Collection[str]) -> tuple[tuple[RouteSpec, ...], list[tuple[Loc, str]]]:
    """The catalog's ``routes``: the valid ones and every problem, including channels not in ``channels``."""
    problems: list[tuple[Loc, str]] = []
    out: list[RouteSpec] = []
    for i, item in enumerate(items):
        try:
            route = RouteSpec.model_validate(item)
        except ValidationError as exc:
            problems.extend(pydantic_problems(("routes", i), exc))
            continue
        refs: list[tuple[Loc, str]] = [(("routes", i, "channels", j), name) for j, name in enumerate(route.channels)]
        refs += [(("routes", i, "escalate", "channels", j), name)
                 for j, name in enumerate(route.escalate.channels if route.escalate else [])]
        problems += [(loc, f"unknown channel {name!r}; known: {sorted(channels)}")
                     for loc, name in refs if name not in channels]
        out.append(route)
    return tuple(out), problems


class _Fields(dict[str, str]):
    # A typo in a catalog summary template must not break alerting, nor leave a literal "{region}" in a
    # message: a field the series lacks (the total series has no region) reads as ``missing``.
    def __init__(self, missing: str, **fields: str) -> None:
        super().__init__(**fields)
        self.missing = missing

    def __missing__(self, key: str) -> str:
        return self.missing


def fill_summary(template: str, fields: Mapping[str, str], missing: str = "total") -> str:
    """``template`` (a rule's ``summary``) with ``{name}`` fields filled from ``fields``; unknown ones read as
    ``missing``. The one reading of a summary template: kpimon's messages and the generated Prometheus rules.

    >>> fill_summary("paid orders {value} in {region}", {"value": "0"})
    'paid orders 0 in total'
    >>> fill_summary("bad {brace", {})
    'bad {brace'
    """
    try:
        return template.format_map(_Fields(missing, **fields))
    except (ValueError, IndexError, AttributeError, KeyError):
        return template  # a malformed template is shown as written rather than dropped
