"""Feishu / Lark (飞书) custom bot: interactive card messages, optional signature verification.

Signing (https://open.feishu.cn/document/client-docs/bot-v3/add-custom-bot#3c6592d6): ``timestamp`` is epoch
*seconds*; the HMAC-SHA256 **key** is ``timestamp + "\\n" + secret`` and the message is empty; ``sign`` is the
base64 digest. Both go in the JSON body, not the URL. Stale timestamps (> 1 h) are rejected with code 19021.

Feishu answers ``{"code": 0, "msg": "success", "data": {}}`` (older deployments: ``{"StatusCode": 0, ...}``);
a non-zero code is a failure, on HTTP 200 as well as on 4xx.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable
from typing import Any, ClassVar

import httpx

from catalog.channels import FeishuSpec

from . import render
from ._common import WebhookBase, fit_bytes
from ._http import HttpResult, response_snippet
from .base import DigestMessage, Notification, Outcome

__all__ = ["FeishuNotifier", "feishu_card", "feishu_sign"]

# Error codes: https://open.feishu.cn/document/client-docs/bot-v3/add-custom-bot#4996824a (常见问题/错误码):
# 19021 sign mismatch or timestamp older than 1 h, 19022 IP not allowed, 19024 keyword not found,
# 9499 bad request (payload), 19001/19002 invalid webhook or params: all need a config fix.
# 11232 "frequency limited" (100/min, 5/s per bot) clears by itself.
_RETRYABLE_CODES = frozenset({11232})


def feishu_sign(timestamp: int, secret: str) -> str:
    """Base64 HMAC-SHA256 with ``f"{timestamp}\\n{secret}"`` as the key over an empty message."""
    key = f"{timestamp}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()


def feishu_card(n: Notification) -> dict[str, Any]:
    """An interactive card: coloured header, one ``lark_md`` block per alert, then its buttons (board, and
    ack / silence / feedback when configured: https://open.feishu.cn/document/common-capabilities/message-card/message-cards-content/using-button-components)."""
    template = {"red": "red", "orange": "orange", "blue": "blue", "green": "green"}[render.color(n)]
    elements: list[dict[str, Any]] = []
    for alert in render.shown_alerts(n):
        lines = [f"**{render.heading(alert, n)}**"]
        lines += [f"**{k}**: {v}" for k, v in render.alert_facts(alert, n)]
        elements.append({"tag": "div", "text": {"tag": "lark_md", "content": "\n".join(lines)}})
        buttons = [
            {
                "tag": "button",
                "text": {"tag": "plain_text", "content": label},
                "url": url,
                "type": "primary" if i == 0 else "default",
            }
            for i, (label, url) in enumerate(render.links(alert, n.language))
        ]
        if buttons:
            elements.append({"tag": "action", "actions": buttons})
        elements.append({"tag": "hr"})
    footer = [line for line in (render.more_line(n), n.external_url) if line]
    if footer:
        elements.append({"tag": "note", "elements": [{"tag": "plain_text", "content": " · ".join(footer)}]})
    return {
        "config": {"wide_screen_mode": True},
        "header": {"title": {"tag": "plain_text", "content": render.title(n)}, "template": template},
        "elements": elements,
    }


class FeishuNotifier(WebhookBase):
    """Posts interactive cards to a Feishu/Lark custom bot, signing the body when a secret is configured."""

    kind: ClassVar[str] = "feishu"

    def __init__(
        self,
        spec: FeishuSpec,
        *,
        clock: Callable[[], float] = time.time,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self._secret = spec.secret.get_secret_value() if spec.secret else None
        super().__init__(
            spec,
            extra_secrets=(self._secret or "",),
            clock=clock,
            client=client,
        )

    def _payload(self, n: Notification) -> dict[str, Any]:
        return self._signed({"msg_type": "interactive", "card": feishu_card(n)})

    def _signed(self, payload: dict[str, Any]) -> dict[str, Any]:
        if self._secret:
            timestamp = int(self._clock())
            payload = {"timestamp": str(timestamp), "sign": feishu_sign(timestamp, self._secret), **payload}
        return payload

    async def send_digest(self, message: DigestMessage) -> Outcome:
        """Post a review digest as a card with one markdown element (cards take up to about 30 KB)."""
        card = {"header": {"title": {"tag": "plain_text", "content": message.title}},
                "elements": [{"tag": "markdown", "content": fit_bytes(message.markdown, 28_000)}]}
        return await self._post(self._raw_url, self._signed({"msg_type": "interactive", "card": card}))

    async def send(self, notification: Notification) -> Outcome:
        """Post the notification once."""
        return await self._post(self._raw_url, self._payload(self._localize(notification)))

    def _body_outcome(self, result: HttpResult) -> Outcome | None:
        body = result.body
        if not isinstance(body, dict):
            return None
        code = body.get("code", body.get("StatusCode"))
        if code in (None, 0):
            return None
        # https://open.feishu.cn/document/client-docs/bot-v3/add-custom-bot (error codes section)
        retryable = code in _RETRYABLE_CODES
        return Outcome(False, retryable, f"feishu code {code}: {response_snippet(result, self._secrets)}")
