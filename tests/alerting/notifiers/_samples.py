"""Sample alerts and specs shared by the notifier tests."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from alerting.notifiers.base import AlertInfo, Notification
from catalog.channels import (
    ChannelSpec,
    DingTalkSpec,
    FeishuSpec,
    SlackSpec,
    TeamsSpec,
    WebhookSpec,
    WeComSpec,
)
from tests.fixtures.im import IMServer

T0 = 1_764_324_000.0  # 2025-11-28 10:00:00 UTC


def alert(**overrides: Any) -> AlertInfo:
    base = AlertInfo(
        rule="paid_orders_low",
        kpi="paid_orders",
        kpi_title="支付订单数",
        severity="critical",
        status="firing",
        labels={"region": "east", "channel": "app"},
        value=9.0,
        expected=42.0,
        lower=30.0,
        upper=55.0,
        unit="orders",
        summary="paid_orders below 10 for 2m",
        window_start=T0,
        window_end=T0 + 60,
        starts_at=T0 + 120,
        ends_at=None,
        fingerprint="f00dfeed",
        dashboard_url="http://grafana.local/d/kpi-paid-orders?var-region=east",
        kind="threshold",
        condition="below",
        limits=(10.0,),
        value_kind="count",
        value_min=0.0,
        owner="payments",
        kpi_titles={"en": "Paid orders", "zh": "支付订单数"},
    )
    return replace(base, **overrides)


def notification(*alerts: AlertInfo, language: str = "en", **overrides: Any) -> Notification:
    items = alerts or (alert(),)
    status = "resolved" if all(a.status == "resolved" for a in items) else "firing"
    base = Notification(
        id="n-0001",
        group_key='{}:{alertname="paid_orders_low"}',
        receiver="ops-dingtalk",
        status=status,
        alerts=tuple(items),
        language=language,
        external_url="http://kpimon.local",
    )
    return replace(base, **overrides)


def spec_for(server: IMServer, **overrides: Any) -> ChannelSpec:
    """The channel spec pointing at a fake vendor server, with its secret when it has one."""
    url = overrides.pop("url", server.url)
    common: dict[str, Any] = {"url": url, "timeout_seconds": 2.0, **overrides}
    if server.vendor == "dingtalk":
        return DingTalkSpec(**{"secret": server.secret, **common})
    if server.vendor == "feishu":
        return FeishuSpec(**{"secret": server.secret, **common})
    if server.vendor == "wecom":
        return WeComSpec(**common)
    if server.vendor == "slack":
        return SlackSpec(**common)
    if server.vendor == "teams":
        return TeamsSpec(**common)
    return WebhookSpec(**{"headers": dict(server.required_headers), **common})
