"""WeCom (企业微信) group robot: markdown messages, plus a text message to @-mention people.

Message format: https://developer.work.weixin.qq.com/document/path/91770 . Markdown ``content`` is limited to
4096 UTF-8 bytes and cannot mention by mobile, so when ``mentioned_mobile_list`` is set a short ``text``
message carrying the list follows the markdown one. WeCom answers HTTP 200 with ``{"errcode": 0, ...}``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, ClassVar

import httpx

from catalog.channels import WeComSpec

from . import render
from ._common import WebhookBase, fit_bytes
from ._http import HttpResult, response_snippet
from .base import DigestMessage, Notification, Outcome

__all__ = ["WeComNotifier", "wecom_payload"]

# https://developer.work.weixin.qq.com/document/path/90313 (global error codes): 45009 "api freq out of limit"
# (20 messages/minute per robot), 45033 concurrency limit and -1 "system busy" clear by themselves;
# 93000 invalid webhook url, 40008 invalid message type, 44004 empty content etc. need a fix.
_RETRYABLE_CODES = frozenset({-1, 45009, 45033})
_MARKDOWN_LIMIT = 4096


def _cut_utf8(text: str, limit: int) -> str:
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    # Cut on a character boundary and mark the cut.
    return data[: limit - 4].decode("utf-8", errors="ignore") + "\n…"


def wecom_payload(n: Notification) -> dict[str, Any]:
    """A ``markdown`` message cut to WeCom's 4096-byte limit."""
    return {"msgtype": "markdown", "markdown": {"content": _cut_utf8(render.markdown(n), _MARKDOWN_LIMIT)}}


class WeComNotifier(WebhookBase):
    """Posts markdown to a WeCom group robot."""

    kind: ClassVar[str] = "wecom"

    def __init__(
        self,
        spec: WeComSpec,
        *,
        clock: Callable[[], float] = time.time,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(
            spec,
            clock=clock,
            client=client,
        )
        self._mentions = list(spec.mentioned_mobile_list)

    async def send(self, notification: Notification) -> Outcome:
        """Post the markdown; then, if configured, the mention. A failed mention does not undo delivery."""
        n = self._localize(notification)
        outcome = await self._post(self._raw_url, wecom_payload(n))
        if not outcome.delivered or not self._mentions:
            return outcome
        mention = {
            "msgtype": "text",
            "text": {"content": render.text(n.language, "mention"), "mentioned_mobile_list": self._mentions},
        }
        followup = await self._post(self._raw_url, mention)
        if followup.delivered:
            return outcome
        # Retrying would repeat the alert itself, so report delivered and say what is missing.
        return Outcome(True, False, f"delivered; mention failed: {followup.reason}")

    async def send_digest(self, message: DigestMessage) -> Outcome:
        """Post a review digest as markdown, cut at a line to the robot's 4096 bytes."""
        payload = {"msgtype": "markdown", "markdown": {"content": fit_bytes(message.markdown, 4096)}}
        return await self._post(self._raw_url, payload)

    def _body_outcome(self, result: HttpResult) -> Outcome | None:
        body = result.body
        if not isinstance(body, dict) or "errcode" not in body:
            return None
        code = body.get("errcode")
        if code == 0:
            return None
        # https://developer.work.weixin.qq.com/document/path/90313 (errcode table)
        retryable = code in _RETRYABLE_CODES
        return Outcome(False, retryable, f"wecom errcode {code}: {response_snippet(result, self._secrets)}")
