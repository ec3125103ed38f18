"""Generic webhook: Alertmanager webhook_config JSON (version 4), idempotency key, secret headers."""

from __future__ import annotations

from alerting.notifiers.webhook import WebhookNotifier
from catalog.channels import WebhookSpec
from tests.fixtures.im import IMServer

from ._samples import T0, alert, notification, spec_for


def _notifier(server: IMServer, **overrides: object) -> WebhookNotifier:
    spec = spec_for(server, **overrides)
    assert isinstance(spec, WebhookSpec)
    return WebhookNotifier(spec)


async def test_alertmanager_payload(webhook_server: IMServer) -> None:
    resolved = alert(status="resolved", ends_at=T0 + 600, labels={"region": "west"}, fingerprint="beef")
    outcome = await _notifier(webhook_server).send(notification(alert(), resolved))
    assert outcome.delivered and webhook_server.problems == []
    [req] = webhook_server.requests
    assert req.headers["Idempotency-Key"] == "n-0001"
    body = req.json
    assert body["version"] == "4" and body["status"] == "firing" and body["receiver"] == "ops-dingtalk"
    assert body["groupKey"] == '{}:{alertname="paid_orders_low"}'
    assert body["groupLabels"] == {"alertname": "paid_orders_low", "kpi": "paid_orders"}
    assert body["commonLabels"] == {
        "alertname": "paid_orders_low",
        "kpi": "paid_orders",
        "severity": "critical",
    }
    assert body["commonAnnotations"]["summary"] == "paid_orders below 10 for 2m"
    assert body["externalURL"] == "http://kpimon.local" and body["truncatedAlerts"] == 0
    first, second = body["alerts"]
    assert first == {
        "status": "firing",
        "labels": {
            "alertname": "paid_orders_low",
            "kpi": "paid_orders",
            "severity": "critical",
            "region": "east",
            "channel": "app",
        },
        "annotations": {
            "summary": "paid_orders below 10 for 2m",
            "kpi_title": "支付订单数",
            "value": "9.0",
            "expected": "42.0",
            "lower": "30.0",
            "upper": "55.0",
            "unit": "orders",
            "window_start": "2025-11-28T10:00:00.000Z",
            "window_end": "2025-11-28T10:01:00.000Z",
            "dashboard_url": "http://grafana.local/d/kpi-paid-orders?var-region=east",
        },
        "startsAt": "2025-11-28T10:02:00.000Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://grafana.local/d/kpi-paid-orders?var-region=east",
        "fingerprint": "f00dfeed",
    }
    assert second["status"] == "resolved" and second["endsAt"] == "2025-11-28T10:10:00.000Z"


async def test_max_alerts_truncates(webhook_server: IMServer) -> None:
    many = [alert(fingerprint=str(i)) for i in range(5)]
    await _notifier(webhook_server, max_alerts=2).send(notification(*many))
    body = webhook_server.requests[0].json
    assert len(body["alerts"]) == 2 and body["truncatedAlerts"] == 3


async def test_missing_auth_header_is_not_retryable(webhook_server: IMServer) -> None:
    outcome = await _notifier(webhook_server, headers={}).send(notification())
    assert (outcome.delivered, outcome.retryable) == (False, False) and "401" in outcome.reason
