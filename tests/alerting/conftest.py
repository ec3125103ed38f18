"""Shared fixtures for the alerting core tests: a fake clock, a real local webhook receiver, Redis, and ``store``:
each test of a module that uses it runs on the memory store and on a real Redis."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from alerting.action_api import add_action_routes
from alerting.actions import ActionLinks
from alerting.config import AlertingConfig, KpiMeta, build_alerting_config
from alerting.memory_store import MemoryStore
from alerting.redis_store import RedisStore
from alerting.samples import Sample
from alerting.service import AlertService
from alerting.store import Store

__all__ = ["Clock", "Receiver", "make_config"]

T0 = 1_700_000_000.0


class Clock:
    """An injected clock: epoch seconds that only move when the test says so."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


@dataclass
class Receiver:
    """A real HTTP endpoint recording Alertmanager-style webhook posts; ``down`` makes it answer 503;
    ``stop()``/``start()`` close and reopen the port (connection refused in between); ``delay_s`` answers
    that late (a slow endpoint); ``on_post`` is called with each accepted post before the answer."""

    port: int = 0
    down: bool = False
    posts: list[dict[str, Any]] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    refused_while_down: int = 0
    hang: bool = False  # accept the request, never answer (a send in flight when its worker dies)
    hung: list[str] = field(default_factory=list)
    delay_s: float = 0.0
    in_flight: int = 0
    max_in_flight: int = 0
    on_post: Callable[[dict[str, Any]], object] | None = None
    _runner: web.AppRunner | None = None
    _release: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def _handle(self, request: web.Request) -> web.Response:
        if self.down:
            self.refused_while_down += 1
            return web.Response(status=503, text="maintenance")
        if self.hang:
            self.hung.append(request.headers.get("Idempotency-Key", ""))
            await self._release.wait()
            return web.Response(status=499, text="client gone")
        post = json.loads(await request.text())
        self.posts.append(post)
        self.keys.append(request.headers.get("Idempotency-Key", ""))
        if self.on_post is not None:
            self.on_post(post)
        if self.delay_s:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            await asyncio.sleep(self.delay_s)
            self.in_flight -= 1
        return web.Response(text="ok")

    async def start(self) -> None:
        self._release = asyncio.Event()
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await site.start()
        if self.port == 0:
            self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        self._release.set()  # let hanging handlers finish, or cleanup waits for them
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def alerts(self) -> list[tuple[str, str, str]]:
        """(notification status, alertname, alert status) for every alert of every post, in order."""
        return [(p["status"], a["labels"]["alertname"], a["status"]) for p in self.posts for a in p["alerts"]]

    def unique(self) -> int:
        """Distinct notifications received (by Idempotency-Key), as an idempotent receiver counts them."""
        return len(set(self.keys))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    await rec.start()
    try:
        yield rec
    finally:
        await rec.stop()


def make_config(
    rules: Mapping[str, Sequence[Mapping[str, Any]]],
    routes: Sequence[Mapping[str, Any]],
    channels: Mapping[str, Mapping[str, Any]],
    owners: Mapping[str, str] | None = None,
) -> AlertingConfig:
    """A validated config; every KPI in ``rules`` gets a KpiMeta (owner from ``owners``)."""
    owners = owners or {}
    kpis = {
        k: KpiMeta(
            name=k, title={"en": k.replace("_", " ").title()}, unit="orders", owner=owners.get(k, "shop")
        )
        for k in rules
    }
    return build_alerting_config(rules, routes, channels, kpis)


def hook(url: str) -> dict[str, Any]:
    return {"type": "webhook", "url": url, "timeout_seconds": 2}


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest, redis_server: str, redis_prefix: str) -> AsyncIterator[Store]:
    """The memory store, then a real Redis (its keys deleted after the test)."""
    if request.param == "memory":
        yield MemoryStore()
        return
    redis_store = RedisStore.from_url(redis_server, prefix=redis_prefix)
    yield redis_store
    keys = [k async for k in redis_store.redis.scan_iter(match=redis_prefix + "*")]
    if keys:
        await redis_store.redis.delete(*keys)
    await redis_store.aclose()


#: the signed message links of the action-link tests (test_action_links, test_feedback_paths)
LINKS = ActionLinks("https://kpimon.example", "k" * 32)


@pytest.fixture
async def link_svc(clock: Clock) -> AlertService:
    """An alert service over a memory store with one firing alert (orders below 10 in east) to act on."""
    service = AlertService(make_config({"orders": [{"type": "threshold", "name": "low", "below": 10}]}, [], {}),
                           MemoryStore(), clock=clock)
    await service.observe(Sample("orders", {"region": "east"}, clock.now - 60, clock.now, 3.0))
    return service


@pytest.fixture
async def link_client(link_svc: AlertService, clock: Clock) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    """``/act/{token}`` of :data:`LINKS` over ``link_svc``'s store."""
    app = web.Application()
    add_action_routes(app, link_svc.store, LINKS, clock=clock)
    async with TestClient(TestServer(app)) as c:
        yield c
