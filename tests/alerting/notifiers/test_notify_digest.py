"""The review digest through every IM channel that takes one, against the vendor fixtures (signatures and
payload shapes checked by the fake vendor); the generic webhook takes none (its receivers expect Alertmanager
JSON)."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from alerting.digest import render_markdown, title
from alerting.digest_job import DigestSender
from alerting.notifiers.base import DigestMessage
from alerting.notifiers.registry import NOTIFIERS, build_notifier
from tests.alerting.test_review import sales
from tests.fixtures.im import IMServer

from ._samples import spec_for

TAKES_DIGESTS = ("dingtalk", "feishu", "slack", "teams", "wecom")


def test_which_channels_take_digests() -> None:
    assert tuple(k for k, cls in sorted(NOTIFIERS.items()) if hasattr(cls, "send_digest")) == ("dingtalk", "email",
                                                                                               "feishu", "slack",
                                                                                               "teams", "wecom")


@pytest.mark.parametrize("kind", TAKES_DIGESTS)
async def test_digest_reaches_the_vendor(kind: str, im_server: Callable[..., IMServer]) -> None:
    server = im_server(kind, secret={"dingtalk": "SEC0123456789abcdef", "feishu": "fs-secret"}.get(kind))
    notifier = build_notifier(spec_for(server))
    assert isinstance(notifier, DigestSender)
    r = sales()
    markdown = render_markdown(r, "zh", "Asia/Shanghai")
    outcome = await notifier.send_digest(DigestMessage("digest|sales|1|x", title(r, "zh", "Asia/Shanghai"), "",
                                                       markdown, ""))
    assert outcome.delivered, outcome.reason
    assert server.problems == [] and len(server.requests) == 1
    sent = json.dumps(server.requests[0].json, ensure_ascii=False)
    assert "准确率" in sent and "50%" in sent and "orders/low" in sent


async def test_wecom_digest_is_cut_to_the_robot_limit(im_server: Callable[..., IMServer]) -> None:
    server = im_server("wecom")
    notifier = build_notifier(spec_for(server))
    assert isinstance(notifier, DigestSender)
    long = "### title\n" + "\n".join(f"- 第 {i} 行告警" for i in range(2000))
    outcome = await notifier.send_digest(DigestMessage("d", "t", "", long, ""))
    assert outcome.delivered and server.problems == []
    content = server.requests[0].json["markdown"]["content"]
    assert len(content.encode()) <= 4096 and content.endswith("\n…") and "- 第 0 行告警" in content
