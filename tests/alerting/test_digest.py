"""The digest's renderings carry the review's figures, in the team's language only."""

from __future__ import annotations

import re

from alerting.digest import period_due, render_html, render_markdown, render_text
from tests.alerting.test_review import sales

TZ = "Asia/Shanghai"


def test_text_has_the_figures() -> None:
    text = render_text(sales(), "en", TZ, {"orders": "Orders"})
    assert "Alerts               6 (6 per week)" in text and "3/week (3): over budget by 3" in text
    assert "Precision            50%" in text and "true 2 / false 2 / expected 1" in text
    assert "median 5 min, p90 15 min (5 of 6)" in text and "median 20 min, p90 1 h (5 of 6)" in text
    assert re.search(r"orders/low +4 +1 / 2 / 0 +33% +2 min +15 min", text), text
    assert re.search(r"Orders +800 +1,000/day +80%", text) and "below = 62.0" in text
    assert re.search(r"orders +region=east +3 +2", text) and "bob  orders/low  below 90 → 80" in text


def test_chinese_digest_has_no_english_words() -> None:
    md = render_markdown(sales(), "zh", TZ)
    assert "- **准确率**: 50%" in md and "中位数 5 分钟，p90 15 分钟（6 条中 5 条）" in md
    assert "即误报触发时的最极端值（1 条真告警仍会触发）" in md and "反馈: 误报" in md
    words = set(re.findall(r"[A-Za-z]{3,}", md))  # names of KPIs, rules, labels and units only
    assert words <= {"sales", "orders", "low", "gmv", "odd", "region", "east", "west", "total", "below", "week",
                     "day", "bob", "UTC"}, words


def test_html_escapes_and_refers_to_the_charts() -> None:
    page = render_html(sales(), "en", TZ, charts=[("orders <chart>", "c1")])
    assert '<img src="cid:c1" alt="orders &lt;chart&gt;">' in page and "<td>33%</td>" in page


def test_period_due_in_the_team_time_zone() -> None:
    monday = 1767542400.0  # 2026-01-05 00:00 Asia/Shanghai is 2026-01-04 16:00 UTC
    assert period_due("daily", monday + 60, TZ) == (monday - 86400, monday)
    assert period_due("weekly", monday + 60, TZ) == (monday - 7 * 86400, monday)
    assert period_due("weekly", monday - 60, TZ) == (monday - 14 * 86400, monday - 7 * 86400)


def test_a_proposal_shows_its_backtest_in_the_teams_language() -> None:
    """A proposal carrying its backtest (current -> proposed over the period) says so in both languages."""
    import dataclasses

    from alerting.tuning import with_backtest

    r = sales()
    figures = {"days": 7.0, "current": {"fired": 4, "alert_minutes": 95.0, "series": 2},
               "proposed": {"fired": 1, "alert_minutes": 12.5, "series": 1}}
    tested = dataclasses.replace(r, proposals=tuple(with_backtest(p, figures) for p in r.proposals))
    assert "4 → 1 alerts, 95 → 12.5 alert-minutes over the period" in render_text(tested, "en", TZ)
    assert "本期告警 4 → 1 次，告警时长 95 → 12.5 分钟" in render_markdown(tested, "zh", TZ)
    assert "4 → 1" not in render_text(r, "en", TZ)
