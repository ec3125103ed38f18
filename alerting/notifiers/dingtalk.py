"""DingTalk (钉钉) custom robot: markdown messages, optional signing ("加签").

Signing (https://open.dingtalk.com/document/robots/customize-robot-security-settings): ``timestamp`` is epoch
milliseconds; ``sign = urlEncode(base64(HmacSHA256(key=secret, msg=timestamp + "\\n" + secret)))``; both are
appended to the webhook URL as ``&timestamp=…&sign=…``. The server rejects timestamps more than one hour off.

DingTalk answers HTTP 200 with ``{"errcode": 0, "errmsg": "ok"}``; a non-zero ``errcode`` is a failure.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable
from typing import Any, ClassVar
from urllib.parse import quote_plus

import httpx

from catalog.channels import DingTalkSpec

from . import render
from ._common import WebhookBase
from ._http import HttpResult, response_snippet
from .base import DigestMessage, Notification, Outcome

__all__ = ["DingTalkNotifier", "dingtalk_payload", "dingtalk_sign"]

# Error codes: https://open.dingtalk.com/document/orgapp/custom-robots-send-group-messages (错误码).
# Rate limits (20 messages/minute per robot) and "system busy" pass with time; the rest need a config fix:
# 310000 keywords not in content / sign not match / ip not in whitelist, 300001 token does not exist,
# 400013 group dissolved, 430101 unsafe external link, 660026 robot stopped, 90030 "webhook over limit"
# (a daily/monthly quota: retrying within the outbox's backoff window would not help).
_RETRYABLE_CODES = frozenset({-1, 130101, 410100})


def dingtalk_sign(timestamp_ms: int, secret: str) -> str:
    """The ``sign`` query value, already URL-encoded as DingTalk's sample code does (``quote_plus``)."""
    string_to_sign = f"{timestamp_ms}\n{secret}".encode()
    digest = hmac.new(secret.encode(), string_to_sign, hashlib.sha256).digest()
    return quote_plus(base64.b64encode(digest))


def dingtalk_payload(n: Notification, at_mobiles: list[str]) -> dict[str, Any]:
    """A ``markdown`` message, or an ``actionCard`` with ack / silence / feedback buttons when the alerts
    carry action links (https://open.dingtalk.com/document/orgapp/custom-robots-send-group-messages, 独立跳转
    ActionCard). An ActionCard cannot @-mention, so with ``at_mobiles`` the links stay inline in markdown;
    mentioned mobiles must also appear as ``@mobile`` in the text to notify. Up to three buttons sit side by
    side (``btnOrientation`` 1); more are stacked (0), or their titles are cut off on a phone."""
    buttons = _buttons(n)
    if buttons and not at_mobiles:
        text = _card_text(n)
        side_by_side = "1" if len(buttons) <= 3 else "0"
        card = {"title": render.title(n), "text": text, "btnOrientation": side_by_side, "btns": buttons}
        return {"msgtype": "actionCard", "actionCard": card}
    text = render.markdown(n, newline="\n\n")
    if at_mobiles:
        text += "\n\n" + " ".join(f"@{m}" for m in at_mobiles)
    return {
        "msgtype": "markdown",
        "markdown": {"title": render.title(n), "text": text},
        "at": {"atMobiles": list(at_mobiles), "isAtAll": False},
    }


def _buttons(n: Notification) -> list[dict[str, str]]:
    """The top alert's links as buttons (one card holds one set; the board link of others stays in the text)."""
    shown = render.shown_alerts(n)
    if not shown or not any(shown[0].actions.values()):
        return []
    return [{"title": label, "actionURL": url} for label, url in render.links(shown[0], n.language)]


def _card_text(n: Notification) -> str:
    # The markdown body without the top alert's link line (those are the buttons).
    top = render.shown_alerts(n)[0]
    lines = render.markdown(n, newline="\n").split("\n")
    own = {url for _, url in render.links(top, n.language)}
    kept = [line for line in lines if not (line.startswith("> [") and any(f"({u})" in line for u in own))]
    return "\n\n".join(kept)


class DingTalkNotifier(WebhookBase):
    """Posts markdown to a DingTalk robot, signing the URL when a secret is configured."""

    kind: ClassVar[str] = "dingtalk"

    def __init__(
        self,
        spec: DingTalkSpec,
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
        self._at_mobiles = list(spec.at_mobiles)

    def _signed_url(self) -> str:
        if not self._secret:
            return self._raw_url
        timestamp = int(self._clock() * 1000)
        sep = "&" if "?" in self._raw_url else "?"
        return f"{self._raw_url}{sep}timestamp={timestamp}&sign={dingtalk_sign(timestamp, self._secret)}"

    async def send(self, notification: Notification) -> Outcome:
        """Post the notification once."""
        payload = dingtalk_payload(self._localize(notification), self._at_mobiles)
        return await self._post(self._signed_url(), payload)

    async def send_digest(self, message: DigestMessage) -> Outcome:
        """Post a review digest as one markdown message (its charts are the e-mail's; markdown cannot embed them)."""
        payload = {"msgtype": "markdown", "markdown": {"title": message.title, "text": message.markdown}}
        return await self._post(self._signed_url(), payload)

    def _body_outcome(self, result: HttpResult) -> Outcome | None:
        body = result.body
        if not isinstance(body, dict) or "errcode" not in body:
            return None
        code = body.get("errcode")
        if code == 0:
            return None
        # https://open.dingtalk.com/document/orgapp/custom-robots-send-group-messages (errcode table)
        retryable = code in _RETRYABLE_CODES
        return Outcome(
            False, retryable, f"dingtalk errcode {code}: {response_snippet(result, self._secrets)}"
        )
