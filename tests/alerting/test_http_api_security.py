"""The admin API's security defaults on a real local server over a real Redis: numbers must be finite numbers,
the audit trail names the authenticated caller (not what the client claims), and secrets are never echoed."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from alerting.http_api import make_api, parse_api_tokens
from alerting.redis_store import RedisStore
from alerting.service import AlertService
from tests.alerting.conftest import Clock, make_config

ANN, BOB = "ann-token-0123456789", "bob-token-9876543210"
TOKENS = f"ann:{ANN}\nbob:{BOB}"
RULES = {
    "orders": [
        {"type": "threshold", "name": "low", "below": 10, "for": "1m"},
        {"type": "anomaly", "name": "odd", "min_score": 0.5},
    ]
}
Client = TestClient[web.Request, web.Application]


def bearer(token: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **extra}


async def serve(store: RedisStore, tokens: str, clock: Clock) -> Client:
    client = TestClient(TestServer(make_api(store, tokens, clock=clock)))
    await client.start_server()
    return client


@pytest.fixture
async def api(redis_store: RedisStore, clock: Clock) -> AsyncIterator[Client]:
    client = await serve(redis_store, TOKENS, clock)
    yield client
    await client.close()


@pytest.fixture
async def svc(redis_store: RedisStore, clock: Clock) -> AlertService:
    service = AlertService(make_config(RULES, [], {}), redis_store, clock=clock)
    await service.tick()  # publishes its rules
    return service


NOT_A_NUMBER = [
    (b'{"below": NaN}', "finite"),
    (b'{"below": Infinity}', "finite"),
    (b'{"below": -Infinity}', "finite"),
    (b'{"below": 1e999}', "finite"),
    (b'{"below": "NaN"}', "below must be a finite number"),
    (b'{"below": "5"}', "below must be a finite number"),
    (b'{"below": true}', "below must be a finite number"),
    (b'{"outside": [1, NaN]}', "finite"),
    (b'{"outside": ["1", 5]}', "outside must be"),
    (b'{"for": NaN}', "finite"),
    (b'{"for": true}', "for"),
    (b'{"enabled": "false"}', "enabled must be true or false"),
    (b'{"enabled": 0}', "enabled must be true or false"),
]


@pytest.mark.parametrize(("body", "message"), NOT_A_NUMBER)
async def test_non_finite_and_non_number_thresholds_are_refused_and_nothing_applied(
    api: Client, svc: AlertService, redis_store: RedisStore, body: bytes, message: str
) -> None:
    version = await redis_store.overrides_version()
    resp = await api.put(
        "/api/thresholds/orders/low", headers=bearer(ANN, **{"Content-Type": "application/json"}), data=body
    )
    assert resp.status == 400, await resp.text()
    assert message in (await resp.json())["error"]
    assert await redis_store.get_overrides() == {}
    assert await redis_store.overrides_version() == version
    assert await redis_store.list_audit() == []
    assert await svc.reload_overrides() == 0
    assert svc.config.rule("orders", "low").below == 10  # type: ignore[union-attr]
    history = await api.get("/api/thresholds/history", headers=bearer(ANN))
    assert await history.json() == []  # and the history stays valid JSON


@pytest.mark.parametrize(
    "body",
    [
        b'{"matchers": ["kpi=orders"], "duration": NaN}',
        b'{"matchers": ["kpi=orders"], "duration": Infinity}',
        b'{"matchers": ["kpi=orders"], "duration": "NaN"}',
        b'{"matchers": ["kpi=orders"], "duration": true}',
        b'{"matchers": ["kpi=orders"], "duration": null}',
        b'{"matchers": ["kpi=orders"], "starts_at": NaN, "duration": "1h"}',
        b'{"matchers": ["kpi=orders"], "starts_at": "1700000000", "duration": "1h"}',
        b'{"matchers": ["kpi=orders"], "ends_at": 1e999}',
        b'{"matchers": ["kpi=orders"], "ends_at": true}',
        b'{"matchers": ["kpi=orders"], "ends_at": null}',
    ],
)
async def test_silence_numbers_must_be_finite_numbers(api: Client, redis_store: RedisStore, body: bytes) -> None:
    resp = await api.post("/api/silences", headers=bearer(ANN, **{"Content-Type": "application/json"}), data=body)
    assert resp.status == 400, await resp.text()
    assert (await resp.json())["error"]
    assert await redis_store.list_silences() == []
    assert await redis_store.list_audit() == []


async def test_who_is_the_authenticated_caller_not_the_clients_claim(
    api: Client, svc: AlertService, redis_store: RedisStore
) -> None:
    resp = await api.put(
        "/api/thresholds/orders/low?who=mallory&comment=promo",
        headers=bearer(ANN, **{"X-Kpimon-User": "root"}),
        json={"below": 5},
    )
    assert resp.status == 200, await resp.text()
    resp = await api.put("/api/thresholds/orders/low?who=bob", headers=bearer(BOB), json={"below": 6})
    assert resp.status == 200
    resp = await api.post("/api/silences?who=eve", headers=bearer(BOB), json={"matchers": ["kpi=x"], "duration": "1h"})
    assert resp.status == 201
    assert (await resp.json())["created_by"] == "bob"
    history = await (await api.get("/api/thresholds/history", headers=bearer(BOB))).json()
    assert [(h["who"], h.get("on_behalf_of")) for h in history] == [("bob", None), ("ann", "root")]
    audit = await redis_store.list_audit()
    assert sorted((e["kind"], e["who"], e.get("on_behalf_of")) for e in audit) == [
        ("silence", "bob", "eve"),
        ("threshold", "ann", "root"),
        ("threshold", "bob", None),
    ]


async def test_a_single_plain_token_is_caller_api_token(
    redis_store: RedisStore, svc: AlertService, clock: Clock
) -> None:
    client = await serve(redis_store, ANN, clock)
    try:
        resp = await client.put("/api/thresholds/orders/low", headers=bearer(ANN), json={"below": 5})
        assert resp.status == 200
        [entry] = await (await client.get("/api/thresholds/history", headers=bearer(ANN))).json()
        assert entry["who"] == "api-token"
    finally:
        await client.close()


async def test_the_api_never_echoes_a_token(api: Client, svc: AlertService) -> None:
    wrong = BOB[:-1] + "X"
    for headers in (bearer(wrong), bearer(ANN), {"Authorization": ANN}):
        for resp in (
            await api.get("/api/thresholds", headers=headers),
            await api.put("/api/thresholds/orders/low", headers=headers, json={"below": "x"}),
            await api.get("/api/thresholds/history?limit=0", headers=headers),
            await api.post("/api/silences", headers=headers, json={"matchers": ["a="], "duration": "x"}),
        ):
            text = await resp.text()
            assert ANN not in text and BOB not in text and wrong not in text, text


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "no API token"),
        ("short", "at least 16 characters"),
        ("ann:short", "at least 16 characters"),
        (f"ann:{ANN}\nann:{BOB}", "caller 'ann' is given twice"),
        (f"ann:{ANN}\nbob:{ANN}", "the same token"),
        (f"{ANN}\nbob:{BOB}", "name:token"),
        (f"bad name:{ANN}", "caller name"),
    ],
)
def test_bad_token_specs_are_refused_without_echoing_them(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        parse_api_tokens(spec)
    assert ANN not in str(info.value) and BOB not in str(info.value)


def test_token_specs() -> None:
    assert parse_api_tokens(ANN) == {ANN: "api-token"}
    assert parse_api_tokens(f"# operators\nann:{ANN}\n\n bob:{BOB} \n") == {ANN: "ann", BOB: "bob"}
    assert parse_api_tokens(f"ann:{ANN},bob:{BOB}") == {ANN: "ann", BOB: "bob"}
