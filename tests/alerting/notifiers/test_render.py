"""Shared message text: English and Chinese templates, numbers by kind, local times, groups, truncation, escaping."""

from __future__ import annotations

from dataclasses import replace

from alerting.notifiers import render
from alerting.notifiers.base import AlertInfo, Notification
from alerting.notifiers.templates import TEXT

from ._samples import T0, alert, notification


def test_english_plain_text_has_every_fact() -> None:
    text = render.plain_text(notification(at=T0 + 120 + 1200))
    assert text.splitlines()[0] == "[FIRING] critical · Paid orders · channel=app, region=east: 9 orders, below 10"
    for expected in (
        "Series: channel=app, region=east",
        "Value: 9 orders",
        "Threshold: below 10",
        "Expected: 42 orders (normal range 30 – 55 orders)",
        "Impact: ≈ −660 orders vs expected over 20 min",  # (9 - 42) x 20 one-minute windows
        "Window: 2025-11-28 10:00 – 10:01 UTC",
        "Since: 2025-11-28 10:02 UTC (for 20 min)",
        "Severity: critical",
        "Owner: payments",
        "Open dashboard: http://grafana.local/d/kpi-paid-orders?var-region=east",
        "Alert source: http://kpimon.local",
    ):
        assert expected in text


def test_chinese_resolved_in_local_time() -> None:
    resolved = alert(status="resolved", ends_at=T0 + 600, severity="warning", value=40.0)
    text = render.plain_text(notification(resolved, language="zh", timezone="Asia/Shanghai"))
    assert text.startswith("【已恢复】警告 · 支付订单数 · channel=app, region=east：已恢复正常（40 单），持续 8 分钟")
    assert "恢复时间: 2025-11-28 18:10 UTC+8（持续 8 分钟）" in text and "级别: 警告" in text
    assert "统计窗口: 2025-11-28 18:00 – 18:01 UTC+8" in text
    assert "影响" not in text  # a resolved value is normal: no shortfall to tell


def test_title_falls_back_to_the_other_language() -> None:
    only_zh = alert(kpi_titles={"zh": "支付订单数"})
    assert "支付订单数" in render.title(notification(only_zh))
    assert "Paid orders" in render.title(notification(alert(kpi_titles={"en": "Paid orders"}), language="zh"))


def test_group_headline_lists_label_values_not_placeholders() -> None:
    regions = ["east", "west", "north", "south"]
    alerts = [alert(labels={"region": r}, fingerprint=r, value=0.0) for r in regions]
    en, zh = notification(*alerts), notification(*alerts, language="zh")
    assert render.title(en) == "[FIRING:4] critical · Paid orders: below 10 · region=east, north, south, west"
    assert render.title(zh) == "【告警中:4】严重 · 支付订单数：低于 10 · region=east、north、south、west"
    many = [alert(labels={"region": f"r{i}"}, fingerprint=str(i)) for i in range(8)]
    assert render.title(notification(*many)).endswith("r0, r1, r2, r3, r4, +3 more")


def test_custom_summary_is_used_in_its_language_only() -> None:
    custom = alert(summaries={"en": "paid orders 9 in east"})
    assert render.title(notification(custom)).endswith(": paid orders 9 in east")
    assert render.title(notification(custom, language="zh")).endswith("：9 单，低于 10")


def test_numbers_by_kind_and_clipped_bands() -> None:
    count = alert(expected=12.4, lower=-12.42, upper=70.1, value=3.0)
    facts = dict(render.alert_facts(count, notification(count)))
    assert facts["Expected"] == "12 orders (normal range 0 – 70 orders)"
    ratio = alert(value_kind="ratio", unit="ratio", value=0.0307692, expected=0.05, lower=-0.01, upper=1.2,
                  value_max=1.0, limits=(0.02,))
    facts = dict(render.alert_facts(ratio, notification(ratio)))
    assert facts["Value"] == "3.08%" and facts["Threshold"] == "below 2%"
    assert facts["Expected"] == "5% (normal range 0% – 100%)" and "Impact" not in facts
    money = alert(value_kind="money", unit="CNY", value=1234567.8, expected=None, lower=None, upper=None)
    assert dict(render.alert_facts(money, notification(money)))["Value"] == "¥1,234,568"
    other = alert(value_kind="value", unit="ms", value=39.4506, expected=None, lower=None, upper=None)
    assert dict(render.alert_facts(other, notification(other)))["Value"] == "39.5 ms"


def test_missing_value_and_total_series() -> None:
    a = alert(value=None, expected=None, lower=None, upper=None, labels={})
    facts = dict(render.alert_facts(a, notification(a)))
    assert facts["Value"] == "no data" and facts["Series"] == "total" and "Expected" not in facts


def test_window_across_midnight_prints_both_dates() -> None:
    a = alert(window_start=T0 + 50_400 - 60, window_end=T0 + 50_400)  # 23:59 -> 00:00 UTC
    assert dict(render.alert_facts(a, notification(a)))["Window"] == "2025-11-28 23:59 UTC – 2025-11-29 00:00 UTC"


def test_group_is_cut_and_ordered_by_severity() -> None:
    alerts = [alert(severity="info", fingerprint=f"i{i}") for i in range(12)] + [alert(severity="critical")]
    n = notification(*alerts)
    shown = render.shown_alerts(n)
    assert len(shown) == render.MAX_ALERTS and shown[0].severity == "critical"
    assert render.more_line(n) == "… and 3 more alert(s)"
    assert render.more_line(notification(*alerts, language="zh")) == "…… 另有 3 条告警"


def test_escalation_headline_differs_from_the_notification() -> None:
    n = notification(at=T0 + 120 + 1800)
    escalated = replace(n, kind="escalation")
    assert render.title(escalated) != render.title(n)
    assert render.title(escalated).startswith("[ESCALATED] critical")
    assert render.title(escalated).endswith(", unacknowledged for 30 min")
    assert render.title(replace(escalated, language="zh")).endswith("，30 分钟未确认")


def test_action_links_only_while_firing() -> None:
    acts = {"ack": "https://k/act/a", "silence": "https://k/act/s", "false_alarm": "https://k/act/f"}
    firing = alert(actions=acts)
    labels = [label for label, _ in render.links(firing, "zh")]
    assert labels == ["查看看板", "确认", "静默 2 小时", "误报"]
    assert [u for _, u in render.links(replace(firing, status="resolved", ends_at=T0), "en")] == [firing.dashboard_url]
    assert render.links(replace(firing, dashboard_url=None, actions={}), "en") == []


def test_html_is_escaped() -> None:
    body = render.html_body(notification(alert(kpi_titles={"en": "<script>x</script>"}, labels={"a": "b & c"})))
    assert "<script>" not in body and "&lt;script&gt;" in body and "b &amp; c" in body
    assert body.startswith("<!DOCTYPE html>")


def test_colors() -> None:
    assert render.color(notification()) == "red"
    assert render.color(notification(alert(severity="warning"))) == "orange"
    assert render.color(notification(alert(status="resolved", ends_at=T0))) == "green"


CORRECTION = {"start": T0 + 2400, "end": T0 + 2460, "was": 0.0, "now": 412.0, "raised_at": T0 + 2460,
              "retracted": False}


def correction_note(a: AlertInfo, language: str = "en") -> Notification:
    return replace(notification(a, status="correction", language=language), kind="correction")


def test_correction_notice_in_english_and_chinese() -> None:
    fixed = alert(correction=CORRECTION, value=0.0)
    en = render.plain_text(correction_note(fixed))
    assert en.splitlines()[0] == ("[CORRECTION] critical · Paid orders · channel=app, region=east: revised: the 10:40 "
                                  "UTC window was 412 orders, not 0 orders — the 10:41 UTC alert was raised on "
                                  "incomplete data")
    zh = render.plain_text(correction_note(fixed, "zh"))
    assert zh.splitlines()[0] == ("【更正】严重 · 支付订单数 · channel=app, region=east：更正：10:40 UTC 窗口的值为 412 单，"
                                  "而不是 0 单 —— 10:41 UTC 的告警基于不完整的数据")
    assert render.color(correction_note(fixed)) == "blue"
    withdrawn = alert(correction={**CORRECTION, "retracted": True}, status="resolved", ends_at=T0 + 2500)
    assert render.title(correction_note(withdrawn, "zh")).endswith("（告警已撤销）")
    assert "(alert withdrawn)" in render.markdown(correction_note(withdrawn))


def test_drift_is_told_as_a_new_level_in_both_languages() -> None:
    drop = alert(value=0.0, summary="drift: new level 0 since 10:40", drift_since=T0 + 2400)
    assert render.title(notification(drop)).endswith("region=east: drift: new level 0 orders since 10:40 UTC")
    assert render.title(notification(drop, language="zh")).endswith("region=east：漂移：自 10:40 UTC 起新水平为 0 单")
    back = alert(value=9.0, summary="drift: new level 9 since 10:40", drift_since=T0 + 2400, status="resolved",
                 ends_at=T0 + 3000)
    assert render.title(notification(back)).endswith("drift: new level 9 orders since 10:40 UTC (the new normal)")
    other = alert(value=0.0, summary="paid orders 0 in east", drift_since=T0 + 2400)  # not a drift description
    assert "drift" not in render.title(notification(other))


def test_both_languages_have_every_entry() -> None:
    assert set(TEXT["en"]) == set(TEXT["zh"])


def test_grouped_escalation_says_how_long_it_waited() -> None:
    alerts = [alert(labels={"region": r}, fingerprint=r) for r in ("east", "west")]
    n = replace(notification(*alerts, at=T0 + 120 + 900), kind="escalation")
    assert render.title(n) == "[ESCALATED:2] critical · Paid orders: below 10 · region=east, west, unacknowledged for 15 min"
