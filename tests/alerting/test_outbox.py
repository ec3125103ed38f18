"""The durable outbox over a real Redis and a real local webhook endpoint: retries, give-up, worker death."""

from __future__ import annotations

import asyncio
import random

from alerting.outbox import RetryPolicy, dump_notification, load_notification
from alerting.redis_store import RedisStore
from alerting.samples import Sample
from alerting.service import AlertService
from alerting.store import OutboxRecord
from tests.alerting.conftest import T0, Clock, Receiver, hook, make_config
from tests.fixtures.waiting import eventually_async

KPIS = [f"kpi_{i}" for i in range(5)]
RULES = {k: [{"type": "threshold", "name": "low", "below": 10}] for k in KPIS}
ROUTES = [{"channels": ["ops"], "group_by": ["kpi"], "group_wait": 0, "repeat_interval": "1d"}]


def make_service(
    store: RedisStore, clock: Clock, receiver: Receiver, max_age_s: float = 86400.0
) -> AlertService:
    config = make_config(RULES, ROUTES, {"ops": hook(receiver.url)})
    return AlertService(
        config,
        store,
        clock=clock,
        wall_clock=clock,
        retry=RetryPolicy(base_s=2.0, cap_s=60.0, max_age_s=max_age_s),
        lease_s=30.0,
        send_timeout_s=1.0,
        rng=random.Random(7),
    )


async def fire_all(svc: AlertService, clock: Clock) -> None:
    for kpi in KPIS:
        await svc.observe(Sample(kpi, {}, clock.now - 60, clock.now, 1.0))
    await svc.pipeline.run(clock.now)  # queue the notifications without delivering


async def test_notification_json_round_trip(clock: Clock, receiver: Receiver) -> None:
    from alerting.memory_store import MemoryStore

    svc = AlertService(make_config(RULES, ROUTES, {"ops": hook(receiver.url)}), MemoryStore(), clock=clock)
    await fire_all(svc, clock)
    for record in await svc.store.pending_entries():
        assert dump_notification(load_notification(record.payload)) == record.payload


async def test_endpoint_down_then_every_notification_exactly_once(
    redis_store: RedisStore, clock: Clock, receiver: Receiver
) -> None:
    svc = make_service(redis_store, clock, receiver)
    await fire_all(svc, clock)
    assert len(await redis_store.pending_entries()) == 5
    await receiver.stop()  # a real outage: connection refused
    for _ in range(12):
        await svc.tick()
        clock.advance(5)
    receiver.down = True  # back, but answering 503 for a while
    await receiver.start()
    for _ in range(12):
        await svc.tick()
        clock.advance(5)
    assert receiver.posts == [] and receiver.refused_while_down > 0
    receiver.down = False
    for _ in range(30):
        await svc.tick()
        clock.advance(5)
    assert sorted(p["groupLabels"]["kpi"] for p in receiver.posts) == KPIS  # each exactly once
    assert receiver.unique() == len(receiver.posts) == 5
    assert await redis_store.pending_entries() == []
    log = await redis_store.list_deliveries(1000)
    assert {e["result"] for e in log} == {"retry", "delivered"}, log
    retried = [e for e in log if e["result"] == "retry"]
    assert any("503" in e["reason"] for e in retried)
    assert all(str(receiver.port) not in e["reason"] for e in log)  # the URL is a secret


async def test_gives_up_after_max_age_counted_and_logged(
    redis_store: RedisStore, clock: Clock, receiver: Receiver
) -> None:
    svc = make_service(redis_store, clock, receiver, max_age_s=120.0)
    receiver.down = True
    await fire_all(svc, clock)
    for _ in range(60):
        await svc.tick()
        clock.advance(5)
    assert await redis_store.pending_entries() == []
    log = await redis_store.list_deliveries(1000)
    dropped = [e for e in log if e["result"] == "dropped"]
    assert len(dropped) == 5 and all(e["reason"].startswith("expired") for e in dropped)
    assert max(e["at"] for e in log if e["result"] == "retry") - T0 <= 120.0
    entry = await redis_store.get_entry(dropped[0]["id"])
    assert entry is not None and entry.state == "failed" and entry.reason.startswith("expired")
    assert svc.dropped_counts == {("ops", "expired"): 5}


def test_backoff_is_exponential_bounded_and_jittered() -> None:
    policy = RetryPolicy(base_s=2.0, cap_s=60.0, jitter=0.5)
    rng = random.Random(1)
    for attempt in range(1, 12):
        raw = min(60.0, 2.0 * 2 ** (attempt - 1))
        assert raw * 0.5 <= policy.delay(attempt, rng) <= raw


async def test_worker_dies_after_claiming_nothing_lost_nothing_doubled(
    redis_server: str, redis_prefix: str, clock: Clock, receiver: Receiver
) -> None:
    old_store = RedisStore.from_url(redis_server, prefix=redis_prefix)
    old = make_service(old_store, clock, receiver)
    await fire_all(old, clock)
    claims = await old_store.claim(clock.now, old.outbox.lease_s, 2)  # ... and the worker dies here
    assert len(claims) == 2
    await old_store.aclose()

    new_store = RedisStore.from_url(redis_server, prefix=redis_prefix)
    new = make_service(new_store, clock, receiver)
    await new.tick()
    assert len(receiver.posts) == 3  # the two leased entries wait for their lease to expire
    clock.advance(old.outbox.lease_s + 1)
    await new.tick()
    assert sorted(p["groupLabels"]["kpi"] for p in receiver.posts) == KPIS
    # The dead worker's lease token no longer counts: a late "delivered" cannot overwrite anything.
    assert not await new_store.finish(claims[0].record.id, claims[0].token, "delivered", 1, "late")
    await new.tick()
    assert receiver.unique() == len(receiver.posts) == 5
    await new_store.aclose()


async def test_worker_killed_while_sending_then_another_delivers_once(
    redis_server: str, redis_prefix: str, clock: Clock, receiver: Receiver
) -> None:
    old_store = RedisStore.from_url(redis_server, prefix=redis_prefix)
    old = make_service(old_store, clock, receiver)
    await fire_all(old, clock)
    receiver.hang = True
    task = asyncio.create_task(old.tick())
    await eventually_async(lambda: len(receiver.hung) == 5, 15, lambda: f"5 sends in flight ({receiver.hung})",
                           poll_s=0.01)
    task.cancel()  # killed mid-delivery: requests in flight, nothing marked
    await asyncio.gather(task, return_exceptions=True)
    receiver.hang = False

    new_store = RedisStore.from_url(redis_server, prefix=redis_prefix)
    new = make_service(new_store, clock, receiver)
    clock.advance(old.outbox.lease_s + 1)
    for _ in range(3):
        await new.tick()
        clock.advance(10)
    assert receiver.unique() == len(receiver.posts) == 5
    assert set(receiver.keys) == set(receiver.hung)  # the same ids: receivers can deduplicate
    await old_store.aclose()
    await new_store.aclose()


async def test_enqueue_is_idempotent_on_the_notification_id(redis_store: RedisStore) -> None:
    record = OutboxRecord("n1", "ops", "{}", 1.0, 1.0)
    assert await redis_store.enqueue(record)
    assert not await redis_store.enqueue(record)
    [claim] = await redis_store.claim(2.0, 30.0, 10)
    assert await redis_store.finish("n1", claim.token, "delivered", 1, "ok")
    assert not await redis_store.enqueue(record)  # already delivered: still a no-op
    assert await redis_store.claim(100.0, 30.0, 10) == []


async def test_two_workers_on_one_redis_send_each_notification_once(
    redis_server: str, redis_prefix: str, clock: Clock, receiver: Receiver
) -> None:
    stores = [RedisStore.from_url(redis_server, prefix=redis_prefix) for _ in range(2)]
    workers = [make_service(s, clock, receiver) for s in stores]
    for kpi in KPIS:
        await workers[0].observe(Sample(kpi, {}, clock.now - 60, clock.now, 1.0))
    for _ in range(3):
        await asyncio.gather(*(w.tick() for w in workers))
        clock.advance(10)
    assert sorted(p["groupLabels"]["kpi"] for p in receiver.posts) == KPIS
    for s in stores:
        await s.aclose()
