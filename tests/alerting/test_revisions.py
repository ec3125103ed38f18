"""Revisions judged per window, on the real Redis store the worker uses: a late revision of an older window
updates history but never fires or resolves on behalf of the newest; when it changes the value an alert was
raised on, one correction notice goes out (and the alert is withdrawn where it no longer holds)."""

from __future__ import annotations

from typing import Any

from alerting.redis_store import RedisStore
from alerting.samples import Sample
from alerting.service import AlertService
from tests.alerting.conftest import Clock, Receiver, hook, make_config

ROUTE = {"channels": ["ops"], "group_by": ["kpi"], "group_wait": "30s", "group_interval": "5m",
         "repeat_interval": "4h"}


def service(clock: Clock, receiver: Receiver, store: RedisStore, **rule: Any) -> AlertService:
    spec = {"name": "stopped", "type": "threshold", "below": 1, "severity": "critical", **rule}
    return AlertService(make_config({"orders": [spec]}, [ROUTE], {"ops": hook(receiver.url)}), store,
                        clock=clock, wall_clock=clock)


async def window(svc: AlertService, clock: Clock, start: float, value: float, revision: int = 0) -> list[str]:
    """Observe the 60 s window starting at ``start`` (``revision`` > 0: a late correction of it)."""
    sample = Sample("orders", {"region": "east"}, start, start + 60.0, value, revision=revision)
    return [f"{t.old}->{t.new}" for t in await svc.observe(sample)]


async def run(svc: AlertService, clock: Clock, seconds: float) -> None:
    end = clock.now + seconds
    while clock.now < end:
        clock.advance(10.0)
        await svc.tick()


def told(receiver: Receiver) -> list[tuple[str, str, str]]:
    """(notification status, alert status, correction annotation) per alert of every post."""
    return [(p["status"], a["status"], a["annotations"].get("correction", ""))
            for p in receiver.posts for a in p["alerts"]]


async def test_revision_of_an_older_window_does_not_resolve_and_is_told_once(
    redis_store: RedisStore, clock: Clock, receiver: Receiver
) -> None:
    svc = service(clock, receiver, redis_store)
    w1, w2, w3 = clock.now, clock.now + 60.0, clock.now + 120.0
    clock.now = w1 + 60.0
    assert await window(svc, clock, w1, 0) == ["inactive->firing"]
    await run(svc, clock, 50)                                          # group_wait: the firing notice goes out
    assert await window(svc, clock, w2, 0) == []
    assert await window(svc, clock, w1, 4, revision=1) == []          # w2 is still 0: no resolve
    (alert,) = await svc.alerts()
    assert alert["state"] == "firing" and alert["window_start"] == w2 and alert["value"] == 0
    await run(svc, clock, 10)
    assert await window(svc, clock, w3, 0) == []                      # ... and no re-fire
    await run(svc, clock, 3600)                                       # an hour: nothing more (repeat is 4 h)
    notes = told(receiver)
    assert [(s, a) for s, a, _ in notes] == [("firing", "firing"), ("firing", "firing")], notes
    correction = notes[1][2]
    assert correction.startswith("revised: the ") and "window was 4 orders, not 0 orders" in correction
    assert correction.endswith("alert was raised on incomplete data"), correction
    assert len(set(receiver.keys)) == 2                               # two distinct notifications, no storm


async def test_revision_of_the_window_an_alert_fired_on_withdraws_it(
    redis_store: RedisStore, clock: Clock, receiver: Receiver
) -> None:
    svc = service(clock, receiver, redis_store)
    w1 = clock.now
    clock.now = w1 + 60.0
    assert await window(svc, clock, w1, 0) == ["inactive->firing"]
    await run(svc, clock, 50)
    assert await window(svc, clock, w1, 412, revision=1) == ["firing->resolved"]
    await run(svc, clock, 900)                                        # past group_interval: no resolved notice
    notes = told(receiver)
    assert [(s, a) for s, a, _ in notes] == [("firing", "firing"), ("resolved", "resolved")], notes
    assert "was 412 orders, not 0 orders" in notes[1][2] and notes[1][2].endswith("(alert withdrawn)")
    assert await svc.alerts() == []                                   # told, then forgotten


async def test_older_revision_withdraws_an_alert_only_kept_by_keep_firing(
    redis_store: RedisStore, clock: Clock, receiver: Receiver
) -> None:
    svc = service(clock, receiver, redis_store, keep_firing_for="10m")
    w1, w2 = clock.now, clock.now + 60.0
    clock.now = w1 + 60.0
    assert await window(svc, clock, w1, 0) == ["inactive->firing"]
    await run(svc, clock, 50)
    assert await window(svc, clock, w2, 7) == []                      # kept firing (keep_firing_for)
    assert await window(svc, clock, w1, 5, revision=1) == ["firing->resolved"]
    await run(svc, clock, 60)
    assert [(s, a) for s, a, _ in told(receiver)] == [("firing", "firing"), ("resolved", "resolved")]


async def test_revision_of_an_older_window_never_fires_on_behalf_of_the_newest(
    redis_store: RedisStore, clock: Clock, receiver: Receiver
) -> None:
    svc = service(clock, receiver, redis_store)
    w1, w2 = clock.now, clock.now + 60.0
    clock.now = w2 + 60.0
    assert await window(svc, clock, w1, 5) == []
    assert await window(svc, clock, w2, 6) == []
    assert await window(svc, clock, w1, 0, revision=1) == []          # the newest (w2 = 6) is fine
    assert await window(svc, clock, w2, 0, revision=1) == ["inactive->firing"]  # the newest itself: judged
    await run(svc, clock, 60)
    assert [(s, a) for s, a, _ in told(receiver)] == [("firing", "firing")]
