"""The review digest as people read it: a text table (``kpimon review``), markdown (IM) and HTML (e-mail), in
English or Chinese. Pure: it formats a :class:`~alerting.review.Review`, nothing else.

All three renderings are built from the same :func:`sections` (heading, column names, rows of cells), so the
figures in a mail, a chat message and the terminal are the same strings. Words come from :data:`WORDS` only (one
table per language, same keys, tested), names and numbers from the review. Tuning reasons are said in the
digest's language from the proposal's ``basis``.

:func:`period_due` says which period a daily or weekly digest covers at a given moment (the last complete day,
or Monday-to-Monday week, in the catalog's time zone), and :func:`digest_id` names it (the idempotency key).

Examples
--------
>>> from alerting.review import review
>>> r = review("sales", 0.0, 7 * 86400.0, [], [], kpis=[])
>>> print(render_text(r, "en", "UTC").splitlines()[0])
Review of sales: 1970-01-01 00:00 UTC – 1970-01-08 00:00 UTC
>>> sorted(set(WORDS["en"]) ^ set(WORDS["zh"]))
[]
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from alerting.notifiers import fmt
from alerting.notifiers.base import DigestMessage
from alerting.review import Review, Spread, series_text
from alerting.tuning import Proposal

__all__ = ["WORDS", "DigestMessage", "Section", "digest_id", "period_due", "reason", "render_html",
           "render_markdown", "render_text", "sections", "title", "word"]

MAX_INCIDENTS = 20

WORDS: dict[str, dict[str, str]] = {
    "en": {
        "title": "Review of {0}: {1} – {2}",
        "summary": "Summary",
        "alerts": "Alerts", "per_week": "{0} ({1} per week)", "budget": "Budget", "over": "over budget by {0}",
        "within": "within budget", "no_budget": "no budget agreed",
        "precision": "Precision", "feedback": "Feedback", "true_alarm": "true", "false_alarm": "false",
        "expected": "expected", "ack": "Time to acknowledge", "resolve": "Time to resolve",
        "spread": "median {0}, p90 {1} ({2} of {3})", "none": "–",
        "attainment": "Attainment vs target", "kpi": "KPI", "actual": "Actual", "target": "Target",
        "ratio": "Attained",
        "rules": "Alerts per rule (noisiest first)", "rule": "Rule", "tfe": "True / false / expected",
        "ack_median": "Ack (median)", "resolve_median": "Resolve (median)",
        "series": "Noisiest series", "series_col": "Series", "false_col": "False alarms",
        "changes": "Threshold changes", "when": "When", "who": "Who", "change": "Change",
        "proposals": "Tuning proposals", "why": "Why", "backtest": "Backtest",
        "backtest_fmt": "{0} → {1} alerts, {2} → {3} alert-minutes over the period",
        "incidents": "Alerts of the period", "started": "Started", "value": "Value", "acked": "Acked after",
        "resolved": "Resolved after", "verdict": "Feedback", "open": "open", "more": "… and {0} more",
        "nothing": "nothing",
        "why_head": "{0} alerts, {1} marked false; team {2} over its budget of {3}: ",
        "why_false_alarms": "{0}, the most extreme value a false alarm fired on ({1} true alarm(s) still fire)",
        "why_median": "{0}, the median of the values it fired on (no false alarm feedback)",
        "why_sensitivity": "detector {0} (a catalog change)",
        "why_step": "{0} (one step less sensitive)",
        "chart": "{0}: values with the expected band; red: alerts",
    },
    "zh": {
        "title": "{0} 复盘：{1} – {2}",
        "summary": "概览",
        "alerts": "告警", "per_week": "{0}（每周 {1}）", "budget": "预算", "over": "超出预算 {0}",
        "within": "未超预算", "no_budget": "未约定预算",
        "precision": "准确率", "feedback": "反馈", "true_alarm": "真告警", "false_alarm": "误报",
        "expected": "预期内", "ack": "确认耗时", "resolve": "恢复耗时",
        "spread": "中位数 {0}，p90 {1}（{3} 条中 {2} 条）", "none": "–",
        "attainment": "目标达成", "kpi": "指标", "actual": "实际", "target": "目标",
        "ratio": "达成率",
        "rules": "各规则告警数（最多者在前）", "rule": "规则", "tfe": "真 / 误 / 预期内",
        "ack_median": "确认（中位数）", "resolve_median": "恢复（中位数）",
        "series": "告警最多的序列", "series_col": "序列", "false_col": "误报",
        "changes": "阈值变更", "when": "时间", "who": "操作人", "change": "变更",
        "proposals": "调优建议", "why": "原因", "backtest": "回测",
        "backtest_fmt": "本期告警 {0} → {1} 次，告警时长 {2} → {3} 分钟",
        "incidents": "本期告警", "started": "开始", "value": "数值", "acked": "确认耗时",
        "resolved": "恢复耗时", "verdict": "反馈", "open": "未恢复", "more": "… 另有 {0} 条",
        "nothing": "无",
        "why_head": "{0} 条告警，{1} 条误报；团队 {2} 超出预算 {3}：",
        "why_false_alarms": "{0}，即误报触发时的最极端值（{1} 条真告警仍会触发）",
        "why_median": "{0}，即触发值的中位数（无误报反馈）",
        "why_sensitivity": "检测器 {0}（需修改指标目录）",
        "why_step": "{0}（降低一档灵敏度）",
        "chart": "{0}：数值与预期区间；红色：告警",
    },
}


def word(language: str, key: str) -> str:
    """A digest word in ``language`` (English for a language without a table)."""
    return WORDS.get(language, WORDS["en"])[key]


@dataclass(frozen=True, slots=True)
class Section:
    """One part of the digest: a heading and a table (``rows`` of cells under ``columns``)."""

    heading: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    note: str = ""


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.0f}%"


def _num(value: float | None) -> str:
    return "–" if value is None else f"{value:,.6g}"


def _dur(seconds: float | None, lang: str) -> str:
    return word(lang, "none") if seconds is None else fmt.duration(seconds, lang)


def _spread(s: Spread, lang: str) -> str:
    return word(lang, "spread").format(_dur(s.median_s, lang), _dur(s.p90_s, lang), s.count, s.count + s.missing)


def _summary(r: Review, lang: str) -> Section:
    w = WORDS.get(lang, WORDS["en"])
    if r.budget is None:
        budget = w["no_budget"]
    else:
        state = w["over"].format(f"{r.budget.excess:g}") if r.budget.over else w["within"]
        budget = f"{r.budget.budget} ({r.budget.allowed:g}): {state}"
    fb = " / ".join(f"{w[v]} {r.feedback.get(v, 0)}" for v in ("true_alarm", "false_alarm", "expected"))
    rows = ((w["alerts"], w["per_week"].format(r.alerts, f"{r.per_week:.3g}")), (w["budget"], budget),
            (w["precision"], _pct(r.precision)), (w["feedback"], fb),
            (w["ack"], _spread(r.ack, lang)), (w["resolve"], _spread(r.resolve, lang)))
    return Section(w["summary"], ("", ""), rows)


def _change_text(change: Mapping[str, object]) -> str:
    return ", ".join(f"{k} = {v}" for k, v in change.items())


def _backtest_text(figures: Mapping[str, Any], lang: str) -> str:
    """A proposal's backtest, current → proposed (``alerting.admin.backtest_summary``'s shape)."""
    now, then = figures.get("current"), figures.get("proposed")
    if not isinstance(now, Mapping) or not isinstance(then, Mapping):
        return _change_text(figures)
    return word(lang, "backtest_fmt").format(now.get("fired"), then.get("fired"), _num(now.get("alert_minutes")),
                                             _num(then.get("alert_minutes")))


def reason(p: Proposal, lang: str) -> str:
    """The proposal's reason in ``lang`` (from its basis; the English ``reason`` when there is none)."""
    b = p.basis
    if not b:
        return p.reason
    what = f"{b['field']} {b['old']} → {b['new']}"
    head = word(lang, "why_head").format(b["alerts"], b["false_alarms"], p.team, b["budget"])
    kind = str(b["kind"])
    if kind == "false_alarms":
        return head + word(lang, "why_false_alarms").format(what, b.get("kept", 0))
    return head + word(lang, f"why_{kind}" if kind in ("median", "sensitivity") else "why_step").format(what)


def _incidents(r: Review, lang: str, tz: str) -> Section:
    w = WORDS.get(lang, WORDS["en"])
    rows = []
    for i in r.incidents[-MAX_INCIDENTS:][::-1]:  # the newest first
        acked = _dur(None if i.acked_at is None else i.acked_at - i.starts_at, lang)
        resolved = w["open"] if i.resolved_at is None else _dur(i.resolved_at - i.starts_at, lang)
        verdict = r.verdicts.get(i.id)
        series = series_text(i.labels if i.series is None else i.series)
        rows.append((fmt.local_time(i.starts_at, tz), f"{i.kpi}/{i.rule}", series, _num(i.value),
                     acked, resolved, w[verdict] if verdict else w["none"]))
    hidden = len(r.incidents) - len(rows)
    columns = (w["started"], w["rule"], w["series_col"], w["value"], w["acked"], w["resolved"], w["verdict"])
    return Section(w["incidents"], columns, tuple(rows), w["more"].format(hidden) if hidden > 0 else "")


def sections(r: Review, lang: str, tz: str, titles: Mapping[str, str] | None = None) -> list[Section]:
    """The digest's parts, in order; ``titles``: KPI name -> its title in ``lang``."""
    w = WORDS.get(lang, WORDS["en"])
    titles = titles or {}
    out = [_summary(r, lang)]
    out.append(Section(w["attainment"], (w["kpi"], w["actual"], w["target"], w["ratio"]), tuple(
        (titles.get(a.kpi, a.kpi), _num(a.actual), _num(a.target) if a.per == "period" else f"{_num(a.target)}/{a.per}",
         _pct(a.ratio)) for a in r.attainment)))
    out.append(Section(w["rules"], (w["rule"], w["alerts"], w["tfe"], w["precision"], w["ack_median"],
                                    w["resolve_median"]), tuple(
        (f"{x.kpi}/{x.rule}", str(x.alerts), f"{x.true_alarms} / {x.false_alarms} / {x.expected}",
         _pct(x.precision), _dur(x.ack.median_s if x.ack else None, lang),
         _dur(x.resolve.median_s if x.resolve else None, lang)) for x in r.rules)))
    out.append(Section(w["series"], (w["kpi"], w["series_col"], w["alerts"], w["false_col"]), tuple(
        (s.kpi, s.series, str(s.alerts), str(s.false_alarms)) for s in r.noisiest_series)))
    out.append(Section(w["changes"], (w["when"], w["who"], w["rule"], w["change"]), tuple(
        (fmt.local_time(float(str(c["at"])), tz), str(c.get("who", "")), f"{c.get('kpi')}/{c.get('rule')}",
         f"{c.get('field', '')} {c.get('old')} → {c.get('new')}") for c in r.changes)))
    out.append(Section(w["proposals"], (w["rule"], w["change"], w["why"], w["backtest"]), tuple(
        (f"{p.kpi}/{p.rule}", _change_text(p.change), reason(p, lang),
         _backtest_text(p.backtest, lang) if p.backtest else w["none"]) for p in r.proposals)))
    out.append(_incidents(r, lang, tz))
    return out


def title(r: Review, lang: str, tz: str) -> str:
    """The digest's headline (the e-mail subject)."""
    return word(lang, "title").format(r.team, fmt.local_time(r.since, tz), fmt.local_time(r.until, tz))


def render_text(r: Review, lang: str, tz: str, titles: Mapping[str, str] | None = None) -> str:
    """A plain-text rendering with aligned columns (the terminal, the e-mail's text part)."""
    lines = [title(r, lang, tz)]
    for s in sections(r, lang, tz, titles):
        lines += ["", s.heading]
        if not s.rows:
            lines.append("  " + word(lang, "nothing"))
            continue
        table = ([s.columns] if any(s.columns) else []) + list(s.rows)
        widths = [max(_width(row[i]) for row in table) for i in range(len(s.columns))]
        lines += ["  " + "  ".join(c + " " * (wd - _width(c)) for c, wd in zip(row, widths, strict=True)).rstrip()
                  for row in table]
        if s.note:
            lines.append("  " + s.note)
    return "\n".join(lines) + "\n"


def _width(text: str) -> int:
    # East Asian characters take two columns in a terminal
    return sum(2 if ord(ch) >= 0x2E80 else 1 for ch in text)


def render_markdown(r: Review, lang: str, tz: str, titles: Mapping[str, str] | None = None) -> str:
    """Markdown for IM robots: headings and bullet lists (DingTalk and WeCom markdown have no tables)."""
    lines = [f"### {title(r, lang, tz)}"]
    for s in sections(r, lang, tz, titles):
        lines += ["", f"#### {s.heading}"]
        if not s.rows:
            lines.append(f"- {word(lang, 'nothing')}")
        for row in s.rows:
            if any(s.columns):
                lines.append("- " + "; ".join(f"{c}: {v}" if c else v for c, v in zip(s.columns, row, strict=True)))
            else:
                lines.append(f"- **{row[0]}**: {row[1]}")
        if s.note:
            lines.append(f"- {s.note}")
    return "\n".join(lines) + "\n"


def render_html(r: Review, lang: str, tz: str, titles: Mapping[str, str] | None = None,
                charts: Sequence[tuple[str, str]] = ()) -> str:
    """An HTML body; ``charts``: (caption, content id) of inline PNG attachments, shown after the summary."""
    e = html.escape
    parts = [f'<html><head><meta charset="utf-8"></head><body style="font-family:sans-serif">'
             f"<h2>{e(title(r, lang, tz))}</h2>"]
    for n, s in enumerate(sections(r, lang, tz, titles)):
        parts.append(f"<h3>{e(s.heading)}</h3>")
        if not s.rows:
            parts.append(f"<p>{e(word(lang, 'nothing'))}</p>")
        else:
            head = "".join(f"<th align=left>{e(c)}</th>" for c in s.columns) if any(s.columns) else ""
            body = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in s.rows)
            parts.append(f'<table border="1" cellpadding="4" cellspacing="0">{f"<tr>{head}</tr>" if head else ""}'
                         f"{body}</table>")
        if s.note:
            parts.append(f"<p>{e(s.note)}</p>")
        if n == 0:
            parts += [f'<p><img src="cid:{e(cid)}" alt="{e(caption)}"><br>{e(caption)}</p>' for caption, cid in charts]
    parts.append("</body></html>")
    return "".join(parts)


def period_due(every: str, now: float, tz: str) -> tuple[float, float]:
    """The last complete period of a ``daily`` or ``weekly`` digest at ``now``, in zone ``tz``: yesterday, or
    the week from the Monday before last to last Monday.

    >>> period_due("daily", 1767657600.0 + 3600, "UTC")            # 2026-01-06 01:00 -> 01-05
    (1767571200.0, 1767657600.0)
    >>> period_due("weekly", 1767657600.0 + 3600, "UTC")           # a Tuesday -> the week of Mon 12-29
    (1766966400.0, 1767571200.0)
    """
    zone = ZoneInfo(tz)
    today = datetime.fromtimestamp(now, zone).replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)
    if every == "daily":
        start, end = today - timedelta(days=1), today
    else:
        end = today - timedelta(days=today.weekday())
        start = end - timedelta(days=7)
    return start.replace(tzinfo=zone).timestamp(), end.replace(tzinfo=zone).timestamp()


def digest_id(team: str, since: float, channel: str) -> str:
    """The idempotency key of one digest on one channel.

    >>> digest_id("sales", 1767571200.0, "mail")
    'digest|sales|1767571200|mail'
    """
    return f"digest|{team}|{since:.0f}|{channel}"
