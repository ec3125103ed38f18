"""The tuning/alerts HTTP API on a real local server, over a real Redis, next to a running service."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from alerting.http_api import make_api
from alerting.redis_store import RedisStore
from alerting.samples import Sample
from alerting.service import AlertService
from tests.alerting.conftest import Clock, make_config

TOKEN = "s3cret-token-12345"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
RULES = {
    "orders": [
        {"type": "threshold", "name": "low", "below": 10, "for": "1m"},
        {"type": "anomaly", "name": "odd", "min_score": 0.5},
    ]
}


@pytest.fixture
async def api(
    redis_store: RedisStore, clock: Clock
) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    client = TestClient(TestServer(make_api(redis_store, f"ann:{TOKEN}", clock=clock)))
    await client.start_server()
    yield client
    await client.close()


@pytest.fixture
async def svc(redis_store: RedisStore, clock: Clock) -> AlertService:
    service = AlertService(make_config(RULES, [], {}), redis_store, clock=clock)
    await service.tick()  # publishes its rules
    return service


async def observe(svc: AlertService, clock: Clock, value: float) -> list[str]:
    clock.advance(60)
    return [
        f"{t.rule}:{t.new}" for t in await svc.observe(Sample("orders", {}, clock.now - 60, clock.now, value))
    ]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token-456"},
        {"Authorization": TOKEN},
        {"Authorization": f"Basic {TOKEN}"},
    ],
)
async def test_token_required(api: TestClient[web.Request, web.Application], headers: dict[str, str]) -> None:
    for method, path in [
        ("GET", "/api/thresholds"),
        ("PUT", "/api/thresholds/orders/low"),
        ("GET", "/api/alerts"),
        ("DELETE", "/api/silences/x"),
    ]:
        resp = await api.request(method, path, headers=headers, json={"below": 1})
        assert resp.status == 401
        assert "bearer token" in (await resp.json())["error"]
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")


def test_weak_tokens_are_refused(redis_store: RedisStore) -> None:
    for token in ("short", "fifteen-chars-x"):
        with pytest.raises(ValueError, match="at least 16 characters"):
            make_api(redis_store, token)
    with pytest.raises(ValueError, match="no API token"):
        make_api(redis_store, "")


async def test_threshold_change_reaches_a_running_service(
    api: TestClient[web.Request, web.Application], svc: AlertService, redis_store: RedisStore, clock: Clock
) -> None:
    resp = await api.get("/api/thresholds", headers=AUTH)
    rows = {r["rule"]: r for r in await resp.json()}
    assert rows["low"]["values"]["below"] == 10 and rows["low"]["overridden"] == []
    assert await svc.reload_overrides() == 0

    resp = await api.put(
        "/api/thresholds/orders/low?comment=promo", headers=AUTH, json={"below": 5, "for": "0s"}
    )
    assert resp.status == 200, await resp.text()
    assert await svc.reload_overrides() == 1
    assert await observe(svc, clock, 7) == []  # 7 is no longer below the (new) threshold
    assert await observe(svc, clock, 4) == ["low:firing"]  # and `for` is now 0

    resp = await api.put(
        "/api/thresholds/orders/low", headers=AUTH, json={"below": None}
    )  # back to the catalog
    assert resp.status == 200
    assert await svc.reload_overrides() == 1  # `for` is still overridden
    assert svc.config.rule("orders", "low").below == 10  # type: ignore[union-attr]

    history = await (await api.get("/api/thresholds/history", headers=AUTH)).json()
    assert [(h["field"], h["old"], h["new"], h["who"]) for h in history] == [
        ("below", 5.0, 10.0, "ann"),
        ("below", 10.0, 5.0, "ann"),
        ("for", 60.0, 0.0, "ann"),
    ]
    assert history[1]["at"] == clock.now - 120 and history[1]["comment"] == "promo"


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        ("/api/thresholds/orders/low", {"below": "lots"}, 400, "below must be a finite number"),
        ("/api/thresholds/orders/low", {"above": 5}, 400, "below >= above"),
        ("/api/thresholds/orders/low", {"for": "soon"}, 400, "bad duration"),
        ("/api/thresholds/orders/low", {"severity": "critical"}, 400, "cannot change ['severity']"),
        ("/api/thresholds/orders/low", {}, 400, "give the fields to change"),
        ("/api/thresholds/orders/low", [1], 400, "JSON object"),
        ("/api/thresholds/orders/odd", {"min_score": -1}, 400, "min_score"),
        ("/api/thresholds/orders/nope", {"below": 1}, 404, "no rule 'nope'"),
        ("/api/thresholds/visits/low", {"below": 1}, 404, "no rule"),
    ],
)
async def test_bad_threshold_changes_are_refused_and_nothing_applied(
    api: TestClient[web.Request, web.Application],
    svc: AlertService,
    redis_store: RedisStore,
    path: str,
    body: object,
    status: int,
    message: str,
) -> None:
    version = await redis_store.overrides_version()
    resp = await api.put(path, headers=AUTH, json=body)
    assert resp.status == status
    assert message in (await resp.json())["error"]
    assert await redis_store.get_overrides() == {}
    assert await redis_store.overrides_version() == version
    assert await redis_store.list_audit() == []


async def test_body_must_be_json(api: TestClient[web.Request, web.Application], svc: AlertService) -> None:
    resp = await api.put("/api/thresholds/orders/low", headers=AUTH, data=b"below=5")
    assert resp.status == 400 and "must be JSON" in (await resp.json())["error"]


async def test_alerts_ack_and_silences(
    api: TestClient[web.Request, web.Application], svc: AlertService, clock: Clock
) -> None:
    await observe(svc, clock, 1)
    await observe(svc, clock, 1)
    [alert] = await (await api.get("/api/alerts", headers=AUTH)).json()
    assert (alert["rule"], alert["state"], alert["acked"]) == ("low", "firing", None)
    resp = await api.post(f"/api/alerts/{alert['fingerprint']}/ack", headers=AUTH, json={"comment": "mine"})
    assert resp.status == 200
    [alert] = await (await api.get("/api/alerts", headers=AUTH)).json()
    assert alert["acked"]["by"] == "ann" and alert["acked"]["comment"] == "mine"
    assert (await api.post("/api/alerts/unknown/ack", headers=AUTH)).status == 404

    resp = await api.post("/api/silences", headers=AUTH, json={"matchers": ["kpi=orders"], "duration": "2h"})
    assert resp.status == 201
    silence = await resp.json()
    assert silence["created_by"] == "ann" and silence["ends_at"] == clock.now + 7200
    for bad in (
        {"matchers": ["kpi~orders"], "duration": "2h"},
        {"matchers": ["kpi=orders"]},
        {"matchers": [], "duration": "1h"},
        {"matchers": ["kpi=~("], "duration": "1h"},
        "x",
    ):
        resp = await api.post("/api/silences", headers=AUTH, json=bad)
        assert resp.status == 400, bad
    listed = await (await api.get("/api/silences", headers=AUTH)).json()
    assert [s["id"] for s in listed] == [silence["id"]]
    assert (await api.delete(f"/api/silences/{silence['id']}", headers=AUTH)).status == 200
    assert (await api.delete(f"/api/silences/{silence['id']}", headers=AUTH)).status == 404


async def test_feedback_lands_once_and_is_audited(
    api: TestClient[web.Request, web.Application], svc: AlertService, redis_store: RedisStore, clock: Clock
) -> None:
    await observe(svc, clock, 1)
    await observe(svc, clock, 1)
    [alert] = await (await api.get("/api/alerts", headers=AUTH)).json()
    path = f"/api/alerts/{alert['fingerprint']}/feedback"
    body = {"verdict": "false_alarm", "reason": "a test order"}
    first = await api.post(path, headers={**AUTH, "X-Kpimon-User": "bob"}, json=body)
    assert first.status == 201
    got = await first.json()
    assert got["recorded"] and got["feedback"]["who"] == "ann" and got["feedback"]["incident"] == alert["starts_at"]
    again = await api.post(path, headers=AUTH, json=body)
    assert again.status == 200 and not (await again.json())["recorded"]
    [entry] = await redis_store.list_audit(kind="feedback")
    assert (entry["verdict"], entry["reason"], entry["who"], entry["on_behalf_of"]) == (
        "false_alarm", "a test order", "ann", "bob")
    assert entry["raised"] == {"start": alert["window_start"], "end": alert["window_end"], "value": 1.0}
    for bad, status in (({"verdict": "maybe"}, 400), ({"verdict": "expected"}, 400), ({"reason": "x"}, 400),
                        ({"verdict": "true", "incident": "x"}, 400), ({"verdict": "true", "incident": 1.0}, 404)):
        assert (await api.post(path, headers=AUTH, json=bad)).status == status, bad
    assert (await api.post("/api/alerts/unknown/feedback", headers=AUTH, json=body)).status == 404
    assert (await api.post(path, json=body)).status == 401
    assert len(await redis_store.list_audit(kind="feedback")) == 1
