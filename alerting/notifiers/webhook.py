"""Generic webhook speaking Alertmanager's ``webhook_config`` JSON, so existing receivers work unchanged.

Format (https://prometheus.io/docs/alerting/latest/configuration/#webhook_config):
``{"version": "4", "groupKey", "truncatedAlerts", "status", "receiver", "groupLabels", "commonLabels",
"commonAnnotations", "externalURL", "alerts": [{"status", "labels", "annotations", "startsAt", "endsAt",
"generatorURL", "fingerprint"}]}``. The notification id goes in the ``Idempotency-Key`` header so a receiver
can drop the duplicate that a retry after a lost response produces.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

import httpx

from catalog.channels import WebhookSpec

from . import render
from ._common import WebhookBase
from .base import AlertInfo, Notification, Outcome

__all__ = ["WebhookNotifier", "alertmanager_payload"]

# Alertmanager's zero time for a firing alert's endsAt (Go's time.Time{} in RFC 3339).
_ZERO_TIME = "0001-01-01T00:00:00Z"


def _rfc3339(epoch: float | None) -> str:
    if epoch is None:
        return _ZERO_TIME
    return datetime.fromtimestamp(epoch, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _labels(a: AlertInfo) -> dict[str, str]:
    return {"alertname": a.rule, "kpi": a.kpi, "severity": a.severity, **dict(a.labels)}


def _annotations(a: AlertInfo, tz: str = "UTC") -> dict[str, str]:
    raw: dict[str, object] = {
        "summary": a.summary,
        "kpi_title": a.kpi_title,
        "value": a.value,
        "expected": a.expected,
        "lower": a.lower,
        "upper": a.upper,
        "unit": a.unit,
        "window_start": _rfc3339(a.window_start),
        "window_end": _rfc3339(a.window_end),
        "dashboard_url": a.dashboard_url,
    }
    if a.correction is not None:
        raw["correction"] = render.correction_text(a, "en", tz)
    # Annotations are string-to-string in alertmanager; absent values are left out rather than "None".
    return {k: repr(v) if isinstance(v, float) else str(v) for k, v in raw.items() if v not in (None, "")}


def _common(maps: list[dict[str, str]]) -> dict[str, str]:
    if not maps:
        return {}
    first = maps[0]
    return {k: v for k, v in first.items() if all(m.get(k) == v for m in maps[1:])}


def _current(alerts: list[AlertInfo]) -> str:
    return "firing" if any(a.status == "firing" for a in alerts) else "resolved"


def alertmanager_payload(n: Notification, max_alerts: int = 0) -> dict[str, Any]:
    """Alertmanager webhook JSON. ``groupLabels`` are the common ``alertname``/``kpi`` labels (our groups)."""
    alerts = list(n.alerts)
    shown = alerts[:max_alerts] if max_alerts else alerts
    labels = [_labels(a) for a in alerts]
    common = _common(labels)
    items = [
        {
            "status": a.status,
            "labels": lab,
            "annotations": _annotations(a, n.timezone),
            "startsAt": _rfc3339(a.starts_at),
            "endsAt": _rfc3339(a.ends_at),
            "generatorURL": a.dashboard_url or "",
            "fingerprint": a.fingerprint,
        }
        for a, lab in zip(shown, labels, strict=False)
    ]
    return {
        "version": "4",
        "groupKey": n.group_key,
        "truncatedAlerts": len(alerts) - len(shown),
        # Alertmanager knows firing|resolved only: a correction is told with its alerts' current status (a
        # retracted alert resolves), the sentence in the `correction` annotation
        "status": n.status if n.status != "correction" else _current(alerts),
        "receiver": n.receiver,
        "groupLabels": {k: v for k, v in common.items() if k in ("alertname", "kpi")},
        "commonLabels": common,
        "commonAnnotations": _common([_annotations(a, n.timezone) for a in alerts]),
        "externalURL": n.external_url or "",
        "alerts": items,
    }


class WebhookNotifier(WebhookBase):
    """POSTs the Alertmanager-compatible JSON with configured (secret) headers and an Idempotency-Key."""

    kind: ClassVar[str] = "webhook"

    def __init__(
        self,
        spec: WebhookSpec,
        *,
        clock: Callable[[], float] = time.time,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self._headers: Mapping[str, str] = {k: v.get_secret_value() for k, v in spec.headers.items()}
        super().__init__(
            spec,
            extra_secrets=tuple(self._headers.values()),
            clock=clock,
            client=client,
        )
        self._max_alerts = spec.max_alerts

    async def send(self, notification: Notification) -> Outcome:
        """Post the notification once; 2xx is success whatever the body says."""
        headers = {**self._headers, "Idempotency-Key": notification.id}
        return await self._post(self._raw_url, alertmanager_payload(notification, self._max_alerts), headers)
