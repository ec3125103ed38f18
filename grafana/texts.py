"""Board and rule texts in the catalog's ``defaults.language`` (English fallback), and unit mapping.

Add a language by adding a column to :data:`TEXTS`; a missing entry falls back to English.

>>> text("zh", "value")
'实际值'
>>> text("fr", "value")
'value'
>>> grafana_unit("ratio"), grafana_unit("orders")
('percentunit', 'suffix: orders')
"""

from __future__ import annotations

__all__ = ["TEXTS", "grafana_unit", "text"]

TEXTS: dict[str, dict[str, str]] = {
    "overview": {"en": "KPI overview", "zh": "KPI 总览"},
    "value": {"en": "value", "zh": "实际值"},
    "expected": {"en": "expected", "zh": "预期值"},
    "lower": {"en": "lower bound", "zh": "下限"},
    "upper": {"en": "upper bound", "zh": "上限"},
    "current": {"en": "Current value", "zh": "当前值"},
    "value_band": {"en": "Value and expected band", "zh": "实际值与预期区间"},
    "attainment": {"en": "Target attainment", "zh": "目标达成率"},
    "score": {"en": "Anomaly score", "zh": "异常分数"},
    "alerts": {"en": "Alerts firing / pending", "zh": "告警（触发 / 待定）"},
    "per_window": {"en": "this window", "zh": "本窗口"},
    "per_hour": {"en": "this hour", "zh": "本小时"},
    "per_day": {"en": "today", "zh": "今日"},
    "per_week": {"en": "this week", "zh": "本周"},
    "per_month": {"en": "this month", "zh": "本月"},
    "freshness": {"en": "Data age", "zh": "数据延迟"},
    "by": {"en": "By {dim}", "zh": "按 {dim}"},
    "annotations": {"en": "kpimon alerts and drift", "zh": "kpimon 告警与漂移"},
    "operations": {"en": "Pipeline", "zh": "处理管道"},
    "events": {"en": "Events per second", "zh": "每秒事件数"},
    "dead_letters": {"en": "Dead letters per second", "zh": "每秒死信数"},
    "all": {"en": "All (total)", "zh": "全部（合计）"},
    "dashboards": {"en": "KPI boards", "zh": "KPI 看板"},
    "summary_above": {"en": "{title} is above {limit}", "zh": "{title} 高于 {limit}"},
    "summary_below": {"en": "{title} is below {limit}", "zh": "{title} 低于 {limit}"},
    "summary_outside": {"en": "{title} is outside [{lo}, {hi}]", "zh": "{title} 超出区间 [{lo}, {hi}]"},
    "description": {"en": "{series}: current value {value}", "zh": "{series}：当前值 {value}"},
    "total": {"en": "total", "zh": "合计"},
}

_UNITS = {
    "ratio": "percentunit", "percent": "percent", "%": "percent",
    "s": "s", "seconds": "s", "ms": "ms", "milliseconds": "ms", "bytes": "bytes",
    "CNY": "currencyCNY", "RMB": "currencyCNY", "USD": "currencyUSD", "EUR": "currencyEUR",
    "GBP": "currencyGBP", "JPY": "currencyJPY",
}


def text(language: str, key: str) -> str:
    """The text for ``key`` in ``language``, else English."""
    entry = TEXTS[key]
    return entry.get(language) or entry["en"]


def grafana_unit(unit: str) -> str:
    """Grafana's unit id for a catalog unit; unknown units become a custom suffix (``suffix: orders``)."""
    if not unit:
        return "short"
    return _UNITS.get(unit, f"suffix: {unit}")
