"""The route's language reaches every channel: a channel without its own ``language`` writes the route's."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from alerting.notifiers.registry import build_notifier
from tests.fixtures.im import IMServer

from ._samples import notification, spec_for


@pytest.mark.parametrize("vendor", ["dingtalk", "feishu", "wecom", "slack", "teams"])
@pytest.mark.parametrize("language", ["zh", "en"])
async def test_channel_without_language_writes_the_routes(
    vendor: str, language: str, im_server: Callable[..., IMServer]
) -> None:
    server = im_server(vendor, secret="SEC" + "0" * 32 if vendor in ("dingtalk", "feishu") else None)
    spec = spec_for(server)
    assert spec.language is None
    outcome = await build_notifier(spec).send(notification(language=language))
    assert outcome.delivered and server.problems == []
    sent = json.dumps(server.requests[0].json, ensure_ascii=False)
    assert ("【告警中】严重 · 支付订单数" in sent) == (language == "zh")
    assert ("[FIRING] critical · Paid orders" in sent) == (language == "en")


async def test_a_channels_own_language_wins(im_server: Callable[..., IMServer]) -> None:
    server = im_server("slack")
    await build_notifier(spec_for(server, language="en")).send(notification(language="zh"))
    assert server.requests[0].json["text"].startswith("[FIRING] critical · Paid orders")
