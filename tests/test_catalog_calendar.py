"""The catalog's business calendar: the built-in Chinese holiday list, own dates, promotions, file:line errors."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from catalog import CatalogError, parse_catalog
from catalog.calendar import BUILTIN, CalendarSpec

BASE = """\
version: 1
defaults: {timezone: Asia/Shanghai}
sources:
  orders: {topic: events.orders}
kpis:
  - name: orders
    source: orders
    measure: count
"""


def issues(text: str) -> list[tuple[int, str, str]]:
    with pytest.raises(CatalogError) as exc:
        parse_catalog(text, "cat.yaml")
    return [(i.line, ".".join(str(p) for p in i.path), i.message) for i in exc.value.issues]


def test_no_calendar_means_no_calendar_object() -> None:
    assert parse_catalog(BASE).business_calendar() is None


def test_builtin_cn_holidays_adjusted_workdays_and_promotions() -> None:
    cat = parse_catalog(BASE + """\
calendar:
  builtin: cn
  holidays: [2026-12-24, {from: 2025-12-30, to: 2025-12-31, name: year_end}]
  workdays: [2026-10-07]
  promotions:
    - {name: 618, from: 2026-06-01, to: 2026-06-18}
    - {name: double_11, from: 2026-11-11}
""")
    cal = cat.business_calendar()
    assert cal is not None and cal.timezone == "Asia/Shanghai"
    assert cal.kind_of(date(2026, 2, 17)) == "holiday"       # Spring Festival, a Tuesday
    assert cal.kind_of(date(2026, 2, 14)) == "workday"       # 调休: a Saturday that is worked
    assert cal.kind_of(date(2026, 2, 24)) == "workday"
    assert cal.kind_of(date(2026, 3, 7)) == "weekend"
    assert cal.kind_of(date(2025, 10, 8)) == "holiday"       # National Day + Mid-Autumn 2025, 8 days
    assert cal.kind_of(date(2025, 9, 28)) == "workday"       # a Sunday worked
    assert cal.kind_of(date(2026, 12, 24)) == "holiday"      # the catalog's own
    assert cal.kind_of(date(2025, 12, 31)) == "holiday"
    assert cal.kind_of(date(2026, 10, 7)) == "workday"       # the catalog overrides the built-in list
    assert cal.promotion_of(date(2026, 6, 18)) == "618"      # YAML's number 618 kept as a name
    assert cal.promotion_of(date(2026, 6, 19)) is None
    assert cal.promotion_of(date(2026, 11, 11)) == "double_11"
    # days are counted in the calendar's zone: 2026-02-14 16:30 UTC is already Sunday the 15th in Shanghai
    assert cal.kind(datetime(2026, 2, 14, 16, 30, tzinfo=UTC).timestamp()) == "holiday"
    assert cal.kind(datetime(2026, 2, 14, 15, 30, tzinfo=UTC).timestamp()) == "workday"
    assert cal.covers(2025) and cal.covers(2026) and not cal.covers(2027)


def test_builtin_cn_matches_the_state_council_notices() -> None:
    # day counts of the notices: 2025 元旦1 春节8 清明3 劳动5 端午3 国庆中秋8; 2026 元旦3 春节9 清明3 劳动5 端午3 中秋3 国庆7
    off25, work25 = BUILTIN["cn"][2025]
    off26, work26 = BUILTIN["cn"][2026]
    assert (len(off25), len(work25), len(off26), len(work26)) == (28, 5, 33, 6)
    # every adjusted working day is a weekend day, and no working day is also a day off
    assert all(d.weekday() >= 5 for d in work25 | work26)
    assert not (off25 & work25) and not (off26 & work26)
    # weekdays named in the notices
    assert date(2025, 1, 28).weekday() == 1 and date(2025, 2, 4).weekday() == 1   # 除夕 周二 .. 初七 周二
    assert date(2026, 2, 15).weekday() == 6 and date(2026, 2, 23).weekday() == 0  # 周日 .. 周一
    assert date(2026, 10, 1).weekday() == 3 and date(2026, 10, 7).weekday() == 2  # 周四 .. 周三


@pytest.mark.parametrize(("snippet", "line", "field", "words"), [
    ("calendar: {builtin: us}\n", 9, "calendar.builtin", "cn"),
    ("calendar: {holidays: [2026-13-01]}\n", 9, "calendar.holidays.0", ""),
    ("calendar:\n  promotions:\n    - {from: 2026-11-11}\n", 11, "calendar.promotions.0", "needs a name"),
    ("calendar:\n  promotions:\n    - {name: x, from: 2026-11-11, to: 2026-11-01}\n", 11, "calendar.promotions.0",
     "before"),
    ("calendar:\n  holidays: [2026-12-24]\n  workdays: [2026-12-24]\n", 11, "calendar.workdays.0", "also listed"),
    ("calendar: {timezone: Mars/Base}\n", 9, "calendar.timezone", "unknown time zone"),
    ("calendar: {holiday: [2026-12-24]}\n", 9, "calendar.holiday", "unknown field"),
])
def test_calendar_errors_name_line_and_field(snippet: str, line: int, field: str, words: str) -> None:
    found = issues(BASE + snippet)
    assert any(ln == line and path.startswith(field) and words in msg for ln, path, msg in found), found


def test_an_empty_spec_is_empty_and_resolves_to_plain_weekdays() -> None:
    spec = CalendarSpec()
    assert spec.empty
    cal = spec.resolve()
    assert cal.kind_of(date(2026, 2, 17)) == "workday" and cal.kind_of(date(2026, 2, 15)) == "weekend"
