"""Every word a notification shows, in English and Chinese: one table per language, nothing built by hand.

A message is assembled from these entries only (plus names and numbers), so a zh message holds no English
word and an en message no Chinese one except a KPI title that has no English variant. A new notification
kind (``correction``, ``source_silent`` ...) is a new ``head_<kind>`` entry (and ``state_<kind>`` for its
status word) in both tables; a new condition a ``cond_<name>`` entry.

Examples
--------
>>> word("zh", "cond_below").format("1")
'低于 1'
>>> word("en", "head_escalation")
'ESCALATED'
>>> sorted(set(TEXT["en"]) ^ set(TEXT["zh"]))
[]
"""

from __future__ import annotations

__all__ = ["LANGUAGES", "TEXT", "word"]

LANGUAGES = ("en", "zh")

TEXT: dict[str, dict[str, str]] = {
    "en": {
        # headline status words, by notification kind and status
        "head_firing": "FIRING",
        "head_resolved": "RESOLVED",
        "head_escalation": "ESCALATED",
        "head_correction": "CORRECTION",
        "revised": "revised: the {0} window was {1}, not {2} — the {3} alert was raised on incomplete data",
        "retracted": " (alert withdrawn)",
        "drift_level": "drift: new level {0} since {1}",
        "new_normal": " (the new normal)",
        "silent_title": "Data source {0}",
        "silent_firing": "no events since {0} ({1})",
        "silent_resolved": "events again since {0} (silent for {1})",
        "silent_source": "Data source",
        "silent_last_event": "Last event",
        "silent_affected": "Affected KPIs",
        "silent_meanwhile": "Meanwhile",
        "silent_held": "Their alerts are held until events arrive again; then fresh data judges them.",
        "bracket": "[{0}] ",
        "count": ":{0}",
        "sep": ", ",
        "colon": ": ",
        "list_sep": ", ",
        "info": "info",
        "warning": "warning",
        "critical": "critical",
        # conditions ({0}, {1}: limits, already formatted)
        "cond_below": "below {0}",
        "cond_above": "above {0}",
        "cond_outside": "outside {0} – {1}",
        "cond_drop_previous": "down more than {0} vs the previous window",
        "cond_drop_last_week": "down more than {0} vs the same window last week",
        "cond_rise_previous": "up more than {0} vs the previous window",
        "cond_rise_last_week": "up more than {0} vs the same window last week",
        "cond_anomaly": "outside the expected range",
        "cond_drift": "at a new level (drift)",
        "cond_absent": "no data",
        "cond_": "condition met",
        "back_to_normal": "back to normal",
        "normal_at": "back to normal ({0})",
        "lasted": "lasted {0}",
        "for_duration": "for {0}",
        "unacked_for": "unacknowledged for {0}",
        "series_count": "{0} series",
        "total": "total",
        "more_series": "+{0} more",
        # facts
        "series": "Series",
        "value": "Value",
        "threshold": "Threshold",
        "expected": "Expected",
        "band": "normal range {0} – {1}",
        "impact": "Impact",
        "impact_text": "≈ {0} vs expected over {1}",
        "window": "Window",
        "since": "Since",
        "since_text": "{0} ({1})",
        "resolved_at": "Resolved at",
        "severity": "Severity",
        "owner": "Owner",
        "no_data": "no data",
        "dashboard": "Open dashboard",
        "ack": "Acknowledge",
        "silence": "Silence 2 h",
        "true_alarm": "True alarm",
        "false_alarm": "False alarm",
        "expected_alarm": "Expected deviation",  # the feedback link ("expected" is the expected value)
        "more": "… and {0} more alert(s)",
        "source": "Alert source",
        "mention": "Please take a look.",
    },
    "zh": {
        "head_firing": "告警中",
        "head_resolved": "已恢复",
        "head_escalation": "升级",
        "head_correction": "更正",
        "revised": "更正：{0} 窗口的值为 {1}，而不是 {2} —— {3} 的告警基于不完整的数据",
        "retracted": "（告警已撤销）",
        "drift_level": "漂移：自 {1} 起新水平为 {0}",
        "new_normal": "（新常态）",
        "silent_title": "数据源 {0}",
        "silent_firing": "自 {0} 起未收到任何事件（已 {1}）",
        "silent_resolved": "自 {0} 起重新收到事件（中断 {1}）",
        "silent_source": "数据源",
        "silent_last_event": "最后事件",
        "silent_affected": "受影响指标",
        "silent_meanwhile": "处理方式",
        "silent_held": "这些指标的告警暂缓发送，数据恢复后按新数据重新判断。",
        "bracket": "【{0}】",
        "count": ":{0}",
        "sep": "，",
        "colon": "：",
        "list_sep": "、",
        "info": "提示",
        "warning": "警告",
        "critical": "严重",
        "cond_below": "低于 {0}",
        "cond_above": "高于 {0}",
        "cond_outside": "超出 {0} – {1}",
        "cond_drop_previous": "较上一窗口下降超过 {0}",
        "cond_drop_last_week": "较上周同期下降超过 {0}",
        "cond_rise_previous": "较上一窗口上升超过 {0}",
        "cond_rise_last_week": "较上周同期上升超过 {0}",
        "cond_anomaly": "偏离预期范围",
        "cond_drift": "出现水平变化（新常态）",
        "cond_absent": "无数据",
        "cond_": "满足告警条件",
        "back_to_normal": "已恢复正常",
        "normal_at": "已恢复正常（{0}）",
        "lasted": "持续 {0}",
        "for_duration": "已持续 {0}",
        "unacked_for": "{0}未确认",
        "series_count": "{0} 个序列",
        "total": "合计",
        "more_series": "另 {0} 个",
        "series": "序列",
        "value": "当前值",
        "threshold": "阈值",
        "expected": "预期值",
        "band": "正常区间 {0} – {1}",
        "impact": "影响",
        "impact_text": "{1}内较预期约 {0}",
        "window": "统计窗口",
        "since": "开始时间",
        "since_text": "{0}（{1}）",
        "resolved_at": "恢复时间",
        "severity": "级别",
        "owner": "负责人",
        "no_data": "无数据",
        "dashboard": "查看看板",
        "ack": "确认",
        "silence": "静默 2 小时",
        "true_alarm": "有效告警",
        "false_alarm": "误报",
        "expected_alarm": "符合预期",
        "more": "…… 另有 {0} 条告警",
        "source": "告警来源",
        "mention": "请相关同事关注处理。",
    },
}


def word(language: str, key: str) -> str:
    """The entry ``key`` in ``language`` (English for an unknown language)."""
    return TEXT.get(language, TEXT["en"])[key]
