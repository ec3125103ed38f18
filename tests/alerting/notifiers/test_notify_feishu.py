"""Feishu/Lark bot: signed interactive card verified by the fake server; body codes classified."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from alerting.notifiers.feishu import FeishuNotifier
from catalog.channels import FeishuSpec
from tests.fixtures.im import IMServer, Reply

from ._samples import alert, notification, spec_for


def _notifier(server: IMServer, **overrides: object) -> FeishuNotifier:
    spec = spec_for(server, **overrides)
    assert isinstance(spec, FeishuSpec)
    return FeishuNotifier(spec)


async def test_signed_card_in_chinese_is_accepted(feishu_server: IMServer) -> None:
    outcome = await _notifier(feishu_server, language="zh").send(notification(language="zh"))

    assert outcome.delivered, outcome
    assert feishu_server.problems == []
    body = feishu_server.requests[0].json
    assert abs(int(body["timestamp"]) - time.time()) < 60  # seconds, per the docs
    assert body["msg_type"] == "interactive"
    card = body["card"]
    assert card["header"]["template"] == "red"
    assert card["header"]["title"]["content"].startswith("【告警中】严重")
    div = card["elements"][0]
    assert div["tag"] == "div" and div["text"]["tag"] == "lark_md"
    assert "**当前值**: 9 单" in div["text"]["content"]
    button = card["elements"][1]["actions"][0]
    assert button["text"]["content"] == "查看看板" and button["url"].startswith("http://grafana.local/")


async def test_resolved_card_is_green(feishu_server: IMServer) -> None:
    resolved = alert(status="resolved", ends_at=alert().starts_at + 300)
    await _notifier(feishu_server).send(notification(resolved))
    card = feishu_server.requests[0].json["card"]
    assert card["header"]["template"] == "green"
    assert card["header"]["title"]["content"].startswith("[RESOLVED]")


async def test_bot_without_signing_sends_no_sign(im_server: Callable[..., IMServer]) -> None:
    server = im_server("feishu")
    assert (await _notifier(server).send(notification())).delivered
    assert "sign" not in server.requests[0].json and server.problems == []


async def test_wrong_secret_gets_19021(feishu_server: IMServer) -> None:
    outcome = await _notifier(feishu_server, secret="not-the-secret").send(notification())
    assert (outcome.delivered, outcome.retryable) == (False, False) and "19021" in outcome.reason


async def test_stale_timestamp_gets_19021(feishu_server: IMServer) -> None:
    spec = spec_for(feishu_server)
    assert isinstance(spec, FeishuSpec)
    outcome = await FeishuNotifier(spec, clock=lambda: time.time() - 3 * 3600).send(notification())
    assert (outcome.delivered, outcome.retryable) == (False, False) and "19021" in outcome.reason
    assert feishu_server.problems == ["sign mismatch or stale timestamp"]


@pytest.mark.parametrize(
    ("status", "code", "msg", "retryable"),
    [
        (200, 19021, "sign match fail or timestamp is not within one hour from current time", False),
        (200, 19022, "Ip Not Allowed", False),
        (200, 19024, "Key Words Not Found", False),
        (400, 9499, "Bad Request", False),
        (200, 11232, "frequency limited psm[lark.oapi.app_platform_runtime]", True),
    ],
)
async def test_body_codes(feishu_server: IMServer, status: int, code: int, msg: str, retryable: bool) -> None:
    feishu_server.reply(Reply(status, {"code": code, "data": {}, "msg": msg}))
    outcome = await _notifier(feishu_server).send(notification())
    assert (outcome.delivered, outcome.retryable) == (False, retryable)
    assert f"code {code}" in outcome.reason


async def test_legacy_statuscode_body(feishu_server: IMServer) -> None:
    feishu_server.reply(Reply(200, {"StatusCode": 0, "StatusMessage": "success"}))
    assert (await _notifier(feishu_server).send(notification())).delivered


async def test_action_buttons(feishu_server: IMServer) -> None:
    acts = {"ack": "https://k.example/act/a", "silence": "https://k.example/act/s", "false_alarm": "https://k.example/act/f"}
    outcome = await _notifier(feishu_server).send(notification(alert(actions=acts)))
    assert outcome.delivered and feishu_server.problems == []
    card = feishu_server.requests[0].json["card"]
    [row] = [e for e in card["elements"] if e["tag"] == "action"]
    assert [b["text"]["content"] for b in row["actions"]] == ["Open dashboard", "Acknowledge", "Silence 2 h", "False alarm"]
    assert [b["url"] for b in row["actions"]][1:] == list(acts.values())
