"""Hypothesis properties of the whole pipeline (rules -> lifecycle -> grouping -> outbox) on random series.

Uses a recording notifier (a real :class:`~alerting.notifiers.base.Notifier` that keeps what it is sent) so
hundreds of examples run in seconds; the HTTP path is covered by the webhook tests.
"""

from __future__ import annotations

import asyncio
from typing import ClassVar

from hypothesis import given, settings
from hypothesis import strategies as st

from alerting.memory_store import MemoryStore
from alerting.notifiers.base import Notification, Notifier, Outcome
from alerting.samples import Sample
from alerting.service import AlertService
from catalog.channels import ChannelSpec
from tests.alerting.conftest import Clock, hook, make_config

GROUP_INTERVAL = 300.0


class RecordingNotifier:
    """Test-only notifier: delivers into a list."""

    kind: ClassVar[str] = "recording"

    def __init__(self, sink: list[tuple[float, Notification]], clock: Clock) -> None:
        self.sink = sink
        self.clock = clock

    async def send(self, notification: Notification) -> Outcome:
        self.sink.append((self.clock(), notification))
        return Outcome(True, False, "recorded")


async def scenario(
    values: list[tuple[float | None, float | None]], for_s: float, keep_s: float
) -> list[tuple[float, Notification]]:
    sent: list[tuple[float, Notification]] = []
    clock = Clock()

    def factory(spec: ChannelSpec) -> Notifier:
        return RecordingNotifier(sent, clock)

    rules = {
        "orders": [{"type": "threshold", "name": "low", "below": 10, "for": for_s, "keep_firing_for": keep_s}]
    }
    routes = [
        {"channels": ["ops"], "group_wait": 30, "group_interval": GROUP_INTERVAL, "repeat_interval": 900}
    ]
    svc = AlertService(
        make_config(rules, routes, {"ops": hook("http://127.0.0.1:9/")}),
        MemoryStore(),
        clock=clock,
        notifier_factory=factory,
    )
    for pair in [*values, (50.0, 50.0)]:  # end healthy, so every incident resolves
        for region, value in zip(("east", "west"), pair, strict=True):
            await svc.observe(Sample("orders", {"region": region}, clock.now - 60, clock.now, value))
        for _ in range(6):
            clock.advance(10)
            await svc.tick()
    for _ in range(int(keep_s + 2 * GROUP_INTERVAL) // 10 + 1):  # let keep-firing and group_interval pass
        clock.advance(10)
        if clock.now % 60 == 0:
            for region in ("east", "west"):
                await svc.observe(Sample("orders", {"region": region}, clock.now - 60, clock.now, 50.0))
        await svc.tick()
    assert await svc.store.list_alerts() == []  # every alert resolved and forgotten
    return sent


values = st.lists(st.tuples(st.sampled_from([1.0, 20.0, None]), st.sampled_from([1.0, 20.0])), max_size=30)


@settings(max_examples=80, deadline=None)
@given(values=values, for_s=st.sampled_from([0.0, 120.0]), keep_s=st.sampled_from([0.0, 120.0]))
def test_notifications_are_consistent(
    values: list[tuple[float | None, float | None]], for_s: float, keep_s: float
) -> None:
    sent = asyncio.run(scenario(values, for_s, keep_s))
    assert len({n.id for _, n in sent}) == len(sent)  # nothing sent twice
    last: dict[str, str] = {}
    for (t0, n0), (t1, _) in zip(sent, sent[1:], strict=False):
        if n0.status == "firing":  # the group lives on: updates and repeats respect group_interval
            assert t1 - t0 >= GROUP_INTERVAL
    for _, n in sent:
        assert n.status == ("firing" if any(a.status == "firing" for a in n.alerts) else "resolved")
        for a in n.alerts:
            # a resolution is only told for an alert whose firing was told
            assert a.status == "firing" or last.get(a.fingerprint) == "firing"
            last[a.fingerprint] = a.status
    assert all(status == "resolved" for status in last.values())  # every told incident was closed
