"""The dead man's switch against a real local HTTP server: pings every interval while the worker ticks, one in
flight at a time, a failing checker counted and logged once per outage, the URL (a secret) never logged."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from streams.heartbeat import Heartbeat


class Checker:
    """A healthchecks.io-like endpoint: records pings; ``status`` is what it answers."""

    def __init__(self) -> None:
        self.pings: list[dict[str, object]] = []
        self.status = 200
        self.url = ""

    async def ping(self, request: web.Request) -> web.Response:
        self.pings.append(await request.json())
        return web.Response(status=self.status, text="OK")


@pytest.fixture
async def checker() -> AsyncIterator[Checker]:
    chk = Checker()
    app = web.Application()
    app.router.add_post("/ping/{token}", chk.ping)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    chk.url = f"http://127.0.0.1:{port}/ping/tok-3f9a"
    yield chk
    await runner.cleanup()


class Ticks:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def _tick(hb: Heartbeat, clock: Ticks, seconds: float) -> None:
    clock.now += seconds
    hb.maybe_beat()
    await hb.flush()                 # the ping in flight against the real server, if one was started


async def test_pings_every_interval_while_ticking(checker: Checker) -> None:
    clock = Ticks()
    hb = Heartbeat(checker.url, interval_s=60.0, app_id="shop", clock=clock)
    for _ in range(10):                   # ticks every 15 s for 150 s: pings at 0, 60, 120
        await _tick(hb, clock, 15.0)
    assert [p["app_id"] for p in checker.pings] == ["shop"] * 3
    assert hb.outcomes == {"ok": 3}


async def test_a_failing_checker_is_counted_and_logged_once_without_the_url(
    checker: Checker, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Ticks()
    hb = Heartbeat(checker.url, interval_s=10.0, clock=clock)
    checker.status = 503
    with caplog.at_level(logging.WARNING, logger="streams.heartbeat"):
        for _ in range(3):
            await _tick(hb, clock, 10.0)
        checker.status = 200
        await _tick(hb, clock, 10.0)
    assert hb.outcomes == {"failed": 3, "ok": 1}
    messages = [r.getMessage() for r in caplog.records]
    assert len([m for m in messages if "failed (HTTP 503)" in m]) == 1
    assert any("works again" in m for m in messages)
    assert not any("tok-3f9a" in m for m in messages)


def test_a_bad_url_or_interval_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="KPIMON_HEARTBEAT_URL must start with http"):
        Heartbeat("hc-ping.com/abc")
    with pytest.raises(ValueError, match="KPIMON_HEARTBEAT_INTERVAL must be > 0"):
        Heartbeat("https://hc-ping.com/abc", interval_s=0)
