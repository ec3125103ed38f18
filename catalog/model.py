"""The KPI catalog's schema: one definition per KPI, shared by every part of kpimon.

Field-level checks live on the models; cross-KPI checks (references, cycles,
matching windows) and the schemas of ``alerts``, ``routes``, ``channels`` and
detector ``params`` (:mod:`catalog.alerts`, :mod:`catalog.channels`,
:mod:`catalog.detectors`) are applied by :mod:`catalog.load`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from catalog.calendar import Calendar, CalendarSpec
from catalog.detectors import Sensitivity
from catalog.durations import Duration, OptionalDuration, parse_duration
from catalog.teams import TeamSpec

__all__ = [
    "Catalog", "Defaults", "DetectorSpec", "DistinctSpec", "KpiSpec", "Measure", "RatioSpec", "SourceSpec",
    "Target", "WindowSpec", "parse_measure",
]

NAME = r"^[a-z][a-z0-9_]{0,62}$"
FILTER_OPS = frozenset({"eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "exists"})
MEASURE_KINDS = frozenset({"count", "sum", "avg", "min", "max", "distinct", "percentile", "last"})
_MEASURE = re.compile(r"^\s*([a-z_][a-z0-9_.]*)\s*(?:\(\s*([A-Za-z_][A-Za-z0-9_.]*)?\s*(?:,\s*([0-9.]+)\s*)?\))?\s*$")
_PCT = re.compile(r"^p(\d{1,2}(?:\.\d+)?)$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _instant(value: Any) -> float:
    """Epoch seconds from an ISO-8601 date or date-time (YAML may have parsed it already), assumed UTC."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"bad timestamp {value!r}: use an ISO-8601 date or date-time, e.g. 2026-01-01") from None
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC).timestamp()
    raise ValueError(f"bad timestamp {value!r}: use an ISO-8601 date or date-time, e.g. 2026-01-01")


@dataclass(frozen=True, slots=True)
class Measure:
    """A parsed measure: ``kind`` over ``field`` (``None`` for count); ``q`` for percentiles (0-100)."""

    kind: str
    field: str | None = None
    q: float | None = None

    def __str__(self) -> str:
        if self.kind == "count":
            return "count"
        if self.kind == "percentile":
            return f"p{self.q:g}({self.field})"
        return f"{self.kind}({self.field})"


def parse_measure(text: str) -> Measure:
    """Parse ``count``, ``sum(f)``, ``avg(f)``, ``min(f)``, ``max(f)``, ``distinct(f)``,
    ``last(f)``, ``p95(f)`` or ``percentile(f, 95)``.

    >>> parse_measure("p95(amount)")
    Measure(kind='percentile', field='amount', q=95.0)
    >>> str(parse_measure("sum(amount)"))
    'sum(amount)'
    """
    match = _MEASURE.match(text)
    if not match:
        raise ValueError(f"cannot parse measure {text!r}; use count, sum(field), avg(field), p95(field) ...")
    kind, field, q = match.group(1), match.group(2), match.group(3)
    pct = _PCT.match(kind)
    if pct:
        if q is not None:
            raise ValueError(f"{text!r}: give the percentile once, as p95(field) or percentile(field, 95)")
        kind, q = "percentile", pct.group(1)
    if kind not in MEASURE_KINDS:
        raise ValueError(f"unknown measure {kind!r}; known: {', '.join(sorted(MEASURE_KINDS))}, pNN")
    if kind == "count":
        if field is not None or q is not None:
            raise ValueError("count takes no field (use a filter to count a subset)")
        return Measure("count")
    if field is None:
        raise ValueError(f"{kind} needs a field, e.g. {kind}(amount)")
    if kind == "percentile":
        if q is None or not 0 < float(q) < 100:
            raise ValueError("percentile needs 0 < q < 100, e.g. p95(latency_ms)")
        return Measure("percentile", field, float(q))
    if q is not None:
        raise ValueError(f"{kind} takes one field")
    return Measure(kind, field)


class WindowSpec(_Strict):
    """Tumbling (``step`` omitted) or hopping window, in event time; ``grace`` is allowed lateness."""

    type: Literal["tumbling", "hopping"] = "tumbling"
    size: Duration = 60.0
    step: OptionalDuration = None
    grace: Duration = 30.0

    @model_validator(mode="after")
    def _check(self) -> WindowSpec:
        if self.size <= 0:
            raise ValueError("size must be > 0")
        if self.type == "hopping":
            if self.step is None or self.step <= 0:
                raise ValueError("a hopping window needs step > 0")
            if self.step >= self.size or (self.size / self.step) % 1:
                raise ValueError("hopping window: size must be a whole multiple (>1) of step")
        elif self.step not in (None, self.size):
            raise ValueError("step is only for hopping windows")
        return self

    @property
    def advance(self) -> float:
        """Distance between window starts."""
        return self.step if self.type == "hopping" and self.step else self.size


class SourceSpec(_Strict):
    """A Kafka topic of business events and how to read their event time.

    ``max_future``: how far ahead of the wall clock an event may be (later ones are dead letters
    ``future_time``); ``since``: the earliest event time accepted (earlier ones are ``bad_time``;
    default: 30 days before the partition's first start). ``max_silence``: how long the source may send
    nothing before kpimon raises one ``source_silent`` alert and holds the alerts of the KPIs it feeds
    (default: learned from the event rate; ``off`` never judges the source).
    """

    topic: str = Field(pattern=r"^[A-Za-z0-9._-]{1,200}$")
    time_field: str = "ts"
    partitions: int = Field(default=4, ge=1, le=1024)
    description: str = ""
    max_future: Duration = 300.0
    since: float | None = None          # epoch seconds
    max_silence: float | None = None    # seconds; None: learned from the rate; 0: off

    @field_validator("max_future")
    @classmethod
    def _future(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("max_future must be > 0, e.g. 5m")
        return value

    @field_validator("max_silence", mode="before")
    @classmethod
    def _silence(cls, value: Any) -> float | None:
        if value is None or value is False or value == "off":
            return None if value is None else 0.0
        seconds = parse_duration(value)
        if seconds <= 0:
            raise ValueError("max_silence must be > 0 (e.g. 10m), or off")
        return seconds

    @field_validator("since", mode="before")
    @classmethod
    def _since(cls, value: Any) -> float | None:
        return None if value is None else _instant(value)


class RatioSpec(_Strict):
    """``numerator / denominator`` of two KPIs over the same window, times ``scale``."""

    numerator: str = Field(pattern=NAME)
    denominator: str = Field(pattern=NAME)
    scale: float = 1.0


class Target(_Strict):
    """A goal for the KPI; attainment = actual over the period / value."""

    value: float = Field(gt=0)
    per: Literal["window", "hour", "day", "week", "month"] = "day"


class DetectorSpec(_Strict):
    """Which online model watches the KPI's series, and how touchy it is (kinds and their ``params``:
    :mod:`catalog.detectors`)."""

    kind: str = "calibrated"  # = detectors.registry.DEFAULT_KIND (a test keeps the two equal)
    sensitivity: Sensitivity = "medium"
    params: dict[str, Any] = Field(default_factory=dict)
    enabled: bool = True


class DistinctSpec(_Strict):
    """``distinct(f)``: values kept exactly per series, window and partition before a HyperLogLog sketch.

    Each exact value costs ~11 bytes of state; the sketch at most 5.5 KB (typically 2-3 KB) for any count."""

    exact_up_to: int = Field(default=1000, ge=0, le=5000)


class KpiSpec(_Strict):
    """One KPI definition."""

    name: str = Field(pattern=NAME)
    title: dict[str, str] = Field(default_factory=dict)
    description: str = ""
    owner: str = ""
    unit: str = ""
    source: str | None = None
    measure: str | None = None
    ratio: RatioSpec | None = None
    filter: dict[str, Any] = Field(default_factory=dict)
    dimensions: list[str] = Field(default_factory=list)
    window: WindowSpec | None = None
    target: Target | None = None
    detector: DetectorSpec = Field(default_factory=DetectorSpec)
    alerts: list[dict[str, Any]] = Field(default_factory=list)
    max_series: int | None = Field(default=None, ge=1)
    distinct: DistinctSpec | None = None

    @field_validator("title", mode="before")
    @classmethod
    def _title(cls, value: Any) -> Any:
        return {"en": value} if isinstance(value, str) else value

    @field_validator("measure")
    @classmethod
    def _measure(cls, value: str | None) -> str | None:
        if value is not None:
            parse_measure(value)
        return value

    @field_validator("dimensions")
    @classmethod
    def _dims(cls, value: list[str]) -> list[str]:
        for dim in value:
            if not re.match(r"^[a-zA-Z_][a-zA-Z0-9_]*$", dim) or dim.startswith("__") or dim in {"kpi", "le", "by"}:
                raise ValueError(f"dimension {dim!r} is not a valid Prometheus label name")
        if len(set(value)) != len(value):
            raise ValueError("dimensions repeat")
        return value

    @field_validator("filter")
    @classmethod
    def _filter(cls, value: dict[str, Any]) -> dict[str, Any]:
        for field, cond in value.items():
            if isinstance(cond, dict):
                unknown = set(cond) - FILTER_OPS
                if unknown:
                    raise ValueError(f"filter on {field!r}: unknown operator(s) {sorted(unknown)}; use {sorted(FILTER_OPS)}")
                for op in ("in", "not_in"):
                    if op in cond and not isinstance(cond[op], list):
                        raise ValueError(f"filter on {field!r}: {op} needs a list")
        return value

    @model_validator(mode="after")
    def _shape(self) -> KpiSpec:
        if self.ratio is not None:
            if self.measure or self.source or self.filter:
                raise ValueError("a ratio KPI has no source, measure or filter of its own")
        elif not (self.measure and self.source):
            raise ValueError("a KPI needs a source and a measure, or a ratio of two KPIs")
        return self

    @property
    def parsed_measure(self) -> Measure | None:
        return parse_measure(self.measure) if self.measure else None

    def title_in(self, language: str) -> str:
        """Title in ``language``, falling back to English, then any, then the name."""
        return self.title.get(language) or self.title.get("en") or next(iter(self.title.values()), self.name)


class Defaults(_Strict):
    window: WindowSpec = Field(default_factory=WindowSpec)
    max_series_per_kpi: int = Field(default=200, ge=1)
    language: str = "en"
    distinct: DistinctSpec = Field(default_factory=DistinctSpec)
    # IANA zone of every time shown in alert messages (e.g. Asia/Shanghai)
    timezone: str = "UTC"

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r}: use an IANA name such as Asia/Shanghai, Europe/Berlin or UTC"
            ) from None
        return value


class GrafanaSettings(_Strict):
    url: str = "http://localhost:3000"
    folder: str = "kpimon"
    uid_prefix: str = Field(default="kpimon", pattern=r"^[A-Za-z0-9_-]{1,20}$")


class Catalog(_Strict):
    """The whole catalog file."""

    version: Literal[1] = 1
    defaults: Defaults = Field(default_factory=Defaults)
    sources: dict[str, SourceSpec] = Field(default_factory=dict)
    kpis: list[KpiSpec] = Field(default_factory=list)
    channels: dict[str, dict[str, Any]] = Field(default_factory=dict)
    routes: list[dict[str, Any]] = Field(default_factory=list)
    grafana: GrafanaSettings = Field(default_factory=GrafanaSettings)
    calendar: CalendarSpec = Field(default_factory=CalendarSpec)
    teams: dict[str, TeamSpec] = Field(default_factory=dict)

    def business_calendar(self) -> Calendar | None:
        """The shared business calendar, or ``None`` when the catalog has no ``calendar:`` (detectors as before)."""
        return None if self.calendar.empty else self.calendar.resolve(self.defaults.timezone)

    def team_kpis(self, team: str) -> list[KpiSpec]:
        """The KPIs ``team`` owns."""
        return [k for k in self.kpis if k.owner == team]

    def team_language(self, team: str) -> str:
        """The language of ``team``'s digest: its own, else the catalog's default."""
        spec = self.teams.get(team)
        own = spec.digest.language if spec is not None and spec.digest is not None else None
        return own or self.defaults.language

    def kpi(self, name: str) -> KpiSpec:
        for spec in self.kpis:
            if spec.name == name:
                return spec
        raise KeyError(f"unknown KPI {name!r}; known: {', '.join(k.name for k in self.kpis)}")

    def window_of(self, spec: KpiSpec) -> WindowSpec:
        """The KPI's window, or the catalog default; a ratio inherits its numerator's."""
        if spec.window is not None:
            return spec.window
        if spec.ratio is not None:
            return self.window_of(self.kpi(spec.ratio.numerator))
        return self.defaults.window

    def max_series(self, spec: KpiSpec) -> int:
        return spec.max_series or self.defaults.max_series_per_kpi

    def exact_up_to(self, spec: KpiSpec) -> int:
        """Values a ``distinct`` KPI counts exactly (per series, window and partition) before it estimates."""
        return (spec.distinct or self.defaults.distinct).exact_up_to
