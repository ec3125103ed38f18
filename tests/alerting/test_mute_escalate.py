"""Silences, acknowledgements and escalation, driven through the service with an injected clock."""

from __future__ import annotations

import pytest

from alerting.acks import Ack, AckMuter
from alerting.admin import AdminError, acknowledge, add_silence, remove_silence
from alerting.memory_store import MemoryStore
from alerting.silences import Matcher, MatcherError, Silence, SilenceMuter, parse_matcher
from tests.alerting.conftest import Clock, Receiver
from tests.alerting.test_service import run, service, window

ESCALATING = {
    "channels": ["ops"],
    "group_wait": 0,
    "repeat_interval": "30m",
    "escalate": {"after": "15m", "channels": ["oncall"]},
}
CRITICAL = {"orders": [{"type": "threshold", "name": "low", "below": 10, "severity": "critical"}]}


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ("team=shop", {"team": "shop"}, True),
        ("team = shop", {"team": "ops"}, False),
        ('team!="shop"', {"team": "ops"}, True),
        ("team!=shop", {}, True),
        ("kpi=~paid_.*", {"kpi": "paid_orders"}, True),
        ("kpi=~paid", {"kpi": "paid_orders"}, False),  # anchored, as in Alertmanager
        ("region!~east|west", {"region": "north"}, True),
        ("region!~east|west", {"region": "east"}, False),
        ("region=", {}, True),
    ],
)
def test_matchers(text: str, labels: dict[str, str], expected: bool) -> None:
    assert parse_matcher(text).matches(labels) is expected


@pytest.mark.parametrize("text", ["team", "=shop", "team==shop", "1team=x", "kpi=~(", "team~shop", ""])
def test_malformed_matchers_are_refused(text: str) -> None:
    with pytest.raises(MatcherError):
        parse_matcher(text)


def test_silence_validation_and_round_trip() -> None:
    with pytest.raises(MatcherError, match="at least one matcher"):
        Silence.create([], starts_at=0, ends_at=1, created_by="ann")
    with pytest.raises(MatcherError, match="match every alert"):
        Silence.create(["team=~.*"], starts_at=0, ends_at=1, created_by="ann")
    with pytest.raises(MatcherError, match="must be after"):
        Silence.create(["team=shop"], starts_at=5, ends_at=5, created_by="ann")
    with pytest.raises(MatcherError, match="author"):
        Silence.create(["team=shop"], starts_at=0, ends_at=5, created_by=" ")
    with pytest.raises(MatcherError, match="need matchers"):
        Silence.from_dict({"matchers": ["team=shop"]})
    s = Silence.create(
        [Matcher("team", "=", "shop"), "kpi=~pa.*"],
        starts_at=0,
        ends_at=60,
        created_by="ann",
        comment="deploy",
    )
    assert Silence.from_dict(s.to_dict()) == s
    muter = SilenceMuter([s])
    assert muter.mutes({"team": "shop", "kpi": "paid"}, 0) and not muter.mutes(
        {"team": "shop", "kpi": "paid"}, 60
    )
    assert AckMuter([Ack("f", {"a": "1"}, 0, "ann", 1)]).mutes({"a": "1"}, 99)
    assert not AckMuter([Ack("f", {"a": "1"}, 0, "ann", 1)]).mutes({"a": "1", "b": "2"}, 99)


async def test_silence_mutes_during_its_time_range_only(clock: Clock, receiver: Receiver) -> None:
    store = MemoryStore()
    svc = service(clock, receiver, CRITICAL, [{"channels": ["ops"], "group_wait": 0}], store)
    await add_silence(
        store,
        {
            "matchers": ["team=shop", "severity=~crit.*"],
            "starts_at": clock.now + 60,
            "duration": "10m",
            "comment": "deploy",
        },
        who="ann",
        now=clock.now,
    )
    await add_silence(store, {"matchers": ["team=other"], "duration": "1d"}, who="ann", now=clock.now)
    clock.advance(60)
    await window(svc, clock, 1)
    await run(svc, clock, 590)
    assert receiver.posts == []
    await run(svc, clock, 10)  # the silence ended
    assert receiver.alerts() == [("firing", "low", "firing")]
    assert [e["kind"] for e in await store.list_audit()] == ["silence", "silence"]


async def test_unsilence_and_bad_silence_requests() -> None:
    store = MemoryStore()
    with pytest.raises(AdminError, match="bad silence: bad matcher 'team'"):
        await add_silence(store, {"matchers": ["team"], "duration": "1h"}, who="ann", now=0)
    with pytest.raises(AdminError, match="bad duration"):
        await add_silence(store, {"matchers": ["team=x"], "duration": "soon"}, who="ann", now=0)
    with pytest.raises(AdminError, match="matchers must be a list"):
        await add_silence(store, {"matchers": "team=x", "duration": "1h"}, who="ann", now=0)
    with pytest.raises(AdminError, match="epoch seconds"):
        await add_silence(
            store, {"matchers": ["team=x"], "starts_at": "now", "duration": "1h"}, who="ann", now=0
        )
    assert await store.list_silences() == []  # nothing applied halfway
    s = await add_silence(store, {"matchers": ["team=x"], "duration": "1h"}, who="ann", now=0)
    await remove_silence(store, s.id, who="bob", now=5)
    with pytest.raises(AdminError) as info:
        await remove_silence(store, s.id, who="bob", now=5)
    assert info.value.status == 404


async def test_ack_stops_repeats_and_escalation(clock: Clock, receiver: Receiver) -> None:
    store = MemoryStore()
    svc = service(clock, receiver, CRITICAL, [ESCALATING], store)
    await window(svc, clock, 1)
    await run(svc, clock, 10)
    assert [p["receiver"] for p in receiver.posts] == ["ops"]
    [alert] = await store.list_alerts()
    with pytest.raises(AdminError) as info:
        await acknowledge(store, "nope", who="ann", now=clock.now)
    assert info.value.status == 404
    ack = await acknowledge(store, alert.fingerprint, who="ann", now=clock.now, comment="on it")
    assert (ack.by, ack.at) == ("ann", clock.now)
    await run(svc, clock, 3 * 3600, step=60)
    assert [p["receiver"] for p in receiver.posts] == ["ops"]  # no repeat, no escalation
    await window(svc, clock, 50)  # resolves: the resolved notice still goes out
    await run(svc, clock, 300, step=60)
    assert receiver.alerts()[-1] == ("resolved", "low", "resolved")
    assert await store.list_acks() == []  # the ack ended with the incident
    await window(svc, clock, 1)  # a new incident is not covered by the old ack
    await run(svc, clock, 16 * 60, step=60)
    assert [p["receiver"] for p in receiver.posts] == ["ops", "ops", "ops", "oncall"]
    assert [e["kind"] for e in await store.list_audit()] == ["ack"]


async def test_escalation_after_the_set_time_once(clock: Clock, receiver: Receiver) -> None:
    svc = service(clock, receiver, CRITICAL, [ESCALATING])
    await window(svc, clock, 1)
    await run(svc, clock, 15 * 60 - 10, step=10)
    assert [p["receiver"] for p in receiver.posts] == ["ops"]
    await run(svc, clock, 10)
    assert [p["receiver"] for p in receiver.posts] == ["ops", "oncall"]
    assert receiver.posts[1]["alerts"][0]["labels"]["alertname"] == "low"
    await run(svc, clock, 20 * 60, step=60)
    assert [p["receiver"] for p in receiver.posts] == [
        "ops",
        "oncall",
        "ops",
    ]  # a repeat; no second escalation


async def test_warnings_do_not_escalate(clock: Clock, receiver: Receiver) -> None:
    rules = {"orders": [{"type": "threshold", "name": "low", "below": 10, "severity": "warning"}]}
    svc = service(clock, receiver, rules, [ESCALATING])
    await window(svc, clock, 1)
    await run(svc, clock, 20 * 60, step=60)
    assert "oncall" not in [p["receiver"] for p in receiver.posts]


async def test_only_firing_alerts_can_be_acknowledged(clock: Clock, receiver: Receiver) -> None:
    store = MemoryStore()
    svc = service(clock, receiver, {"orders": [{"type": "threshold", "below": 10, "for": "5m"}]}, store=store)
    await window(svc, clock, 1)
    [alert] = await store.list_alerts()
    with pytest.raises(AdminError, match="is pending") as info:
        await acknowledge(store, alert.fingerprint, who="ann", now=clock.now)
    assert info.value.status == 409


async def test_silenced_then_unsilenced_alert_is_notified_again(clock: Clock, receiver: Receiver) -> None:
    store = MemoryStore()
    svc = service(clock, receiver, CRITICAL, [{"channels": ["ops"], "group_wait": 0}], store)
    await window(svc, clock, 1)
    await run(svc, clock, 10)
    silence = await add_silence(
        store, {"matchers": ["kpi=orders"], "duration": "1d"}, who="ann", now=clock.now
    )
    await run(svc, clock, 60)
    assert await store.list_groups() == []  # nothing left to tell in the group
    await remove_silence(store, silence.id, who="ann", now=clock.now)
    await run(svc, clock, 10)
    assert receiver.alerts() == [("firing", "low", "firing"), ("firing", "low", "firing")]
    assert receiver.unique() == 2  # a new group incarnation: a new notification id
