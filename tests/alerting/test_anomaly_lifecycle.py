"""The anomaly lifecycle follows the data: a real seasonal detector fed the demo's payment outage, its verdicts
judged by the alert service exactly as the worker does (streams.observers), notifications to a real webhook."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

import pytest

from alerting.config import AlertingConfigError
from alerting.incidents import judge, open_incident
from alerting.memory_store import MemoryStore
from alerting.samples import Sample
from alerting.service import AlertService
from detectors.registry import make_detector
from streams.observers import _sample
from streams.records import KpiValue
from tests.alerting.conftest import Clock, Receiver, hook, make_config

# the shop's anomaly rule on paid orders (examples/shop.yaml)
UNUSUAL = {"name": "unusual", "type": "anomaly", "fire_on": ["anomaly"], "min_score": 0.6, "severity": "warning"}
ROUTE = {"channels": ["ops"], "group_by": ["kpi"], "group_wait": "1m", "group_interval": "10m",
         "repeat_interval": "12h"}
OUTAGE = range(60, 80)  # windows of the outage: paid orders 0 for 20 windows


def paid_orders(outage: range, during: float | None = 0.0, n: int = 110, seed: int = 3) -> list[float]:
    """A count around 37 per window, ``during`` (or ~10) inside ``outage``."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        normal = float(sum(rng.random() < 0.5 for _ in range(74)))
        low = float(sum(rng.random() < 0.5 for _ in range(20))) if during is None else during
        out.append(low if i in outage else normal)
    return out


async def replay(clock: Clock, receiver: Receiver, values: list[float],
                 rule: Mapping[str, Any] = UNUSUAL) -> tuple[list[tuple[int, str, str]], AlertService]:
    """Feed ``values`` window by window through a real detector into the service (ticking after each window);
    return (window index, old->new, summary) per transition."""
    svc = AlertService(make_config({"paid_orders": [rule]}, [ROUTE], {"ops": hook(receiver.url)}), MemoryStore(),
                       clock=clock, wall_clock=clock)
    det = make_detector("seasonal", "medium", seasonality="none", warmup=30)  # what the demo and shop test run
    start = clock.now
    out = []
    for i, value in enumerate(values):
        ws = start + 60.0 * i
        verdict = det.update(ws + 60.0, value)
        clock.now = ws + 60.0
        val = KpiValue("paid_orders", "region=east", int(ws * 1000), int((ws + 60.0) * 1000), value, 0)
        for t in await svc.observe(_sample(val, None if verdict.warming_up else verdict)):
            out.append((i, f"{t.old}->{t.new}", t.summary))
        for _ in range(6):  # ten-second ticks, as the worker's timer
            clock.advance(10.0)
            await svc.tick()
    return out, svc


def posts(receiver: Receiver) -> list[tuple[str, str]]:
    return [(p["status"], a["annotations"].get("summary", "")) for p in receiver.posts for a in p["alerts"]]


async def test_outage_stays_firing_while_zero_and_resolves_only_after_it(clock: Clock, receiver: Receiver) -> None:
    values = paid_orders(OUTAGE)
    transitions, _ = await replay(clock, receiver, values)
    firing = [i for i, change, _ in transitions if change.endswith("->firing")]
    resolved = [i for i, change, _ in transitions if change.endswith("->resolved")]
    assert firing == [OUTAGE.start], transitions                      # announced on the drop, once
    # held points (the detector's hold-off) and its widening band do not resolve it: resolved only after the
    # outage, after `resolve_after` (default 3) windows back in the normal band
    assert resolved == [OUTAGE.stop + 2], transitions
    assert all(values[i] != 0 for i in resolved)
    told = posts(receiver)
    assert [s for s, _ in told] == ["firing", "resolved"], told          # no resolved notice during the outage
    assert not any("0 is normal" in summary for _, summary in told)
    assert "back in the normal range" in told[1][1]
    assert told[0][1].startswith("anomaly: 0, expected "), told


async def test_a_lasting_drop_to_zero_is_described_as_a_new_level(clock: Clock, receiver: Receiver) -> None:
    _, svc = await replay(clock, receiver, paid_orders(OUTAGE)[: OUTAGE.start + 12])   # past the detector's drift
    (alert,) = await svc.alerts()
    assert alert["state"] == "firing" and alert["value"] == 0
    assert alert["summary"].startswith("drift: new level 0 since "), alert["summary"]
    assert alert["incident"]["level_since"] == alert["incident"]["since"] == alert["starts_at"] - 60.0


async def test_lasting_fall_accepted_as_drift_is_told_as_a_new_level(clock: Clock, receiver: Receiver) -> None:
    values = paid_orders(range(60, 200), during=None, n=140)          # orders fall to ~10 and stay there
    transitions, _ = await replay(clock, receiver, values)
    resolved = [(i, summary) for i, change, summary in transitions if change == "firing->resolved"]
    assert len(resolved) == 1, transitions
    assert resolved[0][1].startswith("drift: new level ") and resolved[0][1].endswith("(the new normal)")
    assert not any("is normal" in s and "new normal" not in s for _, s in posts(receiver))


async def test_resolve_after_is_configurable(clock: Clock, receiver: Receiver) -> None:
    values = paid_orders(OUTAGE)
    transitions, _ = await replay(clock, receiver, values, {**UNUSUAL, "resolve_after": 1})
    assert [i for i, change, _ in transitions if change.endswith("->resolved")] == [OUTAGE.stop]


def test_resolve_after_must_be_at_least_one_window() -> None:
    with pytest.raises(AlertingConfigError, match="resolve_after"):
        make_config({"paid_orders": [{**UNUSUAL, "resolve_after": 0}]}, [ROUTE], {"ops": hook("http://x/")})


def test_a_detector_without_a_band_resolves_when_it_no_longer_flags() -> None:
    opened = open_incident(Sample("k", {}, 0.0, 60.0, 99.0, None, None, None, 0.9, True))
    assert judge(opened, Sample("k", {}, 60.0, 120.0, 98.0, None, None, None, 0.9, True), flagged=True)[0].active
    assert judge(opened, Sample("k", {}, 120.0, 180.0, 5.0, None, None, None, 0.1), flagged=False)[0].calm
