"""Store conformance: the memory and Redis stores behave the same; restarts over Redis lose nothing."""

from __future__ import annotations

from alerting.acks import Ack
from alerting.lifecycle import advance, new_state
from alerting.redis_store import RedisStore
from alerting.samples import Sample
from alerting.service import AlertService
from alerting.silences import Silence
from alerting.store import OutboxRecord, Store
from tests.alerting.conftest import Clock, Receiver, hook, make_config


async def test_alerts_groups_silences_acks_round_trip(store: Store) -> None:
    state = advance(
        new_state("orders", "low", {"r": "e"}, {"kpi": "orders", "r": "e"}, "critical"),
        True,
        now=10.0,
        for_s=0,
        keep_s=0,
    )
    await store.put_alert(state)
    assert await store.get_alert(state.fingerprint) == state
    assert await store.list_alerts() == [state]
    await store.delete_alert(state.fingerprint)
    assert await store.get_alert(state.fingerprint) is None

    await store.put_group("g1", {"key": "g1", "sent": {"f": "firing"}})
    assert await store.list_groups() == [{"key": "g1", "sent": {"f": "firing"}}]
    await store.delete_group("g1")
    assert await store.list_groups() == []

    silence = Silence.create(["team=shop"], starts_at=0, ends_at=60, created_by="ann", comment="x")
    await store.put_silence(silence)
    assert await store.list_silences() == [silence]
    assert await store.delete_silence(silence.id) and not await store.delete_silence(silence.id)

    ack = Ack("f1", {"kpi": "orders"}, 10.0, "ann", 20.0, "mine")
    await store.put_ack(ack)
    assert await store.list_acks() == [ack]
    await store.delete_ack("f1")
    assert await store.list_acks() == []


async def test_history_rules_overrides_and_audit(store: Store) -> None:
    for ws, value in [(0.0, 1.0), (60.0, 2.0), (60.0, 2.5), (120.0, 3.0)]:  # 60 revised to 2.5
        await store.record_value("orders{}", ws, value, retain_s=100.0)
    assert await store.get_value("orders{}", 60.0) == 2.5
    assert await store.get_value("orders{}", 0.0) is None  # older than the retention
    assert await store.get_value("visits{}", 60.0) is None

    await store.publish_rules({("orders", "low"): {"type": "threshold", "below": 10}})
    assert await store.get_rules() == {("orders", "low"): {"type": "threshold", "below": 10}}
    v0 = await store.overrides_version()
    await store.set_override(("orders", "low"), {"below": 5}, [{"kind": "threshold", "field": "below"}])
    assert await store.get_overrides() == {("orders", "low"): {"below": 5}}
    assert await store.overrides_version() > v0
    await store.set_override(("orders", "low"), {}, [])
    assert await store.get_overrides() == {}
    await store.append_audit({"kind": "ack", "who": "ann"})
    assert [e["kind"] for e in await store.list_audit()] == ["ack", "threshold"]
    assert [e["kind"] for e in await store.list_audit(kind="threshold")] == ["threshold"]
    assert len(await store.list_audit(limit=1)) == 1


async def test_outbox_leases(store: Store) -> None:
    for i in range(3):
        assert await store.enqueue(OutboxRecord(f"n{i}", "ops", f'{{"i":{i}}}', 1.0, 1.0 + i))
    assert [r.id for r in await store.pending_entries()] == ["n0", "n1", "n2"]
    first = await store.claim(1.5, 30.0, 10)  # n1 and n2 are not due yet
    assert [c.record.id for c in first] == ["n0"]
    again = await store.claim(10.0, 30.0, 10)
    assert {c.record.id for c in again} == {"n1", "n2"}  # n0 is still leased
    n0 = first[0]
    assert not await store.reschedule("n0", "forged", 50.0, 1, "x")
    assert await store.reschedule("n0", n0.token, 50.0, 1, "503")
    assert not await store.finish("n0", n0.token, "delivered", 2, "ok")  # token used up
    [late] = [c for c in await store.claim(45.0, 30.0, 10) if c.record.id == "n1"]  # lease expired at 40
    stale = next(c for c in again if c.record.id == "n1")
    assert not await store.finish("n1", stale.token, "delivered", 1, "late")
    assert await store.finish("n1", late.token, "delivered", 1, "ok")
    # the reply to that finish was lost and it is sent again: done already, not a lost lease
    assert await store.finish("n1", late.token, "delivered", 1, "ok")
    assert not await store.finish("n1", late.token, "failed", 1, "no")     # but not finished in another state
    [n0_again] = await store.claim(50.0, 30.0, 10)
    assert (n0_again.record.id, n0_again.record.attempts, n0_again.record.reason) == ("n0", 1, "503")
    entry = await store.get_entry("n1")
    assert entry is not None and entry.state == "delivered"
    await store.log_delivery({"id": "n1", "result": "delivered"})
    assert await store.list_deliveries() == [{"id": "n1", "result": "delivered"}]


async def test_restart_keeps_firing_alerts_and_does_not_renotify(
    redis_server: str, redis_prefix: str, clock: Clock, receiver: Receiver
) -> None:
    config = make_config(
        {"orders": [{"type": "threshold", "name": "low", "below": 10, "for": "1m"}]},
        [{"channels": ["ops"], "group_wait": 0, "repeat_interval": "1h"}],
        {"ops": hook(receiver.url)},
    )

    def start() -> AlertService:
        return AlertService(config, RedisStore.from_url(redis_server, prefix=redis_prefix), clock=clock)

    first = start()
    await first.observe(Sample("orders", {}, clock.now - 60, clock.now, 1.0))
    clock.advance(60)
    await first.observe(Sample("orders", {}, clock.now - 60, clock.now, 1.0))
    await first.tick()
    assert len(receiver.posts) == 1
    # restart: a new service over the same Redis
    second = start()
    assert [(a.rule, a.state) for a in await second.store.list_alerts()] == [("low", "firing")]
    for _ in range(30):
        clock.advance(60)
        assert (
            await second.observe(Sample("orders", {}, clock.now - 60, clock.now, 1.0)) == []
        )  # still firing
        await second.tick()
    assert len(receiver.posts) == 1  # not re-notified
    clock.advance(60)
    await second.observe(Sample("orders", {}, clock.now - 60, clock.now, 50.0))
    await second.tick()
    assert receiver.alerts() == [("firing", "low", "firing"), ("resolved", "low", "resolved")]
    for svc in (first, second):
        assert isinstance(svc.store, RedisStore)
        await svc.store.aclose()


async def test_pending_state_survives_a_restart(
    redis_store: RedisStore, clock: Clock, receiver: Receiver
) -> None:
    config = make_config({"orders": [{"type": "threshold", "below": 10, "for": "2m"}]}, [], {})
    one = AlertService(config, redis_store, clock=clock)
    assert [t.new for t in await one.observe(Sample("orders", {}, 0, 60, 1.0))] == ["pending"]
    clock.advance(120)
    two = AlertService(config, redis_store, clock=clock)
    assert [t.new for t in await two.observe(Sample("orders", {}, 60, 120, 1.0))] == ["firing"]


async def test_conditional_delete_keeps_a_concurrent_update(store: Store) -> None:
    fired = advance(
        new_state("orders", "low", {}, {"kpi": "orders"}, "warning"), True, now=1.0, for_s=0, keep_s=0
    )
    resolved = advance(fired, False, now=2.0, for_s=0, keep_s=0)
    await store.put_alert(resolved)
    again = advance(resolved, True, now=3.0, for_s=0, keep_s=0)
    await store.put_alert(again)  # an evaluation re-fired it after the cleanup read `resolved`
    assert not await store.delete_alert(resolved.fingerprint, if_unchanged=resolved)
    assert await store.get_alert(again.fingerprint) == again
    assert await store.delete_alert(again.fingerprint, if_unchanged=again)
    assert not await store.delete_alert(again.fingerprint)


async def test_outbox_streams_claim_in_order_renew_and_stats(store: Store) -> None:
    entries = [("a1", "ops", "g1|ops"), ("b1", "ops", "g2|ops"), ("a2", "ops", "g1|ops"), ("m1", "mail", "g1|mail")]
    for i, (eid, channel, stream) in enumerate(entries):
        assert await store.enqueue(OutboxRecord(eid, channel, "{}", 10.0 + i, 10.0, stream=stream))
    # only the head of each stream is handed out; a2 waits for a1 however due it is
    claims = {c.record.id: c for c in await store.claim(100.0, 30.0, 10)}
    assert set(claims) == {"a1", "b1", "m1"}
    assert [r.id for r in await store.stream_after("g1|ops", claims["a1"].record.seq)] == ["a2"]
    assert await store.claim(120.0, 30.0, 10) == []  # leased heads block their streams
    assert await store.renew("a1", claims["a1"].token, 1000.0) and not await store.renew("a1", "stale", 1000.0)
    assert await store.outbox_stats() == {"ops": (3, 10.0), "mail": (1, 13.0)}
    assert await store.finish("a1", claims["a1"].token, "delivered", 1, "ok")
    assert [c.record.id for c in await store.claim(125.0, 30.0, 10)] == ["a2"]  # next of its stream
    assert await store.stream_after("g1|ops", 0) == [r for r in await store.pending_entries() if r.id == "a2"]
    assert (await store.outbox_stats())["ops"] == (2, 11.0)


async def test_a_stream_with_many_waiting_entries_starves_no_other(store: Store) -> None:
    for i in range(600):  # more waiting entries than one claim scans
        assert await store.enqueue(OutboxRecord(f"a{i}", "ops", "{}", 10.0, 10.0, stream="g1|ops"))
    assert await store.enqueue(OutboxRecord("b0", "ops", "{}", 20.0, 20.0, stream="g2|ops"))
    [head] = await store.claim(100.0, 60.0, 1)
    assert head.record.id == "a0"
    got = [c.record.id for _ in range(2) for c in await store.claim(110.0, 60.0, 10)]
    assert got == ["b0"]  # g1's waiting entries do not hide g2's head
    assert await store.finish("a0", head.token, "delivered", 1, "ok")
    assert [c.record.id for c in await store.claim(120.0, 60.0, 10)] == ["a1"]  # due at once, not at a0's lease end


async def test_newest_window_only_moves_forward(store: Store) -> None:
    assert await store.note_window('orders{"region":"east"}', 120.0) is None       # first window of the series
    assert await store.note_window('orders{"region":"east"}', 60.0) == 120.0       # a revision of an older one
    assert await store.note_window('orders{"region":"east"}', 180.0) == 120.0
    assert await store.note_window('orders{"region":"east"}', 180.0) == 180.0      # a revision of the newest
    assert await store.note_window("orders{}", 60.0) is None                       # per series
async def test_source_records_round_trip_and_overwrite(store: Store) -> None:
    from alerting.freshness import SourceRecord

    rec = SourceRecord("orders", 600.0, 1000.0, max_silence=300.0, quiet_s=1.0, silent_since=600.0, gap=(1.0, 2.0))
    await store.put_source("orders", rec.to_dict())
    await store.put_source("visits", SourceRecord("visits", 5.0, 6.0).to_dict())
    await store.put_source("visits", SourceRecord("visits", 7.0, 8.0).to_dict())
    got = {k: SourceRecord.from_dict(v) for k, v in (await store.list_sources()).items()}
    assert got == {"orders": rec, "visits": SourceRecord("visits", 7.0, 8.0)}
