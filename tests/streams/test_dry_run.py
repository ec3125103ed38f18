"""Dry-run tuning: ``kpimon threshold set … --dry-run 1d`` and ``PUT /api/thresholds/…?dry_run=1d`` answer with the
backtest of the change over the worker's own ``kpi.values`` (embedded broker) and apply nothing; the audit trail
(real Redis) records the dry run, and a change applied with ``--backtest`` keeps the figures next to it."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from alerting.admin import published_rules
from alerting.http_api import make_api
from alerting.redis_store import RedisStore
from catalog import parse_catalog
from kpimon.wiring import values_dry_run
from streams.backtest import Judge, replay
from streams.plan import compile_plan
from tests.fixtures.kafka_io import produce_to

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
MIN = 60_000
TOKEN = "dry-run-token-0123456789"
CATALOG = """
version: 1
defaults:
  window: {type: tumbling, size: 1m, grace: 10s}
sources:
  orders: {topic: dr.orders}
kpis:
  - name: orders
    source: orders
    measure: count
    dimensions: [region]
    detector: {enabled: false}
    alerts:
      - {name: low, type: threshold, below: 5, for: 2m, severity: critical}
"""


def values_of_the_last_hour(now_ms: int) -> list[tuple[int, bytes]]:
    """kpi.values records of 60 minutes ending now: 10 orders a minute in east and west, east 1 a minute in minutes
    20-29 (the incident): `below: 5` fires on east once, `below: 1` would not fire at all."""
    t0 = (now_ms - 61 * MIN) // MIN * MIN
    events = [{"ts": t0 + m * MIN + i * 1000, "region": reg}
              for m in range(61) for reg in ("east", "west") for i in range(1 if reg == "east" and 20 <= m < 30 else 10)]
    cat = parse_catalog(CATALOG)
    history = replay(compile_plan(cat), {"orders": events})
    return [(0, orjson.dumps(v.to_record())) for _, vals in history.steps for v in vals]


@pytest.fixture(scope="module")
def values_topic(broker: Any) -> str:
    asyncio.run(produce_to(broker.bootstrap, "dr.kpi.values", values_of_the_last_hour(int(time.time() * 1000))))
    return "dr.kpi.values"


async def published(store: RedisStore) -> None:
    """The rules as a running worker publishes them (what tuning validates against)."""
    await store.publish_rules(published_rules(Judge.of(parse_catalog(CATALOG)).alerting))


def cli(*args: str, cwd: Path, redis_url: str, prefix: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kpimon", "threshold", "--redis-url", redis_url, "--prefix", prefix,
                           "set", *args], capture_output=True, text=True, cwd=cwd, timeout=300,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})


async def test_cli_dry_run_applies_nothing_and_is_audited(broker: Any, values_topic: str, redis_store: RedisStore,
                                                          redis_server: str, redis_prefix: str,
                                                          tmp_path: Path) -> None:
    await published(redis_store)
    (tmp_path / "cat.yaml").write_text(CATALOG)
    common = ("-c", "cat.yaml", "--broker", broker.bootstrap, "--values-topic", values_topic, "--who", "ana")
    done = await asyncio.to_thread(cli, "orders", "low", "below=1", "--dry-run", "1d", *common, cwd=tmp_path,
                                   redis_url=redis_server, prefix=redis_prefix)
    assert done.returncode == 0, done.stderr
    assert "current      1 alert(s) on 1 series, 8.0 alert-minutes" in done.stdout
    assert "proposed     0 alert(s) on 0 series, 0.0 alert-minutes" in done.stdout
    assert "nothing applied" in done.stdout
    assert await redis_store.get_overrides() == {}                       # the rule the workers run is unchanged
    [entry] = await redis_store.list_audit(kind="dry_run")
    assert (entry["who"], entry["kpi"], entry["rule"], entry["fields"]) == ("ana", "orders", "low", {"below": 1})
    assert entry["backtest"]["current"] == {"fired": 1, "alert_minutes": 8.0, "series": 1}
    assert entry["backtest"]["proposed"] == {"fired": 0, "alert_minutes": 0.0, "series": 0}
    assert await redis_store.list_audit(kind="threshold") == []
    # --backtest: the same figures, then applied; the threshold audit entry keeps them
    done = await asyncio.to_thread(cli, "orders", "low", "below=1", "--backtest", "1d", *common, cwd=tmp_path,
                                   redis_url=redis_server, prefix=redis_prefix)
    assert done.returncode == 0, done.stderr
    assert await redis_store.get_overrides() == {("orders", "low"): {"below": 1}}
    [change] = await redis_store.list_audit(kind="threshold")
    assert (change["old"], change["new"], change["backtest"]["proposed"]["fired"]) == (5, 1, 0)
    # the next dry run starts from the override now in effect: back to 5 would fire again
    done = await asyncio.to_thread(cli, "orders", "low", "below=5", "--dry-run", "1d", *common, cwd=tmp_path,
                                   redis_url=redis_server, prefix=redis_prefix)
    assert "current      0 alert(s)" in done.stdout and "proposed     1 alert(s)" in done.stdout


async def test_cli_dry_run_needs_the_catalog(redis_server: str, redis_prefix: str, tmp_path: Path) -> None:
    done = await asyncio.to_thread(cli, "orders", "low", "below=1", "--dry-run", "1d", cwd=tmp_path,
                                   redis_url=redis_server, prefix=redis_prefix)
    assert done.returncode == 2 and "need the workers' catalog: -c CATALOG" in done.stderr


@pytest.fixture
async def api(broker: Any, values_topic: str, redis_store: RedisStore) -> AsyncIterator[TestClient[web.Request,
                                                                                                  web.Application]]:
    await published(redis_store)
    runner = values_dry_run(parse_catalog(CATALOG), broker.bootstrap, values_topic)
    client = TestClient(TestServer(make_api(redis_store, f"ops:{TOKEN}", dry_run=runner)))
    await client.start_server()
    yield client
    await client.close()


async def test_api_dry_run_answers_the_backtest_and_applies_nothing(
        api: TestClient[web.Request, web.Application], redis_store: RedisStore) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    resp = await api.put("/api/thresholds/orders/low?dry_run=1d", json={"below": 1}, headers=auth)
    body = await resp.json()
    assert resp.status == 200, body
    assert body["applied"] is False
    assert (body["backtest"]["current"]["fired"], body["backtest"]["proposed"]["fired"]) == (1, 0)
    assert body["backtest"]["current"]["rows"][0]["series"] == {"region": "east"}
    assert await redis_store.get_overrides() == {}
    [entry] = await redis_store.list_audit(kind="dry_run")
    assert entry["who"] == "ops" and entry["backtest"]["proposed"]["fired"] == 0
    # a longer `for` fires later and for less time; ?backtest= applies it with the figures in the audit
    resp = await api.put("/api/thresholds/orders/low?backtest=1d", json={"for": "5m"}, headers=auth)
    body = await resp.json()
    assert resp.status == 200, body
    assert body["backtest"]["proposed"]["alert_minutes"] == 5.0 and body["changed"][0]["backtest"]["days"] == 1
    assert await redis_store.get_overrides() == {("orders", "low"): {"for": 300.0}}


async def test_api_dry_run_refusals(api: TestClient[web.Request, web.Application], redis_store: RedisStore) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    for query, body, status, text in (
        ("dry_run=soon", {"below": 1}, 400, "dry_run:"),
        ("dry_run=400d", {"below": 1}, 400, "up to 90d"),
        ("dry_run=1d&backtest=1d", {"below": 1}, 400, "not both"),
        ("dry_run=1d", {"below": "x"}, 400, "below must be a finite number"),
        ("dry_run=1d", {"nope": 1}, 400, "cannot change"),
    ):
        resp = await api.put(f"/api/thresholds/orders/low?{query}", json=body, headers=auth)
        assert (resp.status, text in (await resp.json())["error"]) == (status, True), (query, await resp.text())
    assert await redis_store.get_overrides() == {} and await redis_store.list_audit(kind="dry_run") == []
    bare = TestClient(TestServer(make_api(redis_store, f"ops:{TOKEN}")))
    await bare.start_server()
    try:
        resp = await bare.put("/api/thresholds/orders/low?dry_run=1d", json={"below": 1}, headers=auth)
        assert resp.status == 501 and "--dry-run 7d" in json.dumps(await resp.json())
    finally:
        await bare.close()


async def test_a_tuning_proposal_is_backtested_over_its_period(broker: Any, values_topic: str) -> None:
    """The review's seam (alerting.digest_job.ProposalBacktest) as the worker wires it: a proposal to move `low`
    to below 1 would have fired nothing in the hour where the rule in effect fired once on east."""
    from alerting.tuning import Proposal, with_backtest
    from kpimon.wiring import proposal_backtest

    run = proposal_backtest(parse_catalog(CATALOG), broker.bootstrap, values_topic)
    now = time.time()
    proposal = Proposal("sales", "orders", "low", {"below": 1}, "noisy")
    figures = await run(proposal, {}, now - 86400, now)
    assert figures["current"] == {"fired": 1, "alert_minutes": 8.0, "series": 1}
    assert figures["proposed"] == {"fired": 0, "alert_minutes": 0.0, "series": 0}
    assert figures["days"] == 1 and figures["windows"] > 100
    # the overrides in effect are the starting point: with below already at 1, below 5 is the proposal that fires
    back = await run(Proposal("sales", "orders", "low", {"below": 5}, "quiet"), {("orders", "low"): {"below": 1}},
                     now - 86400, now)
    assert (back["current"]["fired"], back["proposed"]["fired"]) == (0, 1)
    assert with_backtest(proposal, figures).to_dict()["backtest"]["proposed"]["fired"] == 0
    # outside the period the KPI has no values: nothing fires either way
    empty = await run(proposal, {}, now - 3 * 86400, now - 2 * 86400)
    assert empty["windows"] == 0 and empty["current"]["fired"] == 0
