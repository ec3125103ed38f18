"""Slack incoming webhooks: ``{"text": fallback, "blocks": [...]}`` posted to the webhook URL.

Slack answers ``200 ok`` on success and a plain-text error code otherwise
(https://api.slack.com/messaging/webhooks#handling_errors,
https://api.slack.com/changelog/2016-05-17-changes-to-errors-for-incoming-webhooks): ``invalid_payload``/``user_not_found`` (400),
``action_prohibited``/``invalid_token`` (403), ``channel_not_found``/``no_service``/``no_team`` (404),
``channel_is_archived`` (410), ``rollup_error`` (500), and 429 when rate limited.
"""

from __future__ import annotations

from typing import Any, ClassVar

from . import render
from ._common import WebhookBase, fit_bytes
from ._http import HttpResult, response_snippet
from .base import DigestMessage, Notification, Outcome

__all__ = ["SlackNotifier", "slack_payload"]

# Block Kit limits a section's text to 3000 characters and a message to 50 blocks
# (https://api.slack.com/reference/block-kit/blocks#section).
_SECTION_LIMIT = 3000
_MAX_BLOCKS = 50


def _escape(text: str) -> str:
    # mrkdwn control characters (https://api.slack.com/reference/surfaces/formatting#escaping).
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(n: Notification) -> dict[str, Any]:
    """The webhook JSON: a header, per alert a section and its link buttons (board, ack / silence /
    feedback: https://api.slack.com/reference/block-kit/block-elements#button), a context line; ``text`` is
    the fallback."""
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": render.title(n)[:150], "emoji": True}}
    ]
    for alert in render.shown_alerts(n):
        lines = [f"*{_escape(render.heading(alert, n))}*"]
        lines += [f"*{_escape(k)}:* {_escape(v)}" for k, v in render.alert_facts(alert, n)]
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)[:_SECTION_LIMIT]}}
        )
        buttons = [
            {"type": "button", "text": {"type": "plain_text", "text": label}, "url": url, "action_id": f"a{i}"}
            for i, (label, url) in enumerate(render.links(alert, n.language))
        ]
        if buttons:
            blocks.append({"type": "actions", "elements": buttons})
    footer = [line for line in (render.more_line(n), n.external_url) if line]
    if footer:
        blocks.append(
            {"type": "context", "elements": [{"type": "mrkdwn", "text": _escape(" · ".join(footer))}]}
        )
    return {"text": render.title(n), "blocks": blocks[:_MAX_BLOCKS]}


class SlackNotifier(WebhookBase):
    """Posts Block Kit messages to a Slack incoming webhook."""

    kind: ClassVar[str] = "slack"


    async def send_digest(self, message: DigestMessage) -> Outcome:
        """Post a review digest as text (mrkdwn shows the headings and lists as they are)."""
        return await self._post(self._raw_url, {"text": fit_bytes(message.markdown, 38_000)})

    async def send(self, notification: Notification) -> Outcome:
        """Post the notification; see the module docstring for how answers map to outcomes."""
        return await self._post(self._raw_url, slack_payload(self._localize(notification)))

    def _body_outcome(self, result: HttpResult) -> Outcome | None:
        if 200 <= result.status < 300:
            # Slack's success body is literally "ok"; anything else on 2xx is unexpected but was accepted.
            return None
        # https://api.slack.com/changelog/2016-05-17-changes-to-errors-for-incoming-webhooks : the error code
        # is the plain-text body; 4xx ones (invalid_payload, no_service, channel_not_found...) need a fix.
        code = response_snippet(result, self._secrets)
        return Outcome(False, False, f"slack rejected the message: HTTP {result.status} {code}")
