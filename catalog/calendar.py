"""The business calendar: public holidays, adjusted working days and promotion days, as plain data.

The catalog's ``calendar:`` section (:class:`CalendarSpec`) is resolved into one shared, immutable
:class:`Calendar` that the layers above ask what kind of day an instant falls on (in the calendar's time zone).
It is never copied into a series' detector state.

The built-in list ``cn`` is China's public holidays and adjusted working days (调休, weekend days that are worked)
as published by the General Office of the State Council (国务院办公厅):

- 2025: 国务院办公厅关于2025年部分节假日安排的通知 (国办发明电〔2024〕12号, 2024-11-12);
- 2026: 国务院办公厅关于2026年部分节假日安排的通知 (2025-11-04).

2027 is **not** included: its notice could not be verified, and an invented list would be worse than none. For a
year the built-in list does not cover, :meth:`Calendar.covers` is false and only the catalog's own dates apply.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["BUILTIN", "Calendar", "CalendarSpec", "DayKind", "DateRange", "Promotion"]

DayKind = Literal["workday", "weekend", "holiday"]


def _span(first: str, last: str) -> list[date]:
    start, end = date.fromisoformat(first), date.fromisoformat(last)
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def _days(*spans: tuple[str, str]) -> frozenset[date]:
    return frozenset(d for first, last in spans for d in _span(first, last))


# year -> (days off, adjusted working days), transcribed from the State Council notices named above.
_CN: dict[int, tuple[frozenset[date], frozenset[date]]] = {
    2025: (
        _days(("2025-01-01", "2025-01-01"),     # 元旦
              ("2025-01-28", "2025-02-04"),     # 春节
              ("2025-04-04", "2025-04-06"),     # 清明节
              ("2025-05-01", "2025-05-05"),     # 劳动节
              ("2025-05-31", "2025-06-02"),     # 端午节
              ("2025-10-01", "2025-10-08")),    # 国庆节、中秋节
        frozenset(date.fromisoformat(d) for d in
                  ("2025-01-26", "2025-02-08", "2025-04-27", "2025-09-28", "2025-10-11")),
    ),
    2026: (
        _days(("2026-01-01", "2026-01-03"),     # 元旦
              ("2026-02-15", "2026-02-23"),     # 春节
              ("2026-04-04", "2026-04-06"),     # 清明节
              ("2026-05-01", "2026-05-05"),     # 劳动节
              ("2026-06-19", "2026-06-21"),     # 端午节
              ("2026-09-25", "2026-09-27"),     # 中秋节
              ("2026-10-01", "2026-10-07")),    # 国庆节
        frozenset(date.fromisoformat(d) for d in
                  ("2026-01-04", "2026-02-14", "2026-02-28", "2026-05-09", "2026-09-20", "2026-10-10")),
    ),
}

#: built-in holiday lists: name -> year -> (days off, adjusted working days)
BUILTIN: dict[str, dict[int, tuple[frozenset[date], frozenset[date]]]] = {"cn": _CN}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _as_date(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.date()
    return value


class DateRange(_Strict):
    """One day (``2026-12-24``) or ``{from: …, to: …}`` (both included), with an optional name."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    start: date = Field(alias="from")
    end: date | None = Field(default=None, alias="to")
    name: str = ""

    @model_validator(mode="before")
    @classmethod
    def _one_day(cls, value: Any) -> Any:
        if isinstance(value, (date, str)):
            return {"from": _as_date(value)}
        if isinstance(value, dict):
            return {k: _as_date(v) if k in ("from", "to") else v for k, v in value.items()}
        return value

    @field_validator("name", mode="before")
    @classmethod
    def _name(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) else value  # `name: 618` is a number in YAML

    @model_validator(mode="after")
    def _order(self) -> DateRange:
        if self.end is not None and self.end < self.start:
            raise ValueError(f"'to' ({self.end}) is before 'from' ({self.start})")
        if self.end is not None and (self.end - self.start).days > 366:
            raise ValueError("a date range spans at most a year")
        return self

    def days(self) -> list[date]:
        last = self.end or self.start
        return [self.start + timedelta(days=i) for i in range((last - self.start).days + 1)]


class Promotion(DateRange):
    """A named promotion (``618``, ``double_11``) over one day or a date range; it needs a name.

    ``lift``: how far above a normal day the KPIs may go on it (the expected band's top is raised to ``lift``
    times the expected value; default 3)."""

    lift: float = Field(default=3.0, gt=1.0, le=100.0)

    @model_validator(mode="after")
    def _named(self) -> Promotion:
        if not self.name:
            raise ValueError("a promotion needs a name, e.g. {name: double_11, from: 2026-11-11}")
        return self


class CalendarSpec(_Strict):
    """The catalog's ``calendar:``: a built-in holiday list, own holidays and working days, promotions.

    ``timezone``: the zone days are counted in (default: the catalog's ``defaults.timezone``).
    """

    builtin: Literal["cn", "none"] = "none"
    holidays: list[DateRange] = Field(default_factory=list)
    workdays: list[DateRange] = Field(default_factory=list)
    promotions: list[Promotion] = Field(default_factory=list)
    timezone: str | None = None

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone {value!r}: use an IANA name such as Asia/Shanghai") from None
        return value

    @property
    def empty(self) -> bool:
        return self.builtin == "none" and not (self.holidays or self.workdays or self.promotions)

    def problems(self) -> Iterable[tuple[tuple[str | int, ...], str]]:
        """Cross-entry checks: a day cannot be both a holiday and a working day of the catalog's own lists."""
        off = {d for r in self.holidays for d in r.days()}
        for i, r in enumerate(self.workdays):
            clash = sorted(d for d in r.days() if d in off)
            if clash:
                yield ("calendar", "workdays", i), f"{clash[0]} is also listed under holidays"

    def resolve(self, default_timezone: str = "UTC") -> Calendar:
        """The shared :class:`Calendar`: the built-in list, then the catalog's own holidays and working days."""
        off: set[date] = set()
        work: set[date] = set()
        years: frozenset[int] = frozenset()
        if self.builtin != "none":
            table = BUILTIN[self.builtin]
            years = frozenset(table)
            for days_off, workdays in table.values():
                off |= days_off
                work |= workdays
        own_off = {d for r in self.holidays for d in r.days()}
        own_work = {d for r in self.workdays for d in r.days()}
        off = (off - own_work) | own_off
        work = (work - own_off) | own_work
        promos = tuple((p.name, p.start, p.end or p.start, p.lift) for p in self.promotions)
        return Calendar(frozenset(off), frozenset(work), promos, self.timezone or default_timezone, years)


@dataclass(frozen=True, slots=True)
class Calendar:
    """What kind of day an instant falls on. Immutable and shared by every series that uses it."""

    holidays: frozenset[date]
    workdays: frozenset[date]
    promotions: tuple[tuple[str, date, date, float], ...] = ()
    timezone: str = "UTC"
    builtin_years: frozenset[int] = frozenset()

    def day(self, ts: float) -> date:
        """The calendar date of epoch seconds ``ts`` in the calendar's time zone."""
        zone = UTC if self.timezone == "UTC" else ZoneInfo(self.timezone)
        return datetime.fromtimestamp(ts, zone).date()

    def kind_of(self, day: date) -> DayKind:
        """``holiday`` (a day off by the list), ``workday`` (Monday-Friday or an adjusted working day), ``weekend``."""
        if day in self.holidays:
            return "holiday"
        if day in self.workdays or day.weekday() < 5:
            return "workday"
        return "weekend"

    def kind(self, ts: float) -> DayKind:
        return self.kind_of(self.day(ts))

    def promotion_of(self, day: date) -> str | None:
        """The name of the promotion running on ``day`` (the first listed if several), or ``None``."""
        for name, start, end, _ in self.promotions:
            if start <= day <= end:
                return name
        return None

    def lift_of(self, day: date) -> float:
        """The largest ``lift`` of the promotions running on ``day``; 1.0 on a day without one."""
        return max((lift for _, start, end, lift in self.promotions if start <= day <= end), default=1.0)

    def promotion(self, ts: float) -> str | None:
        return self.promotion_of(self.day(ts))

    def with_promotions(self, extra: Iterable[tuple[str, date, date, float]]) -> Calendar:
        """This calendar with ``extra`` promotions (name, first day, last day, lift) after its own; e.g. the
        occasions people named when they marked alerts as expected.

        >>> cal = Calendar(frozenset(), frozenset()).with_promotions([("promotion", date(2026, 5, 1), date(2026, 5, 1), 3.0)])
        >>> cal.promotion_of(date(2026, 5, 1)), cal.lift_of(date(2026, 5, 2))
        ('promotion', 1.0)
        """
        return replace(self, promotions=self.promotions + tuple(extra))

    def covers(self, year: int) -> bool:
        """Whether the built-in list has ``year`` (the catalog's own dates apply every year)."""
        return year in self.builtin_years
