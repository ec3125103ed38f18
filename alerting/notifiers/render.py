"""Message content shared by every notifier, in the notification's language only.

Vendors differ only in markup, so the *content* is decided here once: :func:`title` (the headline),
:func:`heading` and :func:`alert_facts` (per alert: series, value, threshold or expected band, impact, window,
since when and for how long, severity, owner), :func:`links` (board, ack / silence / feedback) and
:func:`more_line`. Every word comes from :mod:`alerting.notifiers.templates`, every number and time from
:mod:`alerting.notifiers.fmt` (by the KPI's kind, in the catalog's time zone). Renderers for plain text, HTML
(email) and markdown (DingTalk, WeCom) build on them; Slack, Teams and Feishu shape their JSON from the same
pieces. A group (one rule, several series) gets one headline listing the series' label values.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence

from . import fmt
from .base import AlertInfo, Notification
from .templates import TEXT, word

__all__ = [
    "MAX_ALERTS",
    "alert_facts",
    "color",
    "condition",
    "correction_text",
    "fmt_time",
    "heading",
    "html_body",
    "kpi_title",
    "links",
    "markdown",
    "more_line",
    "plain_text",
    "series_text",
    "shown_alerts",
    "source_silent_text",
    "text",
    "title",
]

# IM messages have size limits (WeCom markdown: 4096 bytes); a group of hundreds of alerts is cut here and the
# rest counted, the way alertmanager's templates show "and N more".
MAX_ALERTS = 10
_HEAD_SERIES = 5  # label values listed in a group's headline
_ACTIONS = ("ack", "silence", "true_alarm", "false_alarm", "expected")
_ACTION_WORD = {"expected": "expected_alarm"}  # the template key of an action's label, where it is not the action


def text(language: str, key: str) -> str:
    """A UI string in ``language`` (falls back to English for unknown languages)."""
    return word(language, key)


def fmt_time(epoch: float, tz: str = "UTC") -> str:
    """Epoch seconds in zone ``tz`` with its offset, e.g. ``2025-11-28 18:02 UTC+8``."""
    return fmt.local_time(epoch, tz)


def kpi_title(alert: AlertInfo, language: str) -> str:
    """The KPI's title in ``language``, else in the other language, else the title given, else the name."""
    titles = alert.kpi_titles
    other = next((v for k, v in titles.items() if k != language and v), "")
    return titles.get(language) or titles.get("en") or other or alert.kpi_title or alert.kpi


def _num(alert: AlertInfo, value: float | None, language: str) -> str:
    return fmt.number(value, alert.value_kind, alert.unit, language, none=word(language, "no_data"))


def _limit(alert: AlertInfo, value: float, language: str) -> str:
    if alert.condition.startswith(("drop_", "rise_")):
        return f"{value:g}%"
    if alert.value_kind in ("count", "value"):
        return fmt.number(value, alert.value_kind, "", language)  # "below 1", not "below 1 orders"
    return _num(alert, value, language)


def condition(alert: AlertInfo, language: str) -> str:
    """What the rule says, e.g. ``below 1`` / ``低于 1`` (``condition met`` for an unknown condition)."""
    key = f"cond_{alert.condition}"
    template = word(language, key) if key in TEXT["en"] else word(language, "cond_")
    return template.format(*(_limit(alert, v, language) for v in alert.limits), "", "")


def series_text(alert: AlertInfo, language: str) -> str:
    """The series' labels, ``region=east, channel=app``; ``total`` for the total series."""
    labels = _series_labels(alert)
    if not labels:
        return word(language, "total")
    return ", ".join(f"{k}={v}" for k, v in sorted(labels.items()))


def _series_labels(alert: AlertInfo) -> dict[str, str]:
    # The owner is shown as its own fact; everything else identifies the series.
    return {k: v for k, v in alert.labels.items() if not (k == "team" and v == alert.owner)}


def _ordered(n: Notification) -> list[AlertInfo]:
    rank = {"critical": 0, "warning": 1, "info": 2}
    return sorted(
        n.alerts, key=lambda a: (a.status != "firing", rank.get(a.severity, 3), a.starts_at, series_text(a, "en"))
    )


def shown_alerts(n: Notification) -> tuple[AlertInfo, ...]:
    """The alerts rendered in full: firing first (most severe first, then oldest, then by series), capped at
    :data:`MAX_ALERTS`."""
    return tuple(_ordered(n)[:MAX_ALERTS])


def more_line(n: Notification) -> str | None:
    """``"… and N more alert(s)"`` when the group was cut, else ``None``."""
    hidden = len(n.alerts) - MAX_ALERTS
    return word(n.language, "more").format(hidden) if hidden > 0 else None


def _severity(language: str, severity: str) -> str:
    return word(language, severity) if severity in ("info", "warning", "critical") else severity


def _duration(alert: AlertInfo, n: Notification) -> float | None:
    end = alert.ends_at if alert.status == "resolved" else n.at
    return None if end is None else max(0.0, end - alert.starts_at)


def _state_phrase(alert: AlertInfo, n: Notification) -> str:
    """``0 orders, below 1`` (firing) or ``back to normal (12 orders), lasted 20 min`` (resolved)."""
    lang = n.language
    if alert.correction is not None:
        return correction_text(alert, lang, n.timezone)
    if alert.drift_since is not None and alert.summary.startswith("drift:"):
        level = word(lang, "drift_level").format(_num(alert, alert.value, lang),
                                                 fmt.local_time(alert.drift_since, n.timezone, date=False))
        return level + (word(lang, "new_normal") if alert.status == "resolved" else "")
    if alert.status == "resolved":
        out = word(lang, "normal_at").format(_num(alert, alert.value, lang))
        lasted = _duration(alert, n)
        return out + (word(lang, "sep") + word(lang, "lasted").format(fmt.duration(lasted, lang)) if lasted else "")
    custom = alert.summaries.get(lang)
    if custom:
        return custom
    return f"{_num(alert, alert.value, lang)}{word(lang, 'sep')}{condition(alert, lang)}"


def correction_text(alert: AlertInfo, language: str, tz: str = "UTC") -> str:
    """The sentence of a correction notice, e.g. ``revised: the 10:40 UTC window was 412 orders, not 0 orders —
    the 10:41 UTC alert was raised on incomplete data`` (``(alert withdrawn)`` when the correction retracted it)."""
    lang, c = language, alert.correction or {}
    raised = c.get("raised_at")
    sentence = word(lang, "revised").format(
        fmt.local_time(float(c.get("start", alert.window_start)), tz, date=False),
        _num(alert, c.get("now"), lang),
        _num(alert, c.get("was"), lang),
        fmt.local_time(float(raised), tz, date=False) if raised is not None else word(lang, "no_data"),
    )
    return sentence + (word(lang, "retracted") if c.get("retracted") else "")


def source_silent_text(language: str, status: str, source: str, since: float, until: float, kpis: Sequence[str],
                       tz: str = "UTC") -> tuple[str, str, str]:
    """Title, summary and the affected KPIs (joined) of a ``source_silent`` alert (``since``: newest event;
    ``until``: now, or when events resumed), in ``language`` and zone ``tz``.

    >>> source_silent_text("zh", "firing", "orders", 0.0, 600.0, ["支付订单数", "成交总额"], "Asia/Shanghai")
    ('数据源 orders', '自 1970-01-01 08:00 UTC+8 起未收到任何事件（已 10 分钟）', '支付订单数、成交总额')
    """
    lasted = fmt.duration(max(60.0, until - since), language)
    if status == "resolved":
        summary = word(language, "silent_resolved").format(fmt.local_time(until, tz), lasted)
    else:
        summary = word(language, "silent_firing").format(fmt.local_time(since, tz), lasted)
    return word(language, "silent_title").format(source), summary, word(language, "list_sep").join(kpis)


def _silent_facts(alert: AlertInfo, n: Notification) -> list[tuple[str, str]]:
    lang, tz = n.language, n.timezone
    facts = [(word(lang, "silent_source"), alert.kpi),
             (word(lang, "silent_last_event"), fmt.local_time(alert.window_start, tz)),
             (word(lang, "silent_affected"), alert.labels.get("affected", "") or word(lang, "no_data"))]
    if alert.status != "resolved":
        facts.append((word(lang, "silent_meanwhile"), word(lang, "silent_held")))
    facts += [(word(lang, "severity"), _severity(lang, alert.severity)),
              (word(lang, "since"), fmt.local_time(alert.starts_at, tz))]
    if alert.status == "resolved" and alert.ends_at is not None:
        facts.append((word(lang, "resolved_at"), fmt.local_time(alert.ends_at, tz)))
    return facts


def _head_status(n: Notification) -> str:
    key = f"head_{n.kind}" if n.kind != "notify" else f"head_{n.status}"
    return word(n.language, key if key in TEXT["en"] else f"head_{n.status}")


def _group_series(alerts: Sequence[AlertInfo], language: str) -> str:
    """The series of a group in few words: ``region=east、west、合计`` when one label varies, else each in full."""
    labels = [_series_labels(a) for a in alerts]
    named = [lab for lab in labels if lab]
    varying = sorted({k for lab in named for k in lab if len({x.get(k) for x in named}) > 1})
    sep = word(language, "list_sep")
    if len(varying) == 1 and all(set(lab) == set(named[0]) for lab in named):
        key = varying[0]
        items = [lab[key] if lab else word(language, "total") for lab in labels]
        prefix = f"{key}="
    else:
        items, prefix = [series_text(a, language) for a in alerts], ""
    shown = items[:_HEAD_SERIES]
    if len(items) > len(shown):
        shown.append(word(language, "more_series").format(len(items) - len(shown)))
    return prefix + sep.join(shown)


def title(n: Notification) -> str:
    """One-line headline, e.g. ``[FIRING] critical · Paid orders · region=east: 0 orders, below 1``.

    A group of several series of one rule reads ``[FIRING:4] critical · Paid orders: below 1 · region=east,
    west, north, south``; a resolved group ``… back to normal · …``.
    """
    lang = n.language
    # Like alertmanager's [FIRING:n]: a firing group counts its firing alerts only.
    counted = [a for a in _ordered(n) if a.status == "firing"] if n.status == "firing" else _ordered(n)
    if counted and all(a.kind == "source_silent" for a in counted):
        counted = list({a.kpi: a for a in counted}.values())   # one per source, however many teams it feeds
    count = word(lang, "count").format(len(counted)) if len(counted) > 1 else ""
    head = word(lang, "bracket").format(_head_status(n) + count)
    if not n.alerts:
        return f"{head}{n.group_key}"
    shown = shown_alerts(n)
    top = shown[0]
    subject = f"{head}{_severity(lang, top.severity)} · {kpi_title(top, lang)}"
    if top.kind == "source_silent":
        return f"{subject}{word(lang, 'colon')}{top.summary}"
    tail = ""
    if n.kind == "escalation" and n.at is not None:
        tail = word(lang, "sep") + word(lang, "unacked_for").format(fmt.duration(n.at - top.starts_at, lang))
    if len(counted) <= 1:
        return f"{subject} · {series_text(top, lang)}{word(lang, 'colon')}{_state_phrase(top, n)}{tail}"
    what = word(lang, "back_to_normal") if n.status == "resolved" else condition(top, lang)
    return f"{subject}{word(lang, 'colon')}{what} · {_group_series(counted, lang)}{tail}"


def heading(alert: AlertInfo, n: Notification) -> str:
    """One alert's line in a body: ``region=east, channel=app: 0 orders, below 1`` (or the rule's own summary,
    which names its series itself)."""
    if alert.kind == "source_silent":
        return alert.summary
    if alert.status == "firing" and alert.correction is None and alert.summaries.get(n.language):
        return alert.summaries[n.language]
    return f"{series_text(alert, n.language)}{word(n.language, 'colon')}{_state_phrase(alert, n)}"


def _expected(alert: AlertInfo, lang: str) -> str | None:
    if alert.expected is None and (alert.lower is None or alert.upper is None):
        return None
    lo, hi = alert.value_min, alert.value_max
    expected = fmt.clip(alert.expected, lo, hi)
    out = _num(alert, expected, lang) if expected is not None else ""
    if alert.lower is not None and alert.upper is not None:
        # "30 – 55 orders": a unit written after the number is written once, after the upper end
        low = fmt.clip(alert.lower, lo, hi)
        suffixed = alert.value_kind in ("count", "value") or fmt.CURRENCIES.get(alert.unit.upper(), "") is None
        low_text = fmt.number(low, alert.value_kind, "", lang) if suffixed else _num(alert, low, lang)
        band = word(lang, "band").format(low_text, _num(alert, fmt.clip(alert.upper, lo, hi), lang))
        out = f"{out} ({band})".strip() if lang != "zh" else f"{out}（{band}）"
    return out


def _impact(alert: AlertInfo, n: Notification) -> str | None:
    """``≈ −1,240 orders vs expected over 20 min``: the shortfall of the current window times the windows
    since the alert fired, for additive KPIs (counts, money) with an expected value."""
    span = alert.window_end - alert.window_start
    if alert.status != "firing" or alert.value_kind not in ("count", "money") or span <= 0:
        return None
    if alert.value is None or alert.expected is None:
        return None
    expected = fmt.clip(alert.expected, alert.value_min, alert.value_max) or 0.0
    windows = max(1, round((_duration(alert, n) or 0.0) / span))
    delta = (alert.value - expected) * windows
    if round(delta) == 0:
        return None
    lang = n.language
    shown = fmt.signed(delta, alert.value_kind, alert.unit, lang)
    return word(lang, "impact_text").format(shown, fmt.duration(windows * span, lang))


def _window(alert: AlertInfo, tz: str) -> str:
    start = fmt.local_time(alert.window_start, tz)
    end = fmt.local_time(alert.window_end, tz)
    # Same day and zone: print the date and the zone once.
    if start[:10] == end[:10] and start.rsplit(" ", 1)[1] == end.rsplit(" ", 1)[1]:
        return f"{start.rsplit(' ', 1)[0]} – {fmt.local_time(alert.window_end, tz, date=False)}"
    return f"{start} – {end}"


def alert_facts(alert: AlertInfo, n: Notification) -> list[tuple[str, str]]:
    """The label/value pairs shown for one alert, in display order, in ``n``'s language and zone."""
    if alert.kind == "source_silent":
        return _silent_facts(alert, n)
    lang, tz = n.language, n.timezone
    w = TEXT.get(lang, TEXT["en"])
    facts = [(w["series"], series_text(alert, lang)), (w["value"], _num(alert, alert.value, lang))]
    if alert.kind == "threshold" and alert.limits:
        facts.append((w["threshold"], condition(alert, lang)))
    expected = _expected(alert, lang)
    if expected:
        facts.append((w["expected"], expected))
    impact = _impact(alert, n)
    if impact:
        facts.append((w["impact"], impact))
    facts.append((w["window"], _window(alert, tz)))
    since = fmt.local_time(alert.starts_at, tz)
    lasted = _duration(alert, n)
    if lasted is not None and alert.status == "firing":
        since = w["since_text"].format(since, w["for_duration"].format(fmt.duration(lasted, lang)))
    facts.append((w["since"], since))
    if alert.status == "resolved" and alert.ends_at is not None:
        ended = fmt.local_time(alert.ends_at, tz)
        facts.append((w["resolved_at"], w["since_text"].format(ended, w["lasted"].format(fmt.duration(lasted or 0, lang)))))
    facts.append((w["severity"], _severity(lang, alert.severity)))
    if alert.owner:
        facts.append((w["owner"], alert.owner))
    return facts


def links(alert: AlertInfo, language: str, *, actions: bool = True) -> list[tuple[str, str]]:
    """(label, URL) pairs: the board, then ack / silence / true alarm / false alarm / expected for a firing
    alert when configured."""
    out = [(word(language, "dashboard"), alert.dashboard_url)] if alert.dashboard_url else []
    if actions and alert.status == "firing":
        out += [(word(language, _ACTION_WORD.get(k, k)), alert.actions[k]) for k in _ACTIONS if alert.actions.get(k)]
    return out


def color(n: Notification) -> str:
    """A colour name for the group: ``green`` resolved, else ``red``/``orange``/``blue`` by top severity."""
    if n.status == "resolved" or not n.alerts:
        return "green"
    if n.status == "correction":
        return "blue"
    return {"critical": "red", "warning": "orange"}.get(shown_alerts(n)[0].severity, "blue")


def plain_text(n: Notification) -> str:
    """Plain-text body (email alternative part, fallbacks)."""
    lines = [title(n), ""]
    for alert in shown_alerts(n):
        lines.append(f"* {heading(alert, n)}")
        lines += [f"    {k}: {v}" for k, v in alert_facts(alert, n)]
        lines += [f"    {label}: {url}" for label, url in links(alert, n.language)]
        lines.append("")
    lines += _footer(n)
    return "\n".join(lines).rstrip() + "\n"


def _footer(n: Notification) -> list[str]:
    extra = [line for line in (more_line(n),) if line]
    if n.external_url:
        extra.append(f"{word(n.language, 'source')}: {n.external_url}")
    return extra


def markdown(n: Notification, *, newline: str = "\n", escape: Callable[[str], str] = lambda s: s) -> str:
    """Markdown for DingTalk and WeCom: a heading, then per alert a bold line and quoted facts.

    Both vendors support headings, bold, links and ``>`` quotes (WeCom has no lists); DingTalk needs a blank
    line between lines (``newline="\\n\\n"``) or it joins them.
    """
    parts = [f"### {escape(title(n))}"]
    for alert in shown_alerts(n):
        # The blank line ends the previous quote; without it markdown folds the next heading into it.
        parts += ["", f"**{escape(heading(alert, n))}**"]
        parts += [f"> {escape(k)}: {escape(v)}" for k, v in alert_facts(alert, n)]
        found = links(alert, n.language)
        if found:
            parts.append("> " + " | ".join(f"[{label}]({url})" for label, url in found))
    footer = [escape(line) for line in _footer(n)]
    parts += ["", *footer] if footer else []
    return newline.join(parts)


def html_body(n: Notification) -> str:
    """A small self-contained HTML document (inline styles only: mail clients strip ``<style>``)."""
    e = html.escape
    hex_color = {"red": "#d32f2f", "orange": "#f57c00", "blue": "#1976d2", "green": "#388e3c"}[color(n)]
    rows: list[str] = [f'<h2 style="color:{hex_color};font-family:sans-serif">{e(title(n))}</h2>']
    for alert in shown_alerts(n):
        rows.append(f'<h3 style="font-family:sans-serif">{e(heading(alert, n))}</h3>')
        cells = "".join(
            f'<tr><th align="left" style="padding:2px 12px 2px 0">{e(k)}</th><td>{e(v)}</td></tr>'
            for k, v in alert_facts(alert, n)
        )
        rows.append(f'<table style="font-family:sans-serif;border-collapse:collapse">{cells}</table>')
        found = links(alert, n.language)
        if found:
            anchors = " · ".join(f'<a href="{e(url, quote=True)}">{e(label)}</a>' for label, url in found)
            rows.append(f"<p>{anchors}</p>")
    rows += [f"<p>{e(line)}</p>" for line in _footer(n)]
    lang = "zh-CN" if n.language == "zh" else "en"
    return f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8"></head><body>{"".join(rows)}</body></html>'
