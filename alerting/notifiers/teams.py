"""Microsoft Teams via a Workflows (Power Automate) webhook posting an Adaptive Card.

Payload (https://learn.microsoft.com/en-us/microsoftteams/platform/webhooks-and-connectors/how-to/connectors-using#send-adaptive-cards-using-an-incoming-webhook):
``{"type": "message", "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
"contentUrl": null, "content": {<AdaptiveCard>}}]}``. Workflows answer ``202 Accepted``; legacy Office 365
connectors answer ``200`` with body ``1``, or ``200`` with "Webhook message delivery failed with error: …"
when Teams itself refused the message (e.g. its own 429).
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from . import render
from ._common import WebhookBase, fit_bytes
from ._http import HttpResult, response_snippet
from .base import DigestMessage, Notification, Outcome

__all__ = ["TeamsNotifier", "teams_payload"]

_CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
_STYLE = {"red": "attention", "orange": "warning", "blue": "accent", "green": "good"}
# https://learn.microsoft.com/en-us/microsoftteams/platform/webhooks-and-connectors/how-to/connectors-using#rate-limiting-for-connectors
_DELIVERY_FAILED = re.compile(r"delivery failed.*?HTTP error (\d{3})", re.IGNORECASE | re.DOTALL)


def adaptive_card(n: Notification) -> dict[str, Any]:
    """An Adaptive Card 1.4: a coloured title, per alert a heading, a FactSet and an ActionSet of its links
    (board, ack / silence / feedback: ``Action.OpenUrl``)."""
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "text": render.title(n),
            "weight": "Bolder",
            "size": "Medium",
            "wrap": True,
            "color": _STYLE[render.color(n)],
        }
    ]
    for alert in render.shown_alerts(n):
        body.append({"type": "TextBlock", "text": f"**{render.heading(alert, n)}**", "wrap": True})
        facts = [{"title": k, "value": v} for k, v in render.alert_facts(alert, n)]
        body.append({"type": "FactSet", "facts": facts})
        actions = [
            {"type": "Action.OpenUrl", "title": label, "url": url}
            for label, url in render.links(alert, n.language)
        ]
        if actions:
            body.append({"type": "ActionSet", "actions": actions})
    for line in (render.more_line(n), n.external_url):
        if line:
            body.append({"type": "TextBlock", "text": line, "isSubtle": True, "wrap": True})
    card: dict[str, Any] = {"$schema": _CARD_SCHEMA, "type": "AdaptiveCard", "version": "1.4", "body": body}
    card["msteams"] = {"width": "Full"}
    return card


def teams_payload(n: Notification) -> dict[str, Any]:
    """The message envelope Workflows expects around the card."""
    attachment = {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None}
    return {"type": "message", "attachments": [{**attachment, "content": adaptive_card(n)}]}


class TeamsNotifier(WebhookBase):
    """Posts Adaptive Cards to a Teams Workflows webhook."""

    kind: ClassVar[str] = "teams"


    async def send_digest(self, message: DigestMessage) -> Outcome:
        """Post a review digest as an Adaptive Card with the title and one markdown text block."""
        content = {"type": "AdaptiveCard", "version": "1.4", "body": [
            {"type": "TextBlock", "text": message.title, "weight": "Bolder", "wrap": True},
            {"type": "TextBlock", "text": fit_bytes(message.markdown, 24_000), "wrap": True}]}
        payload = {"type": "message", "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "content": content}]}
        return await self._post(self._raw_url, payload)

    async def send(self, notification: Notification) -> Outcome:
        """Post the notification once."""
        return await self._post(self._raw_url, teams_payload(self._localize(notification)))

    def _body_outcome(self, result: HttpResult) -> Outcome | None:
        if not 200 <= result.status < 300:
            return None
        # Legacy connectors report Teams' own refusal inside a 200 body (see the module docstring link).
        match = _DELIVERY_FAILED.search(result.text)
        if match is None:
            return None
        inner = int(match.group(1))
        retryable = inner == 429 or inner >= 500
        return Outcome(False, retryable, f"teams delivery failed: {response_snippet(result, self._secrets)}")
