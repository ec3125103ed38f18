"""Delivery that outlasts an outage: real Redis, a real webhook receiver and a real SMTP server.

Hours of outage run on injected clocks (the lifecycle's event clock and the outbox's wall clock, separately);
the slow-endpoint test uses short real waits. Endpoints go through the phases of a real outage: connection
refused (server stopped), then answering 503 / SMTP 451, then recovered.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import defaultdict
from typing import Any

import pytest

from alerting.outbox import RetryPolicy
from alerting.redis_store import RedisStore
from alerting.samples import Sample
from alerting.service import AlertService
from streams.observers import EventClock
from tests.alerting.conftest import T0, Clock, Receiver, hook, make_config
from tests.fixtures.smtp_server import SMTPTestServer
from tests.fixtures.waiting import eventually_async

KPIS = [f"shop_{i}" for i in range(7)]
RULES = {k: [{"type": "threshold", "name": "low", "below": 10}] for k in KPIS}
STEP_S = 60.0


def route(*channels: str) -> list[dict[str, Any]]:
    return [{"channels": list(channels), "group_by": ["kpi"], "group_wait": 0, "group_interval": 60,
             "repeat_interval": "1d"}]  # fmt: skip


def mail(smtp: SMTPTestServer) -> dict[str, Any]:
    return {"type": "email", "host": smtp.host, "port": smtp.port, "starttls": True, "username": smtp.username,
            "password": smtp.password, "ca_file": smtp.ca_file, "from": "kpimon@example.com",
            "to": ["ops@example.com"], "timeout_seconds": 2}  # fmt: skip


def service(
    store: RedisStore, event: Any, wall: Any, channels: dict[str, dict[str, Any]], **kw: Any
) -> AlertService:
    config = make_config(RULES, route(*channels), channels)
    return AlertService(config, store, clock=event, wall_clock=wall, rng=random.Random(3), **kw)


async def observe(svc: AlertService, kpi: str, value: float, now: float) -> None:
    await svc.observe(Sample(kpi, {}, now - 60, now, value))


def webhook_order(receiver: Receiver) -> dict[str, list[str]]:
    order: dict[str, list[str]] = defaultdict(list)
    for post in receiver.posts:
        order[post["groupLabels"]["kpi"]].append(post["status"])
    return dict(order)


def mail_order(smtp: SMTPTestServer) -> dict[str, list[str]]:
    order: dict[str, list[str]] = defaultdict(list)
    for m in smtp.messages:
        order[m.message["X-Kpimon-Group-Key"]].append(m.message["Subject"].split("]")[0].lstrip("[").lower())
    return dict(order)


@pytest.mark.parametrize("rebuild", [False, True], ids=["one_outbox", "worker_killed_mid_outage"])
async def test_two_hour_outage_every_notification_once_firing_before_resolved(
    redis_server: str, redis_prefix: str, receiver: Receiver, smtp_server: SMTPTestServer, rebuild: bool
) -> None:
    event, wall = Clock(), Clock()
    channels = {"ops": hook(receiver.url), "mail": mail(smtp_server)}
    store = RedisStore.from_url(redis_server, prefix=redis_prefix)
    svc = service(store, event, wall, channels)
    await receiver.stop()  # refused for an hour, then 503 / SMTP 451 for half an hour
    smtp_server.stop()
    for i in range(120):  # two hours, one tick a minute
        if i == 60:
            receiver.down, smtp_server.failing = True, "451 4.3.0 Try again later"
            await receiver.start()
            smtp_server.start()
        if i == 90:
            receiver.down, smtp_server.failing = False, None
        incident, phase = divmod(i, 5)
        if incident < len(KPIS) and phase in (0, 3):  # seven incidents fire and resolve during the outage
            await observe(svc, KPIS[incident], 1.0 if phase == 0 else 50.0, event.now)
        if rebuild and i == 45:  # killed with one entry claimed: a new worker on the same Redis takes over
            assert len(await store.claim(wall.now, svc.outbox.lease_s, 1)) == 1
            await store.aclose()
            store = RedisStore.from_url(redis_server, prefix=redis_prefix)
            svc = service(store, event, wall, channels)
        if i == 89:
            stats = await svc.outbox.stats()
            assert {c: n for c, (n, _) in stats.items()} == {"ops": 14, "mail": 14}
            assert stats["ops"][1] >= 85 * STEP_S  # the oldest waited almost the whole outage
        await svc.tick()
        event.advance(STEP_S)
        wall.advance(STEP_S)
    assert await store.pending_entries() == []
    assert receiver.unique() == len(receiver.posts) == 14  # 7 firing + 7 resolved, each exactly once
    assert webhook_order(receiver) == {k: ["firing", "resolved"] for k in KPIS}
    assert len({m.message["Message-ID"] for m in smtp_server.messages}) == len(smtp_server.messages) == 14
    assert sorted(mail_order(smtp_server).values()) == [["firing", "resolved"]] * 7
    assert svc.dropped_counts == {}
    log = await store.list_deliveries(10_000)
    assert "dropped" not in {e["result"] for e in log}
    assert any("503" in e["reason"] for e in log) and any("451" in e["reason"] for e in log)
    keys = [k async for k in store.redis.scan_iter(match=redis_prefix + "*")]
    await store.redis.delete(*keys)
    await store.aclose()


async def test_speedup_60_backoff_runs_on_the_wall_clock(redis_store: RedisStore, receiver: Receiver) -> None:
    wall = Clock()
    event = EventClock(speedup=60, wall=wall)
    event.observe(T0)
    svc = service(redis_store, event.now, wall, {"ops": hook(receiver.url)},
                  retry=RetryPolicy(base_s=2.0, cap_s=300.0, max_age_s=600.0))  # fmt: skip
    receiver.down = True
    for kpi in KPIS[:4]:
        await observe(svc, kpi, 1.0, event.now())
    for _ in range(30):  # 30 s of wall time = 30 min of event time
        await svc.tick()
        wall.advance(1.0)
    assert event.now() - T0 >= 30 * 60
    log = await redis_store.list_deliveries(10_000)
    attempts: defaultdict[str, int] = defaultdict(int)
    for e in log:
        attempts[e["id"]] += 1
    # 2 s doubling (jitter shortens each by up to half): at most 5 attempts in 30 s, none dropped
    assert len(attempts) == 4 and max(attempts.values()) <= 5
    assert {e["result"] for e in log} == {"retry"}
    assert len(await redis_store.pending_entries()) == 4
    receiver.down = False
    for _ in range(40):
        await svc.tick()
        wall.advance(1.0)
    assert receiver.unique() == len(receiver.posts) == 4


async def test_slow_endpoint_gets_one_copy_while_the_first_is_in_flight(
    redis_server: str, redis_prefix: str, receiver: Receiver
) -> None:
    """At --speedup 60 a 3 s answer is 3 minutes of event time: the lease (wall clock) must not expire."""
    receiver.delay_s = 3.0
    event = EventClock(speedup=60)
    event.observe(time.time())
    stores = [RedisStore.from_url(redis_server, prefix=redis_prefix) for _ in range(2)]
    channels = {"ops": {**hook(receiver.url), "timeout_seconds": 8}}
    workers = [service(s, event.now, time.time, channels, lease_s=1.0, send_timeout_s=5.0) for s in stores]
    for kpi in KPIS[:4]:
        await observe(workers[0], kpi, 1.0, event.now())
    ticks = []
    for _ in range(24):  # like the worker: the timer and the stage-2 agent tick concurrently, in two workers
        ticks += [asyncio.ensure_future(w.tick()) for w in (workers[0], workers[0], workers[1])]
        await asyncio.sleep(0.25)
    await asyncio.gather(*ticks)
    assert receiver.max_in_flight >= 1 and len(receiver.posts) == receiver.unique() == 4
    assert await stores[0].pending_entries() == []
    keys = [k async for k in stores[0].redis.scan_iter(match=redis_prefix + "*")]
    await stores[0].redis.delete(*keys)
    for s in stores:
        await s.aclose()


async def test_repeat_behind_an_undelivered_one_is_superseded_counted_and_logged(
    redis_store: RedisStore, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    two_days = RetryPolicy(max_age_s=2 * 86400)
    svc = service(redis_store, clock, clock, {"ops": hook(receiver.url)}, retry=two_days)
    receiver.down = True
    await observe(svc, KPIS[0], 1.0, clock.now)
    await svc.tick()  # firing queued, first attempt fails
    clock.advance(86400 + 60)  # a day later the repeat is queued behind it; the first is still pending
    await observe(svc, KPIS[0], 1.0, clock.now)
    await svc.pipeline.run(clock.now)
    assert len(await redis_store.pending_entries()) == 2
    receiver.down = False
    caplog.set_level("INFO", logger="kpimon.alerting.outbox")
    for _ in range(3):
        await svc.tick()
        clock.advance(30)
    assert len(receiver.posts) == 1 and receiver.posts[0]["status"] == "firing"  # the newer one, once
    assert svc.dropped_counts == {("ops", "superseded"): 1}
    assert sum("superseded" in r.getMessage() for r in caplog.records) == 1


async def test_permanent_failure_is_dropped_and_the_stream_goes_on(
    redis_store: RedisStore, receiver: Receiver
) -> None:
    from tests.fixtures.im import unused_port

    clock = Clock()
    channels = {"ops": hook(receiver.url), "gone": hook(f"http://127.0.0.1:{unused_port()}/x")}
    svc = service(redis_store, clock, clock, channels)
    svc.notifiers.pop("gone")  # a channel removed from the configuration while entries wait for it
    await observe(svc, KPIS[0], 1.0, clock.now)
    await svc.tick()
    assert len(receiver.posts) == 1
    assert svc.dropped_counts == {("gone", "no_channel"): 1}
    assert await redis_store.pending_entries() == []


async def test_lease_run_out_mid_send_is_adopted_not_sent_again(redis_store: RedisStore, receiver: Receiver) -> None:
    clock = Clock()
    svc = service(redis_store, clock, clock, {"ops": {**hook(receiver.url), "timeout_seconds": 5}})
    receiver.delay_s = 0.5
    receiver.on_post = lambda _post: clock.advance(3600)  # the event loop stalled: the lease ran out meanwhile
    await observe(svc, KPIS[0], 1.0, clock.now)
    await svc.pipeline.run(clock.now)
    first = asyncio.ensure_future(svc.outbox.deliver_due())
    await eventually_async(lambda: receiver.posts, 5, "the post", poll_s=0.01)
    assert await svc.outbox.deliver_due() == 0  # claimed again, but this worker is still sending it
    assert await first == 1  # finished under the newer lease
    assert len(receiver.posts) == 1 and await redis_store.pending_entries() == []
    assert svc.delivery_counts == {("ops", "delivered"): 1}


async def test_lease_is_renewed_while_a_send_is_in_flight(
    redis_server: str, redis_prefix: str, receiver: Receiver
) -> None:
    clock = Clock()
    stores = [RedisStore.from_url(redis_server, prefix=redis_prefix) for _ in range(2)]
    channels = {"ops": {**hook(receiver.url), "timeout_seconds": 8}}
    one, two = (service(s, clock, clock, channels, send_timeout_s=5.0) for s in stores)
    one.outbox.renew_s = 0.05
    receiver.delay_s = 1.0
    await observe(one, KPIS[0], 1.0, clock.now)
    await one.pipeline.run(clock.now)
    [entry] = await stores[0].pending_entries()
    first = asyncio.ensure_future(one.outbox.deliver_due())
    await eventually_async(lambda: receiver.in_flight, 5, "the send in flight", poll_s=0.01)
    lease_until = clock.now + one.outbox.lease_s
    assert await stores[0].redis.zscore(redis_prefix + "outbox:due", entry.id) == lease_until
    clock.advance(one.outbox.lease_s / 2)
    async def renewed() -> bool:  # the sending worker renewed its lease
        score = await stores[0].redis.zscore(redis_prefix + "outbox:due", entry.id)
        return score is not None and score > lease_until

    await eventually_async(renewed, 5, "the renewed lease", poll_s=0.01)
    assert receiver.in_flight == 1
    clock.now = lease_until + 1  # past the first lease: another worker still may not claim it
    assert await two.outbox.deliver_due() == 0
    assert await first == 1
    assert len(receiver.posts) == 1
    keys = [k async for k in stores[0].redis.scan_iter(match=redis_prefix + "*")]
    await stores[0].redis.delete(*keys)
    for s in stores:
        await s.aclose()
