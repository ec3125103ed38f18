"""AlertService end to end with an injected clock, a memory store and a real local webhook receiver."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from alerting.memory_store import MemoryStore
from alerting.samples import Sample
from alerting.service import AlertService
from tests.alerting.conftest import Clock, Receiver, hook, make_config

ROUTE = {
    "channels": ["ops"],
    "group_by": ["kpi"],
    "group_wait": "30s",
    "group_interval": "5m",
    "repeat_interval": "1h",
}


def service(
    clock: Clock,
    receiver: Receiver,
    rules: Mapping[str, Sequence[Mapping[str, Any]]],
    routes: Sequence[Mapping[str, Any]] = (ROUTE,),
    store: MemoryStore | None = None,
) -> AlertService:
    channels = {"ops": hook(receiver.url), "oncall": hook(receiver.url)}
    return AlertService(make_config(rules, routes, channels), store or MemoryStore(), clock=clock)


async def window(
    svc: AlertService,
    clock: Clock,
    value: float | None,
    kpi: str = "orders",
    labels: Mapping[str, str] | None = None,
    **kw: Any,
) -> list[str]:
    """Observe one 60 s window ending now; return the transitions as 'old->new'."""
    sample = Sample(kpi, labels or {}, clock.now - 60, clock.now, value, **kw)
    return [f"{t.old}->{t.new}" for t in await svc.observe(sample)]


async def run(svc: AlertService, clock: Clock, seconds: float, step: float = 10.0) -> None:
    """Let ``seconds`` pass, ticking every ``step``."""
    end = clock.now + seconds
    while clock.now < end:
        clock.advance(step)
        await svc.tick()


async def test_for_group_wait_and_resolved_notice(clock: Clock, receiver: Receiver) -> None:
    svc = service(
        clock, receiver, {"orders": [{"type": "threshold", "name": "low", "below": 10, "for": "2m"}]}
    )
    assert await window(svc, clock, 5) == ["inactive->pending"]
    await run(svc, clock, 60)
    assert await window(svc, clock, 5) == []
    await run(svc, clock, 60)
    assert await window(svc, clock, 5) == ["pending->firing"]
    await run(svc, clock, 20)
    assert receiver.posts == []  # group_wait (30 s) not over yet
    await run(svc, clock, 10)
    assert receiver.alerts() == [("firing", "low", "firing")]
    post = receiver.posts[0]
    assert post["receiver"] == "ops" and post["commonLabels"]["team"] == "shop"
    assert post["alerts"][0]["annotations"]["summary"] == "5 is below 10"
    assert await window(svc, clock, 50) == ["firing->resolved"]
    await run(svc, clock, 290)
    assert len(receiver.posts) == 1  # group_interval (5 m) since the first notification not over
    await run(svc, clock, 30)
    assert receiver.alerts()[1:] == [("resolved", "low", "resolved")]
    assert await svc.store.list_alerts() == []  # told, then forgotten
    await run(svc, clock, 7200)
    assert len(receiver.posts) == 2


async def test_grouping_dedup_and_repeat(clock: Clock, receiver: Receiver) -> None:
    svc = service(clock, receiver, {"orders": [{"type": "threshold", "name": "low", "below": 10}]})
    for region in ("east", "west"):
        await window(svc, clock, 1, labels={"region": region})
    await run(svc, clock, 30)
    assert len(receiver.posts) == 1 and len(receiver.posts[0]["alerts"]) == 2  # one group, one message
    for _ in range(10):  # still low every minute: deduplicated, no new message
        clock.advance(60)
        for region in ("east", "west"):
            await window(svc, clock, 1, labels={"region": region})
        await svc.tick()
    assert len(receiver.posts) == 1
    await run(svc, clock, 3000)
    assert len(receiver.posts) == 2 and len(receiver.posts[1]["alerts"]) == 2  # repeat_interval (1 h)
    assert len(set(receiver.keys)) == 2


async def test_keep_firing_for_absorbs_a_flap(clock: Clock, receiver: Receiver) -> None:
    rules = {"orders": [{"type": "threshold", "name": "low", "below": 10, "keep_firing_for": "3m"}]}
    svc = service(clock, receiver, rules)
    await window(svc, clock, 1)
    await run(svc, clock, 60)
    assert await window(svc, clock, 20) == []  # recovered for one window: still firing
    await run(svc, clock, 60)
    assert await window(svc, clock, 1) == []
    await run(svc, clock, 600)
    assert receiver.alerts() == [("firing", "low", "firing")]


async def test_change_rules_keep_their_history(clock: Clock, receiver: Receiver) -> None:
    rules = {
        "orders": [
            {"type": "change", "name": "drop", "below_pct": 30},
            {"type": "change", "name": "weekly", "above_pct": 50, "compare_to": "same_window_last_week"},
        ]
    }
    svc = service(clock, receiver, rules)
    assert await window(svc, clock, 100) == []  # no baseline yet
    clock.advance(60)
    assert await window(svc, clock, 90) == []
    clock.advance(60)
    assert await window(svc, clock, 50) == ["inactive->firing"]  # -44 % vs the previous window
    clock.advance(7 * 86400 - 120)
    # +60 % vs the same window last week (the `drop` alert resolves: no previous window after a week's gap)
    assert await window(svc, clock, 160) == ["firing->resolved", "inactive->firing"]
    assert {(a.rule, a.state) for a in await svc.store.list_alerts()} == {
        ("drop", "resolved"),
        ("weekly", "firing"),
    }


async def test_absence_rule_and_owner_routing(clock: Clock, receiver: Receiver) -> None:
    rules = {"orders": [{"type": "absence", "name": "silent", "for": "2m", "severity": "critical"}]}
    routes = [
        {"match": {"team": "payments"}, "channels": ["oncall"], "group_wait": 0},
        {"match": {"team": "shop", "severity": "critical"}, "channels": ["ops"], "group_wait": 0},
    ]
    svc = service(clock, receiver, rules, routes)
    for _ in range(3):
        await window(svc, clock, None)
        clock.advance(60)
    await svc.tick()
    assert [p["receiver"] for p in receiver.posts] == ["ops"]
    assert receiver.posts[0]["alerts"][0]["labels"]["severity"] == "critical"
    await window(svc, clock, 3)
    await run(svc, clock, 300)
    assert receiver.alerts()[-1] == ("resolved", "silent", "resolved")


async def test_continue_sends_to_several_routes(clock: Clock, receiver: Receiver) -> None:
    routes = [
        {"channels": ["ops"], "group_wait": 0, "continue": True},
        {"match_re": {"kpi": "ord.*"}, "channels": ["oncall"], "group_wait": 0},
    ]
    svc = service(clock, receiver, {"orders": [{"type": "threshold", "below": 10}]}, routes)
    await window(svc, clock, 1)
    await run(svc, clock, 10)
    assert sorted(p["receiver"] for p in receiver.posts) == ["oncall", "ops"]


async def test_anomaly_rule_and_reload_of_unchanged_overrides(clock: Clock, receiver: Receiver) -> None:
    svc = service(clock, receiver, {"orders": [{"type": "anomaly", "min_score": 0.7}]})
    assert await svc.reload_overrides() == 0
    assert await window(svc, clock, 3, is_anomaly=True, score=0.5) == []
    assert await window(svc, clock, 3, is_anomaly=True, score=0.9, expected=20.0, lower=15.0, upper=25.0) == [
        "inactive->firing"
    ]
    await run(svc, clock, 30)
    annotations = receiver.posts[0]["alerts"][0]["annotations"]
    assert annotations["expected"] == "20.0" and "anomaly" in annotations["summary"]


async def test_absence_when_a_series_stops_producing_windows(clock: Clock, receiver: Receiver) -> None:
    rules = {"orders": [{"type": "absence", "name": "gone", "missing_after": "3m", "for": "1m"}]}
    svc = service(clock, receiver, rules, [{"channels": ["ops"], "group_wait": 0}])
    await window(svc, clock, 5, labels={"region": "east"})
    await run(svc, clock, 170)
    assert await svc.store.list_alerts() == []  # quiet for less than missing_after
    await run(svc, clock, 10)
    assert [a.state for a in await svc.store.list_alerts()] == ["pending"]
    await run(svc, clock, 60)
    assert receiver.alerts() == [("firing", "gone", "firing")]
    assert receiver.posts[0]["alerts"][0]["labels"]["region"] == "east"
    assert await window(svc, clock, 5, labels={"region": "east"}) == ["firing->resolved"]
    for _ in range(5):  # windows arrive again
        await run(svc, clock, 60)
        await window(svc, clock, 5, labels={"region": "east"})
    assert receiver.alerts() == [("firing", "gone", "firing"), ("resolved", "gone", "resolved")]


async def test_send_resolved_false_and_counters(clock: Clock, receiver: Receiver) -> None:
    route = {**ROUTE, "group_wait": 0, "send_resolved": False}
    svc = service(clock, receiver, {"orders": [{"type": "threshold", "name": "low", "below": 10}]}, [route])
    await window(svc, clock, 1)
    await run(svc, clock, 10)
    assert await svc.alert_counts() == {("firing", "warning"): 1}
    await window(svc, clock, 50)
    await run(svc, clock, 600)
    assert receiver.alerts() == [("firing", "low", "firing")]  # no resolved notice
    assert await svc.alert_counts() == {}
    assert svc.delivery_counts == {("ops", "delivered"): 1}


async def test_the_alert_gauge_reads_zero_for_every_rule_when_quiet_not_no_data(clock: Clock, receiver: Receiver) -> None:
    """``kpimon_alerts`` keeps a series per rule's (kpi, severity) and state: 0 before, 1 while firing, 0 after."""
    svc = service(clock, receiver, {"orders": [{"type": "threshold", "name": "low", "below": 10}],
                                    "gmv": [{"type": "threshold", "name": "drop", "below": 1, "severity": "critical"}]})
    zeros = {("orders", "warning", "pending"): 0, ("orders", "warning", "firing"): 0,
             ("gmv", "critical", "pending"): 0, ("gmv", "critical", "firing"): 0}
    assert await svc.run_tick()
    assert svc.alert_gauge == zeros
    assert await window(svc, clock, 5) == ["inactive->firing"]
    assert await svc.run_tick()
    assert svc.alert_gauge == {**zeros, ("orders", "warning", "firing"): 1}
    assert await window(svc, clock, 50) == ["firing->resolved"]
    assert await svc.run_tick()
    assert svc.alert_gauge == zeros
