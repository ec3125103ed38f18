"""The ack / silence / false-alarm links of messages, clicked on a real local server over the service's store."""

from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import TestClient

from alerting.actions import ActionLinks
from alerting.service import AlertService
from tests.alerting.conftest import LINKS, Clock

Client = TestClient[web.Request, web.Application]


async def _path(link_svc: AlertService, action: str, now: float) -> str:
    [alert] = await link_svc.store.list_alerts()
    assert alert.starts_at is not None
    return "/act/" + LINKS.urls(alert.fingerprint, alert.starts_at, now=now)[action].rsplit("/", 1)[1]


async def test_get_only_asks_post_acknowledges(link_svc: AlertService, link_client: Client, clock: Clock) -> None:
    path = await _path(link_svc, "ack", clock.now)
    page = await link_client.get(path)
    assert page.status == 200 and "<form method=\"post\">" in await page.text()
    assert await link_svc.store.list_acks() == []  # a link preview changes nothing
    done = await link_client.post(path)
    assert done.status == 200
    [ack] = await link_svc.store.list_acks()
    assert ack.by == "message link"


async def test_silence_mutes_this_series_for_two_hours(link_svc: AlertService, link_client: Client, clock: Clock) -> None:
    assert (await link_client.post(await _path(link_svc, "silence", clock.now))).status == 200
    [silence] = await link_svc.store.list_silences()
    assert sorted(str(m) for m in silence.matchers) == ['alertname="low"', 'kpi="orders"', 'region="east"']
    assert silence.ends_at - silence.starts_at == 7200


async def test_false_alarm_is_acknowledged_and_recorded_once(link_svc: AlertService, link_client: Client, clock: Clock) -> None:
    path = await _path(link_svc, "false_alarm", clock.now)
    assert (await link_client.post(path)).status == 200
    again = await link_client.post(path)  # clicked twice
    assert again.status == 200 and "Already recorded" in await again.text()
    [feedback] = await link_svc.store.list_audit(kind="feedback")
    assert feedback["verdict"] == "false_alarm" and feedback["kpi"] == "orders" and feedback["rule"] == "low"
    assert feedback["who"] == "message link" and feedback["raised"]["value"] == 3.0
    assert len(await link_svc.store.list_acks()) == 1 and len(await link_svc.store.list_audit(kind="ack")) == 1


async def test_expected_asks_for_the_reason(link_svc: AlertService, link_client: Client, clock: Clock) -> None:
    path = await _path(link_svc, "expected", clock.now)
    page = await (await link_client.get(path)).text()
    assert '<input name="reason" required' in page
    assert (await link_client.post(path, data={"reason": " "})).status == 400
    assert await link_svc.store.list_audit(kind="feedback") == []
    assert (await link_client.post(path, data={"reason": "promotion"})).status == 200
    [feedback] = await link_svc.store.list_audit(kind="feedback")
    assert (feedback["verdict"], feedback["reason"]) == ("expected", "promotion")
    [ack] = await link_svc.store.list_acks()
    assert ack.comment == "expected: promotion"


async def test_true_alarm_is_recorded_and_can_be_changed_after_the_alert_is_gone(
    link_svc: AlertService, link_client: Client, clock: Clock
) -> None:
    true_path, false_path = await _path(link_svc, "true_alarm", clock.now), await _path(link_svc, "false_alarm", clock.now)
    ack_path = await _path(link_svc, "ack", clock.now)
    assert (await link_client.post(true_path)).status == 200
    assert await link_svc.store.list_acks() == []  # a true alarm still needs someone to act
    [alert] = await link_svc.store.list_alerts()
    await link_svc.store.delete_alert(alert.fingerprint)  # resolved and told
    assert (await link_client.get(false_path)).status == 200
    assert (await link_client.post(false_path)).status == 200
    newest, oldest = await link_svc.store.list_audit(kind="feedback")
    assert (oldest["verdict"], newest["verdict"], newest["previous"]) == ("true_alarm", "false_alarm", "true_alarm")
    assert (await link_client.post(ack_path)).status == 404  # an ack needs the alert


async def test_forged_expired_and_stale_links_do_nothing(link_svc: AlertService, link_client: Client, clock: Clock) -> None:
    path = await _path(link_svc, "ack", clock.now)
    assert (await link_client.post(path[:-1] + ("0" if path[-1] != "0" else "1"))).status == 403
    other = ActionLinks("https://kpimon.example", "x" * 32)
    [alert] = await link_svc.store.list_alerts()
    forged = other.urls(alert.fingerprint, alert.starts_at or 0.0, now=clock.now)["ack"].rsplit("/", 1)[1]
    assert (await link_client.post(f"/act/{forged}")).status == 403
    old = await _path(link_svc, "ack", clock.now - 8 * 86400)  # made more than a week ago
    assert (await link_client.post(old)).status == 403
    earlier = "/act/" + LINKS.urls(alert.fingerprint, (alert.starts_at or 0.0) - 600, now=clock.now)["ack"].rsplit("/", 1)[1]
    assert (await link_client.post(earlier)).status == 409  # a link of an earlier incident
    assert await link_svc.store.list_acks() == []
