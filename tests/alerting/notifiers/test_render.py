"""Shared message text: English and Chinese templates, numbers, windows, truncation, escaping."""

from __future__ import annotations

from alerting.notifiers import render

from ._samples import T0, alert, notification


def test_english_plain_text_has_every_fact() -> None:
    text = render.plain_text(notification())
    assert text.splitlines()[0] == "[FIRING] critical · 支付订单数: paid_orders below 10 for 2m"
    for expected in (
        "Value: 9 orders",
        "Expected: 42 orders (band 30 – 55 orders)",
        "Labels: channel=app, region=east",
        "Window: 2025-11-28 10:00:00 – 10:01:00 UTC",
        "Severity: critical",
        "Since: 2025-11-28 10:02:00 UTC",
        "Open dashboard: http://grafana.local/d/kpi-paid-orders?var-region=east",
        "Alert source: http://kpimon.local",
    ):
        assert expected in text


def test_chinese_templates() -> None:
    resolved = alert(status="resolved", ends_at=T0 + 600, severity="warning")
    text = render.plain_text(notification(resolved, language="zh"))
    assert text.startswith("【已恢复】警告 · 支付订单数")
    assert "恢复时间: 2025-11-28 10:10:00 UTC" in text and "级别: 警告" in text


def test_firing_count_ignores_resolved_members() -> None:
    mixed = notification(alert(), alert(status="resolved", ends_at=T0), alert(fingerprint="x"))
    assert render.title(mixed).startswith("[FIRING:2]")


def test_missing_values_and_big_numbers() -> None:
    a = alert(value=None, expected=1_234_567.0, lower=None, upper=None, unit="CNY", labels={})
    facts = dict(render.alert_facts(a, "en"))
    assert facts["Value"] == "n/a" and facts["Expected"] == "1,234,567 CNY" and "Labels" not in facts


def test_window_across_midnight_prints_both_dates() -> None:
    a = alert(window_start=T0 + 50_400 - 60, window_end=T0 + 50_400)  # 23:59 -> 00:00
    assert dict(render.alert_facts(a, "en"))["Window"] == "2025-11-28 23:59:00 UTC – 2025-11-29 00:00:00 UTC"


def test_group_is_cut_and_ordered_by_severity() -> None:
    alerts = [alert(severity="info", fingerprint=f"i{i}") for i in range(12)] + [alert(severity="critical")]
    n = notification(*alerts)
    shown = render.shown_alerts(n)
    assert len(shown) == render.MAX_ALERTS and shown[0].severity == "critical"
    assert render.more_line(n) == "… and 3 more alert(s)"
    assert render.more_line(notification(*alerts, language="zh")) == "…… 另有 3 条告警"


def test_html_is_escaped() -> None:
    body = render.html_body(notification(alert(kpi_title="<script>x</script>", summary="a & b")))
    assert "<script>" not in body and "&lt;script&gt;" in body and "a &amp; b" in body
    assert body.startswith("<!DOCTYPE html>")


def test_colors() -> None:
    assert render.color(notification()) == "red"
    assert render.color(notification(alert(severity="warning"))) == "orange"
    assert render.color(notification(alert(status="resolved", ends_at=T0))) == "green"


CORRECTION = {"start": T0 + 2400, "end": T0 + 2460, "was": 0.0, "now": 412.0, "raised_at": T0 + 2460,
              "retracted": False}


def test_correction_notice_in_english_and_chinese() -> None:
    fixed = alert(correction=CORRECTION, value=0.0)
    en = render.plain_text(notification(fixed, status="correction"))
    assert en.splitlines()[0] == ("[CORRECTION] critical · 支付订单数: revised: the 10:40 window was 412 orders, "
                                  "not 0 orders — the 10:41 alert was raised on incomplete data")
    zh = render.plain_text(notification(fixed, status="correction", language="zh"))
    assert zh.splitlines()[0] == ("【更正】严重 · 支付订单数: 更正：10:40 窗口的值为 412 orders，而不是 0 orders —— "
                                  "10:41 的告警基于不完整的数据")
    assert render.color(notification(fixed, status="correction")) == "blue"
    withdrawn = alert(correction={**CORRECTION, "retracted": True}, status="resolved", ends_at=T0 + 2500)
    assert render.title(notification(withdrawn, status="correction", language="zh")).endswith("（告警已撤销）")
    assert "(alert withdrawn)" in render.markdown(notification(withdrawn, status="correction"))


def test_drift_is_told_as_a_new_level_in_both_languages() -> None:
    drop = alert(value=0.0, summary="drift: new level 0 since 10:40", drift_since=T0 + 2400)
    assert render.title(notification(drop)).endswith("支付订单数: drift: new level 0 orders since 10:40")
    assert render.title(notification(drop, language="zh")).endswith("支付订单数: 漂移：自 10:40 起新水平为 0 orders")
    templated = alert(value=0.0, summary="paid orders 0 in east", drift_since=T0 + 2400)  # a rule's own summary
    assert render.title(notification(templated)).endswith(": paid orders 0 in east")
