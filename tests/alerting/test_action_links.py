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


async def test_false_alarm_is_acknowledged_and_recorded_once(svc: AlertService, client: Client, clock: Clock) -> None:
    path = await _path(svc, "false_alarm", clock.now)
    assert (await client.post(path)).status == 200
    again = await client.post(path)  # clicked twice
    assert again.status == 200 and "Already recorded" in await again.text()
    [feedback] = await svc.store.list_audit(kind="feedback")
    assert feedback["verdict"] == "false_alarm" and feedback["kpi"] == "orders" and feedback["rule"] == "low"
    assert feedback["who"] == "message link" and feedback["raised"]["value"] == 3.0
    assert len(await svc.store.list_acks()) == 1 and len(await svc.store.list_audit(kind="ack")) == 1


async def test_expected_asks_for_the_reason(svc: AlertService, client: Client, clock: Clock) -> None:
    path = await _path(svc, "expected", clock.now)
    page = await (await client.get(path)).text()
    assert '<input name="reason" required' in page
    assert (await client.post(path, data={"reason": " "})).status == 400
    assert await svc.store.list_audit(kind="feedback") == []
    assert (await client.post(path, data={"reason": "promotion"})).status == 200
    [feedback] = await svc.store.list_audit(kind="feedback")
    assert (feedback["verdict"], feedback["reason"]) == ("expected", "promotion")
    [ack] = await svc.store.list_acks()
    assert ack.comment == "expected: promotion"


async def test_true_alarm_is_recorded_and_can_be_changed_after_the_alert_is_gone(
    svc: AlertService, client: Client, clock: Clock
) -> None:
    true_path, false_path = await _path(svc, "true_alarm", clock.now), await _path(svc, "false_alarm", clock.now)
    ack_path = await _path(svc, "ack", clock.now)
    assert (await client.post(true_path)).status == 200
    assert await svc.store.list_acks() == []  # a true alarm still needs someone to act
    [alert] = await svc.store.list_alerts()
    await svc.store.delete_alert(alert.fingerprint)  # resolved and told
    assert (await client.get(false_path)).status == 200
    assert (await client.post(false_path)).status == 200
    newest, oldest = await svc.store.list_audit(kind="feedback")
    assert (oldest["verdict"], newest["verdict"], newest["previous"]) == ("true_alarm", "false_alarm", "true_alarm")
    assert (await client.post(ack_path)).status == 404  # an ack needs the alert


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
