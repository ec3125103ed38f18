"""Slack incoming webhook: Block Kit payload accepted; plain-text error bodies classified."""

from __future__ import annotations

import pytest

from alerting.notifiers.slack import SlackNotifier
from catalog.channels import SlackSpec
from tests.fixtures.im import IMServer, Reply

from ._samples import alert, notification, spec_for


def _notifier(server: IMServer, **overrides: object) -> SlackNotifier:
    spec = spec_for(server, **overrides)
    assert isinstance(spec, SlackSpec)
    return SlackNotifier(spec)


async def test_blocks_payload_is_accepted(slack_server: IMServer) -> None:
    tricky = alert(labels={"segment": "<vip> & co"})
    outcome = await _notifier(slack_server).send(notification(tricky))
    assert outcome.delivered and slack_server.problems == []
    body = slack_server.requests[0].json
    assert body["text"] == "[FIRING] critical · Paid orders · segment=<vip> & co: 9 orders, below 10"
    header, section, buttons, context = body["blocks"]
    assert header["type"] == "header" and header["text"]["type"] == "plain_text"
    text = section["text"]["text"]
    assert section["text"]["type"] == "mrkdwn"
    assert "*Value:* 9 orders" in text and "*Expected:* 42 orders (normal range 30 – 55 orders)" in text
    assert "segment=&lt;vip&gt; &amp; co" in text  # mrkdwn control characters escaped
    [board] = buttons["elements"]
    assert board["type"] == "button" and board["url"] == "http://grafana.local/d/kpi-paid-orders?var-region=east"
    assert board["text"]["text"] == "Open dashboard"
    assert context["elements"][0]["text"] == "http://kpimon.local"


async def test_chinese_blocks(slack_server: IMServer) -> None:
    await _notifier(slack_server, language="zh").send(notification())
    assert "*当前值:* 9 单" in slack_server.requests[0].json["blocks"][1]["text"]["text"]


@pytest.mark.parametrize(
    ("status", "code", "retryable"),
    [
        (400, "invalid_payload", False),
        (400, "user_not_found", False),
        (403, "action_prohibited", False),
        (404, "channel_not_found", False),
        (404, "no_service", False),
        (410, "channel_is_archived", False),
        (500, "rollup_error", True),
        (429, "rate_limited", True),
    ],
)
async def test_plain_text_errors(slack_server: IMServer, status: int, code: str, retryable: bool) -> None:
    slack_server.reply(Reply(status, text=code))
    outcome = await _notifier(slack_server).send(notification())
    assert (outcome.delivered, outcome.retryable) == (False, retryable)
    assert code in outcome.reason


async def test_action_buttons_are_accepted(slack_server: IMServer) -> None:
    acts = {"ack": "https://k.example/act/a", "silence": "https://k.example/act/s"}
    await _notifier(slack_server).send(notification(alert(actions=acts)))
    assert slack_server.problems == []
    [buttons] = [b for b in slack_server.requests[0].json["blocks"] if b["type"] == "actions"]
    assert [e["url"] for e in buttons["elements"]][1:] == list(acts.values())
