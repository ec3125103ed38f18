"""Redis as a real store: restarts lose nothing (AOF), outages are ridden over with one log line each way."""

from __future__ import annotations

import logging
import signal
from typing import Any

import pytest

from alerting.acks import Ack
from alerting.redis_store import RedisStore
from alerting.samples import Sample
from alerting.service import AlertService
from alerting.silences import Silence
from streams.exporter import alert_families
from streams.observers import Observers
from streams.records import KpiValue
from tests.alerting.conftest import Clock, Receiver, hook, make_config
from tests.fixtures.redis_server import RedisProcess

KPIS = [f"shop_{i}" for i in range(4)]
RULES = {k: [{"type": "threshold", "name": "low", "below": 10}] for k in KPIS}
ROUTES = [{"channels": ["ops"], "group_by": ["kpi"], "group_wait": 0, "repeat_interval": "1d"}]


def make_service(store: RedisStore, clock: Clock, receiver: Receiver) -> AlertService:
    config = make_config(RULES, ROUTES, {"ops": hook(receiver.url)})
    return AlertService(config, store, clock=clock, wall_clock=clock)


async def snapshot(store: RedisStore) -> dict[str, Any]:
    return {
        "alerts": sorted((a.to_dict() for a in await store.list_alerts()), key=lambda a: a["fingerprint"]),
        "groups": sorted((g for g in await store.list_groups()), key=lambda g: g["key"]),
        "silences": await store.list_silences(),
        "acks": await store.list_acks(),
        "overrides": await store.get_overrides(),
        "version": await store.overrides_version(),
        "audit": await store.list_audit(),
        "outbox": await store.pending_entries(),
        "outbox_stats": await store.outbox_stats(),
    }


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
async def test_redis_restart_loses_no_alert_silence_ack_override_or_outbox_entry(
    redis_process: RedisProcess, receiver: Receiver, sig: int
) -> None:
    clock = Clock()
    store = RedisStore.from_url(redis_process.url)
    svc = make_service(store, clock, receiver)
    receiver.down = True
    for kpi in KPIS[:3]:
        await svc.observe(Sample(kpi, {}, clock.now - 60, clock.now, 1.0))
    await svc.tick()  # three firing notifications queued, first attempt failed: undelivered
    firing = next(a for a in await store.list_alerts() if a.kpi == KPIS[0])
    await store.put_ack(Ack(firing.fingerprint, firing.labels, firing.starts_at or 0.0, "ann", clock.now, "mine"))
    await store.put_silence(
        Silence.create(["kpi=shop_3"], starts_at=clock.now, ends_at=clock.now + 7200, created_by="bob", comment="x")
    )
    audit = [{"kind": "threshold", "who": "eve", "kpi": KPIS[1], "rule": "low", "field": "below", "new": 5}]
    await store.set_override((KPIS[1], "low"), {"below": 5}, audit)
    before = await snapshot(store)
    assert len(before["outbox"]) == 3 and all(e.attempts == 1 for e in before["outbox"])
    assert before["acks"] and before["silences"] and before["overrides"] and len(before["alerts"]) == 3

    redis_process.restart(sig)

    assert await snapshot(store) == before  # the same client reconnects by itself
    receiver.down = False
    clock.advance(600)
    for _ in range(3):
        await svc.tick()
        clock.advance(30)
    assert receiver.unique() == len(receiver.posts) == 3
    assert await store.pending_entries() == []
    await store.aclose()


def window(kpi: str, value: float, end: float) -> KpiValue:
    return KpiValue(kpi, "", int((end - 60) * 1000), int(end * 1000), value, 0)


def metric(families: list[Any], name: str) -> float:
    [value] = [s.value for f in families for s in f.samples if s.name == name]
    return float(value)


async def test_redis_outage_one_line_each_way_metrics_no_notification_lost_or_doubled(
    redis_process: RedisProcess, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    clock = Clock()
    store = RedisStore.from_url(redis_process.url)
    svc = make_service(store, clock, receiver)
    observers = Observers({}, svc)
    for kpi in KPIS[:2]:
        await svc.observe(Sample(kpi, {}, clock.now - 60, clock.now, 1.0))
    await svc.pipeline.run(clock.now)  # two notifications queued
    # Redis dies as the second is posted: delivered, but the outbox cannot be told (of that one at least)
    receiver.on_post = lambda _post: redis_process.kill(signal.SIGKILL) if len(receiver.posts) == 2 else None
    assert not await svc.run_tick()
    receiver.on_post = None
    assert len(receiver.posts) == 2
    for _ in range(30):  # five minutes of outage: longer than the lease
        assert not await svc.run_tick()
        # windows keep closing: shop_0 recovers, shop_2 breaks; no exception reaches the agent
        assert await observers.alert([window(KPIS[0], 50.0, clock.now), window(KPIS[2], 1.0, clock.now)], {}) == 0
        clock.advance(10)
    assert len(observers.backlog) == 60
    families = list(alert_families(observers))
    assert metric(families, "kpimon_store_up") == 0.0
    assert metric(families, "kpimon_alert_backlog") == 60.0
    assert metric(families, "kpimon_store_errors_total") == svc.health.errors >= 61
    down = [r for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(down) == 1 and down[0].levelno == logging.WARNING
    assert not [r for r in caplog.records if r.exc_info]  # no traceback per tick

    redis_process.start()
    assert await svc.run_tick()
    for _ in range(5):  # the windows of the outage are evaluated first, then the new ones
        await observers.alert([window(KPIS[2], 1.0, clock.now)], {})
        assert await svc.run_tick()
        clock.advance(30)
    families = list(alert_families(observers))
    assert metric(families, "kpimon_store_up") == 1.0
    assert len([r for r in caplog.records if "reachable again" in r.getMessage()]) == 1
    # the two sent as Redis died are not sent again; what changed during the outage is told after it
    assert receiver.unique() == len(receiver.posts) == 4
    told = sorted((p["groupLabels"]["kpi"], p["status"]) for p in receiver.posts)
    assert told == [(KPIS[0], "firing"), (KPIS[0], "resolved"), (KPIS[1], "firing"), (KPIS[2], "firing")]
    assert await store.pending_entries() == []
    assert svc.delivery_counts.get(("ops", "delivered")) == 4  # including those written after the outage
    assert metric(families, "kpimon_outbox_entries") == 0.0
    assert observers.backlog == [] and metric(families, "kpimon_alert_backlog_dropped_total") == 0.0
    await store.aclose()


async def test_backlog_of_windows_during_an_outage_is_bounded_and_counted(
    redis_process: RedisProcess, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    store = RedisStore.from_url(redis_process.url)
    observers = Observers({}, make_service(store, clock, receiver), backlog_max=5)
    redis_process.kill(signal.SIGKILL)
    for i in range(4):
        await observers.alert([window(KPIS[0], float(i), clock.now), window(KPIS[1], float(i), clock.now)], {})
        clock.advance(60)
    assert len(observers.backlog) == 5 and observers.backlog_dropped == 3
    assert [s.value for s in observers.backlog] == [1.0, 2.0, 2.0, 3.0, 3.0]  # the newest kept, in order
    assert len([r for r in caplog.records if "dropping the oldest" in r.getMessage()]) == 1
    families = list(alert_families(observers))
    assert metric(families, "kpimon_alert_backlog_dropped_total") == 3.0
    await store.aclose()
