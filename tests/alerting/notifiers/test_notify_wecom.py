"""WeCom group robot: markdown within 4096 bytes, mention message, errcodes classified."""

from __future__ import annotations

import pytest

from alerting.notifiers.wecom import WeComNotifier
from catalog.channels import WeComSpec
from tests.fixtures.im import IMServer, Reply

from ._samples import alert, notification, spec_for


def _notifier(server: IMServer, **overrides: object) -> WeComNotifier:
    spec = spec_for(server, **overrides)
    assert isinstance(spec, WeComSpec)
    return WeComNotifier(spec)


async def test_markdown_in_chinese_is_accepted(wecom_server: IMServer) -> None:
    outcome = await _notifier(wecom_server, language="zh").send(notification(language="zh"))
    assert outcome.delivered and wecom_server.problems == []
    body = wecom_server.requests[0].json
    assert body["msgtype"] == "markdown"
    content = body["markdown"]["content"]
    assert content.startswith("### 【告警中】严重 · 支付订单数")
    assert "> 预期值: 42 单（正常区间 30 – 55 单）" in content


async def test_huge_group_stays_under_4096_bytes(wecom_server: IMServer) -> None:
    long_labels = {f"dimension_{i}": "值" * 40 for i in range(8)}
    many = [alert(fingerprint=str(i), labels=long_labels) for i in range(40)]
    outcome = await _notifier(wecom_server, language="zh").send(notification(*many))
    assert outcome.delivered and wecom_server.problems == []
    assert len(wecom_server.requests[0].json["markdown"]["content"].encode()) <= 4096


async def test_mentions_follow_as_text_message(wecom_server: IMServer) -> None:
    outcome = await _notifier(wecom_server, mentioned_mobile_list=["13800001111"]).send(notification())
    assert outcome.delivered and wecom_server.problems == []
    first, second = (r.json for r in wecom_server.requests)
    assert first["msgtype"] == "markdown"
    assert second == {
        "msgtype": "text",
        "text": {"content": "Please take a look.", "mentioned_mobile_list": ["13800001111"]},
    }


async def test_failed_mention_still_counts_as_delivered(wecom_server: IMServer) -> None:
    wecom_server.reply(Reply(), Reply(200, {"errcode": 45009, "errmsg": "api freq out of limit"}))
    outcome = await _notifier(wecom_server, mentioned_mobile_list=["13800001111"]).send(notification())
    assert (outcome.delivered, outcome.retryable) == (True, False)
    assert "mention failed" in outcome.reason and "45009" in outcome.reason


@pytest.mark.parametrize(
    ("errcode", "errmsg", "retryable"),
    [
        (45009, "api freq out of limit", True),
        (-1, "system busy", True),
        (93000, "invalid webhook url", False),
        (40008, "invalid message type", False),
        (44004, "empty content", False),
    ],
)
async def test_errcodes(wecom_server: IMServer, errcode: int, errmsg: str, retryable: bool) -> None:
    wecom_server.reply(Reply(200, {"errcode": errcode, "errmsg": errmsg}))
    outcome = await _notifier(wecom_server).send(notification())
    assert (outcome.delivered, outcome.retryable) == (False, retryable)
    assert f"errcode {errcode}" in outcome.reason


async def test_wrong_key_gets_93000(wecom_server: IMServer) -> None:
    url = wecom_server.url.replace(wecom_server.token, "bad-key")
    outcome = await _notifier(wecom_server, url=url).send(notification())
    assert (outcome.delivered, outcome.retryable) == (False, False) and "93000" in outcome.reason
