"""Source freshness over a real store and a real webhook receiver, clocks injected: a stopped feed is one
``source_silent`` alert, its KPIs' zero windows are held, a restart sends nothing, resumption one resolved notice
and no burst; a business zero while events keep arriving is told as usual."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from alerting.freshness import SourceRecord
from alerting.memory_store import MemoryStore
from alerting.redis_store import RedisStore
from alerting.samples import Sample
from alerting.service import AlertService
from alerting.store import Store
from streams.freshness import FreshnessMonitor, SourcePolicy
from tests.alerting.conftest import Clock, Receiver, hook, make_config

pytestmark = pytest.mark.asyncio
RULES = {"paid_orders": [{"type": "threshold", "name": "stopped", "below": 1, "for": 0}],
         "visits": [{"type": "threshold", "name": "no_visits", "below": 1, "for": 0}]}
SOURCES_OF = {"paid_orders": frozenset({"orders"}), "visits": frozenset({"web"})}
POLICIES = {"orders": SourcePolicy(120.0, {"shop": ["paid_orders"]}), "web": SourcePolicy(None, {"web": ["visits"]})}


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest, redis_server: str, redis_prefix: str) -> AsyncIterator[Store]:
    if request.param == "memory":
        yield MemoryStore()
        return
    redis_store = RedisStore.from_url(redis_server, prefix=redis_prefix)
    yield redis_store
    await redis_store.aclose()


class Rig:
    """A worker's alerting half: the service and the freshness monitor over ``store``; event time = wall time."""

    def __init__(self, store: Store, receiver: Receiver, wall: Clock) -> None:
        config = make_config(RULES, [{"channels": ["ops"], "group_wait": 0, "group_interval": "30s", "repeat_interval": "1h"}],
                             {"ops": hook(receiver.url)})
        self.wall = wall
        self.service = AlertService(config, store, clock=wall, wall_clock=wall, sources_of=SOURCES_OF)
        self.monitor = FreshnessMonitor(POLICIES, self.service, quiet_s=2.0, wall=wall, sources_of=SOURCES_OF)

    async def window(self, kpi: str, end: float, value: float) -> None:
        await self.service.observe(Sample(kpi, {}, end - 60, end, value))

    async def tick(self) -> None:
        await self.monitor.check()          # as the worker does: freshness before the pipeline
        await self.service.tick()


async def test_a_stopped_feed_is_one_alert_then_one_resolved_notice(store: Store, receiver: Receiver) -> None:
    wall = Clock()
    rig = Rig(store, receiver, wall)
    t0 = wall.now
    rig.monitor.seen("orders", 0, int(t0 * 1000))
    await rig.tick()
    await rig.window("paid_orders", t0 - 5, 3.0)
    await rig.tick()
    # the feed stops: the idle clock closes empty windows; they are held while the source is quiet...
    for k in range(1, 4):
        wall.advance(30)
        await rig.window("paid_orders", t0 + 30 * k, 0.0)      # ends after the newest event: the idle clock
        await rig.tick()
    assert receiver.posts == []
    # ... and inhibited once it is silent (120 s without an event): one source_silent alert
    for _ in range(5):
        wall.advance(30)
        await rig.window("paid_orders", wall.now - 30, 0.0)
        await rig.tick()
    assert receiver.alerts() == [("firing", "source_silent", "firing")]
    [post] = receiver.posts
    assert post["alerts"][0]["labels"]["source"] == "orders"
    assert post["alerts"][0]["labels"]["affected"] == "Paid Orders"
    assert post["alerts"][0]["annotations"]["summary"].startswith("no events since ")
    [rec] = (await store.list_sources()).values()
    assert SourceRecord.from_dict(rec).silent_since == t0

    # a worker restart during the silence: new service and monitor over the same store send nothing
    rig = Rig(store, receiver, wall)
    rig.monitor.seen("orders", 0, int(t0 * 1000))          # the restored partition: nothing new
    for _ in range(3):
        wall.advance(30)
        await rig.window("paid_orders", wall.now - 30, 0.0)
        await rig.tick()
    assert len(receiver.posts) == 1

    # events resume: one resolved notice; a late-evaluated empty window of the gap stays held (no burst)
    stale_end = wall.now - 30
    wall.advance(10)
    rig.monitor.seen("orders", 0, int(wall.now * 1000))
    await rig.tick()
    await rig.window("paid_orders", stale_end, 0.0)
    await rig.tick()
    wall.advance(60)
    rig.monitor.seen("orders", 0, int(wall.now * 1000))
    await rig.window("paid_orders", wall.now - 1, 4.0)      # fresh data judges the KPI: fine
    await rig.tick()
    assert receiver.alerts() == [("firing", "source_silent", "firing"), ("resolved", "source_silent", "resolved")]
    assert [a.rule for a in await store.list_alerts() if a.state in ("pending", "firing")] == []
    assert rig.monitor.no_data("paid_orders", t0 + 60, t0 + 120)      # the silence's windows are no data now


async def test_a_business_zero_while_events_arrive_is_told(store: Store, receiver: Receiver) -> None:
    wall = Clock()
    rig = Rig(store, receiver, wall)
    for k in range(3):
        wall.advance(1)
        rig.monitor.seen("orders", 0, int(wall.now * 1000))    # events keep coming (no order gets paid)
        await rig.window("paid_orders", wall.now - 1, 0.0 if k else 2.0)
        await rig.tick()
    assert receiver.alerts() == [("firing", "stopped", "firing")]


async def test_a_source_is_judged_only_once_its_rate_is_learned(store: Store, receiver: Receiver) -> None:
    wall = Clock()
    rig = Rig(store, receiver, wall)
    rig.monitor.seen("web", 0, int(wall.now * 1000))      # one arrival: "web" has no max_silence, nothing learned
    await rig.tick()
    wall.advance(3600)
    await rig.window("visits", wall.now, 0.0)
    await rig.tick()
    assert receiver.alerts() == [("firing", "no_visits", "firing")]   # not held, no source_silent
    for _ in range(25):                                   # a learned rate: one batch a second -> floor of 5 min
        wall.advance(1)
        rig.monitor.seen("web", 0, int(wall.now * 1000))
    assert rig.monitor.max_silence("web") == 300.0


async def test_a_gap_read_from_a_backlog_holds_its_windows_and_pages_nobody(store: Store, receiver: Receiver) -> None:
    wall = Clock()
    rig = Rig(store, receiver, wall)
    t0 = wall.now
    rig.monitor.seen("orders", 0, int(t0 * 1000))
    await rig.tick()
    # the worker was behind: the next batch jumps 10 minutes of event time (no event at all in between)
    wall.advance(1)
    rig.monitor.seen("orders", 0, int((t0 + 600) * 1000), (int(t0 * 1000), int((t0 + 600) * 1000)))
    # known at once, before the windows of the gap are closed: they are no data (not evaluated, not learned)
    assert rig.monitor.no_data("paid_orders", t0 + 60, t0 + 120)
    assert not rig.monitor.no_data("paid_orders", t0 + 580, t0 + 640) and not rig.monitor.no_data("visits", 0, 1)
    await rig.window("paid_orders", t0 + 120, 0.0)          # an empty window inside the gap
    await rig.tick()
    await rig.window("paid_orders", t0 + 660, 0.0)          # after it: a real zero, told
    await rig.tick()
    assert receiver.alerts() == [("firing", "stopped", "firing")]
    assert receiver.posts[0]["alerts"][0]["annotations"]["window_end"].startswith("2023-11-14T22:24")


async def test_a_worker_behind_its_partitions_does_not_call_the_source_silent(
    store: Store, receiver: Receiver
) -> None:
    wall = Clock()
    rig = Rig(store, receiver, wall)
    rig.monitor.seen("orders", 0, int(wall.now * 1000))
    await rig.tick()
    rig.monitor.behind("orders", 0, True)                    # unread messages wait on the broker
    wall.advance(600)
    await rig.tick()
    assert receiver.posts == []
    rig.monitor.behind("orders", 0, False)                   # caught up, and still nothing new: silent
    await rig.tick()
    assert receiver.alerts() == [("firing", "source_silent", "firing")]


async def test_a_window_closed_by_events_is_told_however_slowly_the_worker_reads(
    store: Store, receiver: Receiver
) -> None:
    wall = Clock()
    rig = Rig(store, receiver, wall)
    rig.monitor.seen("orders", 0, int(wall.now * 1000))
    await rig.tick()
    wall.advance(10)                      # a starved worker: no batch for 10 s (quiet by the wall clock) ...
    await rig.window("paid_orders", wall.now - 20, 0.0)    # ... but this window ends before the newest event
    await rig.tick()
    assert receiver.alerts() == [("firing", "stopped", "firing")]
