"""Every HTTP notifier maps transport failures and statuses the same way: 5xx/429/timeouts/refused retry."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from alerting.notifiers.registry import build_notifier
from tests.fixtures.im import VENDORS, IMServer, Reply

from ._samples import notification, spec_for


@pytest.mark.parametrize("vendor", VENDORS)
@pytest.mark.parametrize(
    ("reply", "retryable"),
    [
        (Reply(500, text="internal error"), True),
        (Reply(502, text=""), True),
        (Reply(503, json={"error": "unavailable"}), True),
        (Reply(429, text="rate limited"), True),
        (Reply(400, text="bad request"), False),
        (Reply(403, text="forbidden"), False),
        (Reply(404, text="not found"), False),
    ],
)
async def test_status_classification(
    im_server: Callable[..., IMServer], vendor: str, reply: Reply, retryable: bool
) -> None:
    server = im_server(vendor)
    server.reply(reply)
    outcome = await build_notifier(spec_for(server)).send(notification())
    assert (outcome.delivered, outcome.retryable) == (False, retryable)
    assert server.problems == []


@pytest.mark.parametrize("vendor", VENDORS)
async def test_timeout_is_retryable(im_server: Callable[..., IMServer], vendor: str) -> None:
    server = im_server(vendor)
    server.reply(Reply(delay=2.0))
    outcome = await build_notifier(spec_for(server, timeout_seconds=0.2)).send(notification())
    assert (outcome.delivered, outcome.retryable) == (False, True)
    assert outcome.reason.startswith("timeout after 0.2s")


@pytest.mark.parametrize("vendor", VENDORS)
async def test_connection_refused_is_retryable(im_server: Callable[..., IMServer], vendor: str) -> None:
    server = im_server(vendor)
    url = server.url.replace(f":{server.port}/", ":1/")  # nothing listens on port 1
    outcome = await build_notifier(spec_for(server, url=url)).send(notification())
    assert (outcome.delivered, outcome.retryable) == (False, True)
    assert outcome.reason.startswith("connection error")
