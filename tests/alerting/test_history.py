"""The incident history: written by the service when an alert fires and resolves, acks beside it, bounded; the
memory and the Redis store behave the same, and a new service over the same Redis still sees the history."""

from __future__ import annotations

from alerting.admin import acknowledge
from alerting.history import IncidentRecord
from alerting.redis_store import RedisStore
from alerting.samples import Sample
from alerting.service import AlertService
from alerting.store import Store
from tests.alerting.conftest import T0, make_config

RULES = {"orders": [{"type": "threshold", "name": "low", "below": 10}]}


class Now:
    def __init__(self) -> None:
        self.t = T0

    def __call__(self) -> float:
        return self.t


async def _window(svc: AlertService, now: Now, value: float, region: str = "east") -> None:
    await svc.observe(Sample("orders", {"region": region}, now.t - 60, now.t, value))


async def test_service_records_firing_ack_and_resolution(store: Store) -> None:
    now = Now()
    svc = AlertService(make_config(RULES, [], {}), store, clock=now)
    await _window(svc, now, 3.0)  # fires at once (no `for`)
    [opened] = await store.list_incidents()
    assert (opened.kpi, opened.rule, opened.team, opened.severity) == ("orders", "low", "shop", "warning")
    assert (opened.starts_at, opened.resolved_at, opened.value, opened.window_start) == (T0, None, 3.0, T0 - 60)
    assert opened.labels["region"] == "east" and opened.series == {"region": "east"} and opened.open

    now.t += 120
    await acknowledge(store, opened.fingerprint, who="ann", now=now.t)
    now.t += 60
    await acknowledge(store, opened.fingerprint, who="bob", now=now.t)  # a second ack: the first one counts
    now.t += 600
    await _window(svc, now, 50.0)  # resolves
    [done] = await store.list_incidents()
    assert (done.id, done.resolved_at, done.acked_at, done.acked_by) == (opened.id, T0 + 780, T0 + 120, "ann")
    assert done.value == 3.0  # the value it was raised on, not the value it resolved with

    now.t += 3600
    await _window(svc, now, 2.0)  # fires again: a second incident of the same alert
    first, second = await store.list_incidents()
    assert first == done and second.starts_at == now.t and second.acked_at is None
    assert await store.list_incidents(since=T0 + 1, until=now.t) == []
    assert await store.list_incidents(since=T0, until=T0 + 1) == [done]


async def test_history_is_bounded_by_age_and_count(store: Store) -> None:
    def rec(i: int) -> IncidentRecord:
        return IncidentRecord(f"f{i}", "orders", "low", {"team": "shop"}, "warning", starts_at=T0 + 100 * i)

    for i in range(5):
        await store.record_incident(rec(i), keep_s=1000, cap=3)
        await store.ack_incident(f"f{i}", T0 + 100 * i, "ann", T0 + 100 * i + 5)
    assert [r.fingerprint for r in await store.list_incidents()] == ["f2", "f3", "f4"]  # the count cap
    await store.record_incident(rec(12), keep_s=1000, cap=3)  # starts 1200 s after f0: f0..f1 would be too old
    assert [r.fingerprint for r in await store.list_incidents()] == ["f3", "f4", "f12"]
    await store.record_incident(rec(15), keep_s=1000, cap=10)  # f3 (300) and f4 (400) start before 1500 - 1000
    assert [r.fingerprint for r in await store.list_incidents()] == ["f12", "f15"]
    assert await store.ack_incident("f3", T0 + 300, "bob", T0 + 2000)  # its old ack went with it


async def test_history_survives_a_new_service_over_redis(redis_server: str, redis_prefix: str) -> None:
    now = Now()
    first = RedisStore.from_url(redis_server, prefix=redis_prefix)
    svc = AlertService(make_config(RULES, [], {}), first, clock=now)
    await _window(svc, now, 3.0)
    await first.aclose()
    now.t += 300
    second = RedisStore.from_url(redis_server, prefix=redis_prefix)
    try:
        await _window(AlertService(make_config(RULES, [], {}), second, clock=now), now, 40.0)
        [rec] = await second.list_incidents()
        assert (rec.starts_at, rec.resolved_at) == (T0, T0 + 300)
    finally:
        await second.aclose()


async def test_service_keeps_the_total_series_of_charted_kpis(store: Store) -> None:
    now = Now()
    svc = AlertService(make_config(RULES, [], {}), store, clock=now, charted={"orders": 120.0})
    for i in range(4):
        await svc.observe(Sample("orders", {}, T0 + 60 * i, T0 + 60 * (i + 1), 20.0 + i, 22.0, 15.0, 30.0))
        await svc.observe(Sample("orders", {"region": "east"}, T0 + 60 * i, T0 + 60 * (i + 1), 5.0))  # not the total
        await svc.observe(Sample("gmv", {}, T0 + 60 * i, T0 + 60 * (i + 1), 5.0))  # not charted
    await svc.observe(Sample("orders", {}, T0 + 120, T0 + 180, 99.0, 22.0, 15.0, 30.0, revision=1))  # a revision
    # kept for 120 s before the newest window (T0 + 180): T0 + 60 on
    assert await store.list_points("orders", T0, T0 + 1000) == [
        (T0 + 60, 21.0, 15.0, 30.0), (T0 + 120, 99.0, 15.0, 30.0), (T0 + 180, 23.0, 15.0, 30.0)]
    assert await store.list_points("orders", T0 + 61, T0 + 180) == [(T0 + 120, 99.0, 15.0, 30.0)]
    assert await store.list_points("gmv", T0, T0 + 1000) == []
