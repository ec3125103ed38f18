"""The notifications the golden files are made from: real catalog-shaped config, real ``alert_info``.

Each case is one notification as the pipeline builds it (rule, KPI kind, labels, times in Asia/Shanghai, signed
action links, a board link); :data:`PAYLOADS` renders it for every channel. A new kind (``correction``,
``source_silent``) is one more entry in :data:`CASES` once its template entries exist.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from alerting.actions import ActionLinks
from alerting.config import AlertingConfig, KpiMeta, build_alerting_config
from alerting.lifecycle import AlertState, fingerprint
from alerting.notifiers.base import Notification
from alerting.notifiers.dingtalk import dingtalk_payload
from alerting.notifiers.email import build_message
from alerting.notifiers.feishu import feishu_card
from alerting.notifiers.slack import slack_payload
from alerting.notifiers.teams import teams_payload
from alerting.notifiers.webhook import alertmanager_payload
from alerting.notifiers.wecom import wecom_payload
from alerting.pipeline import alert_info
from catalog.channels import EmailSpec

T0 = 1_764_324_000.0  # 2025-11-28 10:00 UTC = 18:00 in Asia/Shanghai
TZ = "Asia/Shanghai"
BOARD = "https://grafana.example/d/kpimon-{kpi}?viewPanel=1&var-region={region}"

KPIS = {
    "paid_orders": KpiMeta(name="paid_orders", title={"en": "Paid orders", "zh": "支付订单数"}, unit="orders",
                           owner="payments", dashboard_url=BOARD, kind="count", min_value=0.0),
    "conversion_rate": KpiMeta(name="conversion_rate", title={"en": "Conversion rate", "zh": "转化率"},
                               unit="ratio", owner="growth", dashboard_url=BOARD, kind="ratio", min_value=0.0,
                               max_value=1.0),
    "gmv": KpiMeta(name="gmv", title={"en": "Gross merchandise value", "zh": "成交总额"}, unit="CNY",
                   owner="sales", dashboard_url=BOARD, kind="money", min_value=0.0),
    "tickets_open": KpiMeta(name="tickets_open", title={"zh": "未结工单数"}, unit="tickets", owner="service"),
}  # fmt: skip

RULES: dict[str, list[dict[str, Any]]] = {
    "paid_orders": [
        {"name": "payments_stopped", "type": "threshold", "below": 1, "severity": "critical",
         "summary": {"en": "paid orders {value} in {region}", "zh": "{region} 支付订单 {value}"}},
        {"name": "unusual", "type": "anomaly", "severity": "warning"},
    ],
    "conversion_rate": [{"name": "conversion_low", "type": "threshold", "below": 0.02, "severity": "warning"}],
    "gmv": [{"name": "gmv_low", "type": "threshold", "below": 50000, "severity": "critical"}],
    "tickets_open": [{"name": "tickets_high", "type": "threshold", "above": 100, "severity": "info"}],
}  # fmt: skip

#: KPI titles that exist in one language only (an en message may show them in Chinese)
ONE_LANGUAGE_TITLES = ("未结工单数",)


def config() -> AlertingConfig:
    return build_alerting_config(
        RULES, [{"channels": ["ops"]}], {"ops": {"type": "webhook", "url": "http://localhost:9/hook"}}, KPIS,
        timezone=TZ, actions=ActionLinks("https://kpimon.example", "golden-secret-0123456789abcdef"),
    )  # fmt: skip


def _state(kpi: str, rule: str, series: dict[str, str], **fields: Any) -> AlertState:
    labels = {**series, "alertname": rule, "kpi": kpi, "severity": fields.pop("severity", "critical"),
              "team": KPIS[kpi].owner}  # fmt: skip
    base = AlertState(fingerprint(kpi, rule, series), kpi, rule, series, labels, labels["severity"],
                      state="firing", starts_at=T0 + 120, window_start=T0 + 60, window_end=T0 + 120)  # fmt: skip
    return replace(base, **fields)


def _note(states: list[tuple[AlertState, str]], language: str, *, kind: str = "notify", at: float,
          thread: str | None = None) -> Notification:  # fmt: skip
    cfg = config()
    infos = tuple(alert_info(s, status, cfg, language, at) for s, status in states)
    status = "firing" if any(st == "firing" for _, st in states) else "resolved"
    return Notification(id=f"golden-{kind}-{len(states)}-{status}", group_key="route0:golden", receiver="ops",
                        status=status, alerts=infos, language=language, kind=kind, at=at, timezone=TZ,
                        thread=thread)  # fmt: skip


def firing(language: str) -> Notification:
    """An anomaly on one series during an outage: value 0, expected ~37, a band whose raw lower end is < 0."""
    s = _state("paid_orders", "unusual", {"region": "east", "channel": "app"}, severity="warning", value=0.0,
               expected=37.3168, lower=-12.42, upper=65.1737, summary="anomaly: 0, expected 37.3168")  # fmt: skip
    return _note([(s, "firing")], language, at=T0 + 120 + 1200)


def resolved(language: str) -> Notification:
    """A ratio threshold back to normal, threaded under its firing e-mail."""
    s = _state("conversion_rate", "conversion_low", {"region": "east"}, severity="warning", state="resolved",
               value=0.0307692, expected=0.0394506, lower=0.00630698, upper=0.0643444, ends_at=T0 + 120 + 900,
               summary="0.0307692 is within limits")  # fmt: skip
    return _note([(s, "resolved")], language, at=T0 + 120 + 900, thread="golden-notify-1-firing")


def grouped(language: str) -> Notification:
    """A stopped feed: one rule on every region and the total, one message."""
    series = [{"region": r} for r in ("east", "west", "north", "south")] + [{}]
    states = [(_state("paid_orders", "payments_stopped", s, value=0.0, expected=36.2 if s else 144.8,
                      lower=4.0 if s else 90.3, upper=70.1 if s else 200.4), "firing") for s in series]  # fmt: skip
    return _note(states, language, at=T0 + 120 + 240)


def escalation(language: str) -> Notification:
    """Money below its threshold, unacknowledged for 30 min."""
    s = _state("gmv", "gmv_low", {"region": "north"}, value=1234.5, expected=56789.01, lower=30000.4,
               upper=81234.9)  # fmt: skip
    return _note([(s, "firing")], language, kind="escalation", at=T0 + 120 + 1800, thread="golden-notify-1-firing")


def untitled(language: str) -> Notification:
    """A KPI whose title exists in Chinese only, on the total series, without a board link."""
    s = _state("tickets_open", "tickets_high", {}, severity="info", value=123.0)
    return _note([(s, "firing")], language, at=T0 + 120 + 60)


def correction(language: str) -> Notification:
    """A late revision: the window a stopped-feed alert was raised on was 412, not 0; the alert is withdrawn."""
    fix = {"seq": 1, "start": T0 + 60, "end": T0 + 120, "was": 0.0, "now": 412.0, "raised_at": T0 + 120,
           "retracted": True}
    s = _state("paid_orders", "payments_stopped", {"region": "east"}, state="resolved", value=412.0,
               ends_at=T0 + 300, correction=fix)  # fmt: skip
    cfg = config()
    info = alert_info(s, "resolved", cfg, language, T0 + 300, correction=True)
    return Notification(id="golden-correction-1", group_key="route0:golden", receiver="ops", status="correction",
                        alerts=(info,), language=language, kind="correction", at=T0 + 300, timezone=TZ,
                        thread="golden-notify-1-firing")  # fmt: skip


def source_silent(language: str) -> Notification:
    """A stopped feed told once for its source: since when, for how long, which KPIs it feeds."""
    series = {"source": "payments", "team": "shop"}
    labels = {"alertname": "source_silent", "source": "payments", "team": "shop", "severity": "critical",
              "kpis": "paid_orders,gmv"}  # fmt: skip
    s = AlertState(fingerprint("payments", "source_silent", series), "payments", "source_silent", series, labels,
                   "critical", state="firing", starts_at=T0 + 600, window_start=T0, window_end=T0 + 600,
                   summary="no events from payments")  # fmt: skip
    return _note([(s, "firing")], language, at=T0 + 600)


CASES: dict[str, Callable[[str], Notification]] = {
    "firing": firing, "resolved": resolved, "grouped": grouped, "escalation": escalation, "untitled": untitled,
    "correction": correction, "source_silent": source_silent,
}  # fmt: skip


def email_payload(n: Notification) -> dict[str, Any]:
    spec = EmailSpec.model_validate({"host": "mail.example", "from": "kpimon@shop.example", "to": ["ops@shop.example"]})
    msg = build_message(n, spec)
    headers = {k: str(msg[k]) for k in ("Subject", "Message-ID", "In-Reply-To", "References") if msg[k]}
    plain, html = (part.get_content() for part in msg.iter_parts())
    return {"headers": headers, "plain": plain, "html": html}


PAYLOADS: dict[str, Callable[[Notification], Any]] = {
    "email": email_payload,
    "slack": slack_payload,
    "teams": teams_payload,
    "dingtalk": lambda n: dingtalk_payload(n, []),
    "feishu": lambda n: {"msg_type": "interactive", "card": feishu_card(n)},
    "wecom": wecom_payload,
    "webhook": alertmanager_payload,
}
