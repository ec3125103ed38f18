"""Teams Workflows webhook: Adaptive Card envelope accepted; errors classified."""

from __future__ import annotations

import pytest

from alerting.notifiers.teams import TeamsNotifier
from catalog.channels import TeamsSpec
from tests.fixtures.im import IMServer, Reply

from ._samples import alert, notification, spec_for


def _notifier(server: IMServer, **overrides: object) -> TeamsNotifier:
    spec = spec_for(server, **overrides)
    assert isinstance(spec, TeamsSpec)
    return TeamsNotifier(spec)


async def test_adaptive_card_is_accepted(teams_server: IMServer) -> None:
    outcome = await _notifier(teams_server, language="zh").send(notification(language="zh"))
    assert outcome.delivered and teams_server.problems == []
    body = teams_server.requests[0].json
    assert body["type"] == "message"
    [attachment] = body["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert attachment["contentUrl"] is None
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    assert card["$schema"] == "http://adaptivecards.io/schemas/adaptive-card.json"
    assert card["body"][0]["color"] == "attention"
    facts = {f["title"]: f["value"] for f in card["body"][2]["facts"]}
    assert facts["当前值"] == "9 单" and facts["级别"] == "严重"
    [board] = card["body"][3]["actions"]
    assert board == {"type": "Action.OpenUrl", "title": "查看看板", "url": alert().dashboard_url}


async def test_resolved_card_is_good(teams_server: IMServer) -> None:
    await _notifier(teams_server).send(notification(alert(status="resolved", ends_at=1.0e9 + 60)))
    assert teams_server.requests[0].json["attachments"][0]["content"]["body"][0]["color"] == "good"


@pytest.mark.parametrize(
    ("reply", "retryable"),
    [
        (Reply(200, text="Webhook message delivery failed with error: Microsoft Teams endpoint returned HTTP error 429"), True),
        (Reply(200, text="Webhook message delivery failed with error: Microsoft Teams endpoint returned HTTP error 413"), False),
        (Reply(400, json={"error": {"code": "InvalidRequestContent"}}), False),
        (Reply(502, text="Bad Gateway"), True),
    ],
)  # fmt: skip
async def test_errors(teams_server: IMServer, reply: Reply, retryable: bool) -> None:
    teams_server.reply(reply)
    outcome = await _notifier(teams_server).send(notification())
    assert (outcome.delivered, outcome.retryable) == (False, retryable)


async def test_legacy_connector_success_body(teams_server: IMServer) -> None:
    teams_server.reply(Reply(200, text="1"))
    assert (await _notifier(teams_server).send(notification())).delivered
