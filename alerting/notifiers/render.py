"""Message text shared by every notifier, in English and Chinese.

Vendors differ only in markup, so the *content* is decided here once: :func:`title`, :func:`alert_facts` (the
label/value pairs: value, expected band, dimensions, window, severity, since when) and :func:`more_line`.
Renderers for plain text, HTML (email) and markdown (DingTalk, WeCom) build on them; Slack, Teams and Feishu
shape their JSON from the same pieces. Times are shown in UTC so a message reads the same in every region.

Examples
--------
>>> fmt_number(1234567.0, "CNY")
'1,234,567 CNY'
>>> fmt_number(0.0321, "")
'0.0321'
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable
from datetime import UTC, datetime

from .base import AlertInfo, Notification

__all__ = [
    "MAX_ALERTS",
    "alert_facts",
    "color",
    "correction_text",
    "fmt_number",
    "fmt_time",
    "html_body",
    "markdown",
    "more_line",
    "plain_text",
    "shown_alerts",
    "subject",
    "source_silent_text",
    "text",
    "title",
]

# IM messages have size limits (WeCom markdown: 4096 bytes); a group of hundreds of alerts is cut here and the
# rest counted, the way alertmanager's templates show "and N more".
MAX_ALERTS = 10

_TEXT: dict[str, dict[str, str]] = {
    "en": {
        "firing": "FIRING",
        "resolved": "RESOLVED",
        "info": "info",
        "warning": "warning",
        "critical": "critical",
        "value": "Value",
        "expected": "Expected",
        "band": "band",
        "labels": "Labels",
        "window": "Window",
        "severity": "Severity",
        "since": "Since",
        "resolved_at": "Resolved at",
        "dashboard": "Open dashboard",
        "more": "… and {n} more alert(s)",
        "alerts": "alerts",
        "source": "Alert source",
        "none": "n/a",
        "mention": "Please take a look.",
        "correction": "CORRECTION",
        "revised": "revised: the {window} window was {now}, not {was} — the {raised} alert was raised on "
        "incomplete data",
        "retracted": " (alert withdrawn)",
        "drift": "drift: new level {level} since {since}",
    },
    "zh": {
        "firing": "告警中",
        "resolved": "已恢复",
        "info": "提示",
        "warning": "警告",
        "critical": "严重",
        "value": "当前值",
        "expected": "预期值",
        "band": "正常区间",
        "labels": "维度",
        "window": "统计窗口",
        "severity": "级别",
        "since": "开始时间",
        "resolved_at": "恢复时间",
        "dashboard": "查看看板",
        "more": "…… 另有 {n} 条告警",
        "alerts": "条告警",
        "source": "告警来源",
        "none": "无",
        "mention": "请相关同事关注处理。",
        "correction": "更正",
        "revised": "更正：{window} 窗口的值为 {now}，而不是 {was} —— {raised} 的告警基于不完整的数据",
        "retracted": "（告警已撤销）",
        "drift": "漂移：自 {since} 起新水平为 {level}",
    },
}


# source_silent (alerting.freshness): self-contained so the general templates can change around it
_SILENT: dict[str, dict[str, str]] = {
    "en": {
        "title": "Data source {source}",
        "firing": "no events since {since} ({minutes} min)",
        "resolved": "events again since {until} (silent for {minutes} min)",
        "source": "Data source",
        "last_event": "Last event",
        "affected": "Affected KPIs",
        "meanwhile": "Meanwhile",
        "held": "Their alerts are held until events arrive again; then fresh data judges them.",
    },
    "zh": {
        "title": "数据源 {source}",
        "firing": "自 {since} 起未收到任何事件（已 {minutes} 分钟）",
        "resolved": "自 {until} 起重新收到事件（中断 {minutes} 分钟）",
        "source": "数据源",
        "last_event": "最后事件",
        "affected": "受影响指标",
        "meanwhile": "处理方式",
        "held": "这些指标的告警暂缓发送，数据恢复后按新数据重新判断。",
    },
}


def source_silent_text(language: str, status: str, source: str, since: float, until: float,
                       kpis: list[str]) -> tuple[str, str, str]:
    """Title, summary and the affected KPIs (joined) of a ``source_silent`` alert (``since``: newest event;
    ``until``: now, or when events resumed).

    >>> source_silent_text("zh", "firing", "orders", 0.0, 600.0, ["支付订单数", "成交总额"])
    ('数据源 orders', '自 1970-01-01 00:00:00 UTC 起未收到任何事件（已 10 分钟）', '支付订单数、成交总额')
    """
    t = _SILENT.get(language, _SILENT["en"])
    summary = t["resolved" if status == "resolved" else "firing"].format(
        since=fmt_time(since), until=fmt_time(until), minutes=max(1, round((until - since) / 60)))
    return t["title"].format(source=source), summary, ("、" if language == "zh" else ", ").join(kpis)


def _silent_facts(alert: AlertInfo, language: str) -> list[tuple[str, str]]:
    t, s = _TEXT.get(language, _TEXT["en"]), _SILENT.get(language, _SILENT["en"])
    facts = [(s["source"], alert.kpi), (s["last_event"], fmt_time(alert.window_start)),
             (s["affected"], alert.labels.get("affected", "") or t["none"])]
    if alert.status != "resolved":
        facts.append((s["meanwhile"], s["held"]))
    facts += [(t["severity"], t.get(alert.severity, alert.severity)), (t["since"], fmt_time(alert.starts_at))]
    if alert.status == "resolved" and alert.ends_at is not None:
        facts.append((t["resolved_at"], fmt_time(alert.ends_at)))
    return facts


def text(language: str, key: str) -> str:
    """A UI string in ``language`` (falls back to English for unknown languages)."""
    return _TEXT.get(language, _TEXT["en"])[key]


def fmt_number(value: float | None, unit: str, language: str = "en") -> str:
    """Human-friendly number: thousands separators for large values, 4 significant digits otherwise."""
    if value is None or math.isnan(value):
        return text(language, "none")
    shown = f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"
    return f"{shown} {unit}".strip()


def fmt_time(epoch: float) -> str:
    """Epoch seconds as ``YYYY-MM-DD HH:MM:SS UTC``."""
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _hhmm(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%H:%M")


def correction_text(alert: AlertInfo, language: str) -> str:
    """The sentence of a correction notice, e.g. ``revised: the 10:40 window was 412, not 0 — the 10:41 alert
    was raised on incomplete data`` (``(alert withdrawn)`` appended when the correction retracted it).

    >>> c = {"start": 600.0, "end": 660.0, "was": 0.0, "now": 412.0, "raised_at": 660.0, "retracted": True}
    >>> a = AlertInfo("low", "orders", "Orders", "critical", "resolved", {}, 412.0, None, None, None, "orders",
    ...               "", 600.0, 660.0, 660.0, 660.0, "fp", correction=c)
    >>> correction_text(a, "en")
    'revised: the 00:10 window was 412 orders, not 0 orders — the 00:11 alert was raised on incomplete data (alert withdrawn)'
    >>> correction_text(a, "zh")
    '更正：00:10 窗口的值为 412 orders，而不是 0 orders —— 00:11 的告警基于不完整的数据（告警已撤销）'
    """
    c = alert.correction or {}
    raised = c.get("raised_at")
    sentence = text(language, "revised").format(
        window=_hhmm(float(c.get("start", alert.window_start))),
        now=fmt_number(c.get("now"), alert.unit, language),
        was=fmt_number(c.get("was"), alert.unit, language),
        raised=_hhmm(float(raised)) if raised is not None else text(language, "none"),
    )
    return sentence + (text(language, "retracted") if c.get("retracted") else "")


def subject(alert: AlertInfo, language: str) -> str:
    """What one alert says: the correction sentence, the new level of a drift, or the rule's summary."""
    if alert.correction is not None:
        return correction_text(alert, language)
    if alert.drift_since is not None and alert.summary.startswith("drift:"):
        level = fmt_number(alert.value, alert.unit, language)
        return text(language, "drift").format(level=level, since=_hhmm(alert.drift_since))
    return alert.summary or alert.rule


def _fmt_window(alert: AlertInfo) -> str:
    start, end = fmt_time(alert.window_start), fmt_time(alert.window_end)
    # Same day: print the date once.
    return f"{start[:-4]} – {end[11:]}" if start[:10] == end[:10] else f"{start} – {end}"


def shown_alerts(n: Notification) -> tuple[AlertInfo, ...]:
    """The alerts rendered in full: firing first (most severe first), capped at :data:`MAX_ALERTS`."""
    rank = {"critical": 0, "warning": 1, "info": 2}
    ordered = sorted(n.alerts, key=lambda a: (a.status != "firing", rank.get(a.severity, 3), a.starts_at))
    return tuple(ordered[:MAX_ALERTS])


def more_line(n: Notification) -> str | None:
    """``"… and N more alert(s)"`` when the group was cut, else ``None``."""
    hidden = len(n.alerts) - MAX_ALERTS
    return text(n.language, "more").format(n=hidden) if hidden > 0 else None


def title(n: Notification) -> str:
    """One-line headline, e.g. ``[FIRING:2] critical · Paid orders: paid_orders below 10 for 2m``."""
    lang = n.language
    status = text(lang, n.status if n.status in ("firing", "resolved", "correction") else "firing")
    # Like alertmanager's [FIRING:n]: a firing group counts its firing alerts only.
    counted = [a for a in n.alerts if a.status == "firing"] if n.status == "firing" else list(n.alerts)
    count = f":{len(counted)}" if len(counted) > 1 else ""
    if not n.alerts:
        return f"[{status}] {n.group_key}"
    top = shown_alerts(n)[0]
    said = subject(top, lang)
    head = f"[{status}{count}] " if lang != "zh" else f"【{status}{count}】"
    return f"{head}{text(lang, top.severity) if top.severity in _TEXT['en'] else top.severity} · {top.kpi_title}: {said}"


def alert_facts(alert: AlertInfo, language: str) -> list[tuple[str, str]]:
    """The label/value pairs shown for one alert, in display order."""
    if alert.rule == "source_silent":
        return _silent_facts(alert, language)
    t = _TEXT.get(language, _TEXT["en"])
    facts = [(t["value"], fmt_number(alert.value, alert.unit, language))]
    if alert.expected is not None or alert.lower is not None or alert.upper is not None:
        expected = fmt_number(alert.expected, alert.unit, language)
        if alert.lower is not None and alert.upper is not None:
            band = (
                f"{fmt_number(alert.lower, '', language)} – {fmt_number(alert.upper, alert.unit, language)}"
            )
            expected = f"{expected} ({t['band']} {band})"
        facts.append((t["expected"], expected))
    if alert.labels:
        facts.append((t["labels"], ", ".join(f"{k}={v}" for k, v in sorted(alert.labels.items()))))
    facts.append((t["window"], _fmt_window(alert)))
    facts.append((t["severity"], t.get(alert.severity, alert.severity)))
    facts.append((t["since"], fmt_time(alert.starts_at)))
    if alert.status == "resolved" and alert.ends_at is not None:
        facts.append((t["resolved_at"], fmt_time(alert.ends_at)))
    return facts


def color(n: Notification) -> str:
    """A colour name for the group: ``green`` resolved, else ``red``/``orange``/``blue`` by top severity."""
    if n.status == "resolved" or not n.alerts:
        return "green"
    if n.status == "correction":
        return "blue"
    return {"critical": "red", "warning": "orange"}.get(shown_alerts(n)[0].severity, "blue")


def _alert_heading(alert: AlertInfo, language: str) -> str:
    status = text(language, alert.status) if alert.status in ("firing", "resolved") else alert.status
    return f"{alert.kpi_title} — {subject(alert, language)} ({status})"


def plain_text(n: Notification) -> str:
    """Plain-text body (email alternative part, fallbacks)."""
    lines = [title(n), ""]
    for alert in shown_alerts(n):
        lines.append(f"* {_alert_heading(alert, n.language)}")
        lines += [f"    {k}: {v}" for k, v in alert_facts(alert, n.language)]
        if alert.dashboard_url:
            lines.append(f"    {text(n.language, 'dashboard')}: {alert.dashboard_url}")
        lines.append("")
    lines += _footer(n)
    return "\n".join(lines).rstrip() + "\n"


def _footer(n: Notification) -> list[str]:
    extra = [line for line in (more_line(n),) if line]
    if n.external_url:
        extra.append(f"{text(n.language, 'source')}: {n.external_url}")
    return extra


def markdown(n: Notification, *, newline: str = "\n", escape: Callable[[str], str] = lambda s: s) -> str:
    """Markdown for DingTalk and WeCom: a heading, then per alert a bold line and quoted facts.

    Both vendors support headings, bold, links and ``>`` quotes (WeCom has no lists); DingTalk needs a blank
    line between lines (``newline="\\n\\n"``) or it joins them.
    """
    parts = [f"### {escape(title(n))}"]
    for alert in shown_alerts(n):
        # The blank line ends the previous quote; without it markdown folds the next heading into it.
        parts += ["", f"**{escape(_alert_heading(alert, n.language))}**"]
        parts += [f"> {escape(k)}: {escape(v)}" for k, v in alert_facts(alert, n.language)]
        if alert.dashboard_url:
            parts.append(f"> [{text(n.language, 'dashboard')}]({alert.dashboard_url})")
    footer = [escape(line) for line in _footer(n)]
    parts += ["", *footer] if footer else []
    return newline.join(parts)


def html_body(n: Notification) -> str:
    """A small self-contained HTML document (inline styles only: mail clients strip ``<style>``)."""
    e = html.escape
    hex_color = {"red": "#d32f2f", "orange": "#f57c00", "blue": "#1976d2", "green": "#388e3c"}[color(n)]
    rows: list[str] = [f'<h2 style="color:{hex_color};font-family:sans-serif">{e(title(n))}</h2>']
    for alert in shown_alerts(n):
        rows.append(f'<h3 style="font-family:sans-serif">{e(_alert_heading(alert, n.language))}</h3>')
        cells = "".join(
            f'<tr><th align="left" style="padding:2px 12px 2px 0">{e(k)}</th><td>{e(v)}</td></tr>'
            for k, v in alert_facts(alert, n.language)
        )
        rows.append(f'<table style="font-family:sans-serif;border-collapse:collapse">{cells}</table>')
        if alert.dashboard_url:
            rows.append(
                f'<p><a href="{e(alert.dashboard_url, quote=True)}">{e(text(n.language, "dashboard"))}</a></p>'
            )
    rows += [f"<p>{e(line)}</p>" for line in _footer(n)]
    lang = "zh-CN" if n.language == "zh" else "en"
    return f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8"></head><body>{"".join(rows)}</body></html>'
