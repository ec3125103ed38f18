"""The ack / silence / false-alarm links of messages, clicked on a real local server over the service's store."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from alerting.action_api import add_action_routes
from alerting.actions import ActionLinks
from alerting.memory_store import MemoryStore
from alerting.samples import Sample
from alerting.service import AlertService
from tests.alerting.conftest import Clock, make_config

LINKS = ActionLinks("https://kpimon.example", "k" * 32)
RULES = {"orders": [{"type": "threshold", "name": "low", "below": 10}]}
Client = TestClient[web.Request, web.Application]


@pytest.fixture
async def svc(clock: Clock) -> AlertService:
    service = AlertService(make_config(RULES, [], {}), MemoryStore(), clock=clock)
    await service.observe(Sample("orders", {"region": "east"}, clock.now - 60, clock.now, 3.0))
    return service


@pytest.fixture
async def client(svc: AlertService, clock: Clock) -> AsyncIterator[Client]:
    app = web.Application()
    add_action_routes(app, svc.store, LINKS, clock=clock)
    async with TestClient(TestServer(app)) as c:
        yield c


async def _path(svc: AlertService, action: str, now: float) -> str:
    [alert] = await svc.store.list_alerts()
    assert alert.starts_at is not None
    return "/act/" + LINKS.urls(alert.fingerprint, alert.starts_at, now=now)[action].rsplit("/", 1)[1]


async def test_get_only_asks_post_acknowledges(svc: AlertService, client: Client, clock: Clock) -> None:
    path = await _path(svc, "ack", clock.now)
    page = await client.get(path)
    assert page.status == 200 and "<form method=\"post\">" in await page.text()
    assert await svc.store.list_acks() == []  # a link preview changes nothing
    done = await client.post(path)
    assert done.status == 200
    [ack] = await svc.store.list_acks()
    assert ack.by == "message link"


async def test_silence_mutes_this_series_for_two_hours(svc: AlertService, client: Client, clock: Clock) -> None:
    assert (await client.post(await _path(svc, "silence", clock.now))).status == 200
    [silence] = await svc.store.list_silences()
    assert sorted(str(m) for m in silence.matchers) == ['alertname="low"', 'kpi="orders"', 'region="east"']
    assert silence.ends_at - silence.starts_at == 7200


async def test_false_alarm_is_acknowledged_and_recorded(svc: AlertService, client: Client, clock: Clock) -> None:
    assert (await client.post(await _path(svc, "false_alarm", clock.now))).status == 200
    [feedback] = await svc.store.list_audit(kind="feedback")
    assert feedback["verdict"] == "false_alarm" and feedback["kpi"] == "orders" and feedback["rule"] == "low"
    assert len(await svc.store.list_acks()) == 1


async def test_forged_expired_and_stale_links_do_nothing(svc: AlertService, client: Client, clock: Clock) -> None:
    path = await _path(svc, "ack", clock.now)
    assert (await client.post(path[:-1] + ("0" if path[-1] != "0" else "1"))).status == 403
    other = ActionLinks("https://kpimon.example", "x" * 32)
    [alert] = await svc.store.list_alerts()
    forged = other.urls(alert.fingerprint, alert.starts_at or 0.0, now=clock.now)["ack"].rsplit("/", 1)[1]
    assert (await client.post(f"/act/{forged}")).status == 403
    old = await _path(svc, "ack", clock.now - 8 * 86400)  # made more than a week ago
    assert (await client.post(old)).status == 403
    earlier = "/act/" + LINKS.urls(alert.fingerprint, (alert.starts_at or 0.0) - 600, now=clock.now)["ack"].rsplit("/", 1)[1]
    assert (await client.post(earlier)).status == 409  # a link of an earlier incident
    assert await svc.store.list_acks() == []
