"""DingTalk robot: signed markdown accepted by a server that recomputes the signature; errcodes classified."""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import pytest

from alerting.notifiers.dingtalk import DingTalkNotifier
from catalog.channels import DingTalkSpec
from tests.fixtures.im import IMServer, Reply

from ._samples import alert, notification, spec_for


def _notifier(server: IMServer, **overrides: object) -> DingTalkNotifier:
    spec = spec_for(server, **overrides)
    assert isinstance(spec, DingTalkSpec)
    return DingTalkNotifier(spec)


async def test_signed_markdown_in_chinese_is_accepted(dingtalk_server: IMServer) -> None:
    notifier = _notifier(dingtalk_server, language="zh", at_mobiles=["13800001111"])

    outcome = await notifier.send(notification(language="zh"))

    assert outcome.delivered, outcome
    assert dingtalk_server.problems == []
    [req] = dingtalk_server.requests
    assert set(req.query) == {"access_token", "timestamp", "sign"}
    assert abs(int(req.query["timestamp"]) - time.time() * 1000) < 60_000  # milliseconds, per the docs
    body = req.json
    assert body["msgtype"] == "markdown"
    assert body["markdown"]["title"].startswith("【告警中】严重 · 支付订单数")
    text = body["markdown"]["text"]
    for expected in (
        "当前值: 9 单",
        "正常区间 30 – 55 单",
        "序列: channel=app, region=east",
        "@13800001111",
    ):
        assert expected in text
    assert body["at"] == {"atMobiles": ["13800001111"], "isAtAll": False}


async def test_robot_without_signing(im_server: Callable[..., IMServer]) -> None:
    server = im_server("dingtalk")
    outcome = await _notifier(server).send(notification())
    assert outcome.delivered and server.problems == []
    assert "sign" not in server.requests[0].query


async def test_sign_is_url_encoded_in_query(dingtalk_server: IMServer) -> None:
    # base64 contains + / =; an unencoded "+" would arrive as a space and fail verification.
    for _ in range(5):
        assert (await _notifier(dingtalk_server).send(notification())).delivered
    assert dingtalk_server.problems == []


async def test_wrong_secret_is_rejected_and_not_retried(dingtalk_server: IMServer) -> None:
    outcome = await _notifier(dingtalk_server, secret="SECwrong").send(notification())
    assert (outcome.delivered, outcome.retryable) == (False, False)
    assert "310000" in outcome.reason
    assert dingtalk_server.problems == ["sign mismatch"]


async def test_stale_timestamp_is_rejected(dingtalk_server: IMServer) -> None:
    spec = spec_for(dingtalk_server)
    assert isinstance(spec, DingTalkSpec)
    notifier = DingTalkNotifier(spec, clock=lambda: time.time() - 2 * 3600)
    outcome = await notifier.send(notification())
    assert (outcome.delivered, outcome.retryable) == (False, False)
    assert dingtalk_server.problems == ["stale or missing timestamp"]


async def test_wrong_token_is_not_retryable(dingtalk_server: IMServer) -> None:
    parts = urlsplit(dingtalk_server.url)
    assert parse_qs(parts.query)["access_token"] == [dingtalk_server.token]
    url = dingtalk_server.url.replace(dingtalk_server.token, "0" * 40)
    outcome = await _notifier(dingtalk_server, url=url).send(notification())
    assert (outcome.delivered, outcome.retryable) == (False, False) and "300001" in outcome.reason


@pytest.mark.parametrize(
    ("errcode", "errmsg", "retryable"),
    [
        (310000, "keywords not in content", False),
        (310000, "sign not match", False),
        (300001, "token is not exist", False),
        (130101, "send too fast, exceed 20 times per minute", True),
        (410100, "发送速度太快而限流", True),
        (-1, "系统繁忙", True),
    ],
)
async def test_errcode_in_http_200_body(
    dingtalk_server: IMServer, errcode: int, errmsg: str, retryable: bool
) -> None:
    dingtalk_server.reply(Reply(200, {"errcode": errcode, "errmsg": errmsg}))
    outcome = await _notifier(dingtalk_server).send(notification())
    assert (outcome.delivered, outcome.retryable) == (False, retryable)
    assert f"errcode {errcode}" in outcome.reason


async def test_large_group_is_cut_with_a_count(dingtalk_server: IMServer) -> None:
    many = [alert(fingerprint=f"fp{i}", labels={"region": f"r{i}"}) for i in range(25)]
    outcome = await _notifier(dingtalk_server).send(notification(*many))
    assert outcome.delivered
    text = dingtalk_server.requests[0].json["markdown"]["text"]
    assert "… and 15 more alert(s)" in text and "[FIRING:25]" in text


ACTIONS = {"ack": "https://k.example/act/a", "silence": "https://k.example/act/s", "false_alarm": "https://k.example/act/f"}


async def test_action_links_become_an_action_card(dingtalk_server: IMServer) -> None:
    outcome = await _notifier(dingtalk_server).send(notification(alert(actions=ACTIONS), language="zh"))
    assert outcome.delivered and dingtalk_server.problems == []
    body = dingtalk_server.requests[0].json
    assert body["msgtype"] == "actionCard"
    card = body["actionCard"]
    assert [b["title"] for b in card["btns"]] == ["查看看板", "确认", "静默 2 小时", "误报"]
    assert [b["actionURL"] for b in card["btns"]][1:] == list(ACTIONS.values())
    assert "/act/" not in card["text"]  # the links are the buttons, not repeated in the text


async def test_mentions_keep_markdown_with_inline_links(dingtalk_server: IMServer) -> None:
    await _notifier(dingtalk_server, at_mobiles=["13800001111"]).send(notification(alert(actions=ACTIONS)))
    body = dingtalk_server.requests[0].json
    assert body["msgtype"] == "markdown" and "[Acknowledge](https://k.example/act/a)" in body["markdown"]["text"]
