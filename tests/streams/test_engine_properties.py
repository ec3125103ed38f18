"""Pure engine invariants (no broker): window assignment, mergeable aggregations, partition split = whole,
replays counted once, absence closes windows with zero."""

from __future__ import annotations

import random
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from catalog import parse_catalog
from streams.aggregations import RELATIVE_ACCURACY, make_aggregation
from streams.engine import PartitionEngine
from streams.merge import Merger
from streams.plan import compile_plan

CAT = parse_catalog("""
version: 1
sources:
  s: {topic: t, partitions: 3}
kpis:
  - {name: n, source: s, measure: count, dimensions: [region]}
  - {name: total, source: s, measure: sum(x)}
  - {name: hi, source: s, measure: max(x)}
  - {name: p50, source: s, measure: p50(x)}
  - {name: hop, source: s, measure: count, window: {type: hopping, size: 3m, step: 1m}}
""")
PLAN = compile_plan(CAT)
SRC = PLAN.sources[0]
T0 = 1_767_571_200_000


@given(st.integers(min_value=0, max_value=10**13), st.sampled_from([(60_000, 60_000), (180_000, 60_000),
                                                                    (3_600_000, 900_000)]))
def test_every_window_containing_a_time_is_assigned(ts: int, window: tuple[int, int]) -> None:
    size, step = window
    kp = PLAN.kpis["n"].__class__(**{**{f: getattr(PLAN.kpis["n"], f) for f in PLAN.kpis["n"].__slots__},
                                     "size_ms": size, "advance_ms": step})
    starts = list(kp.window_starts(ts))
    assert len(starts) == size // step
    assert all(s <= ts < s + size and s % step == 0 for s in starts)


@given(st.lists(st.floats(min_value=0.01, max_value=1e6), min_size=1, max_size=200), st.integers(1, 5))
def test_aggregations_merge_to_the_same_result_as_one_pass(xs: list[float], parts: int) -> None:
    for kind, q in (("count", None), ("sum", None), ("avg", None), ("min", None), ("max", None), ("percentile", 90.0)):
        agg = make_aggregation(kind, q)
        whole = agg.init()
        for x in xs:
            whole = agg.add(whole, x)
        merged = agg.init()
        for p in range(parts):
            part = agg.init()
            for x in xs[p::parts]:
                part = agg.add(part, x)
            merged = agg.merge(merged, orjson.loads(orjson.dumps(part)))
        a, b = agg.result(whole), agg.result(merged)
        assert a is not None and b is not None
        assert abs(a - b) <= 1e-9 * max(1.0, abs(a)), kind
    true_p90 = sorted(xs)[int(0.9 * (len(xs) - 1))]
    sketch = make_aggregation("percentile", 90.0)
    state = sketch.init()
    for x in xs:
        state = sketch.add(state, x)
    assert abs(sketch.result(state) - true_p90) <= RELATIVE_ACCURACY * true_p90 * 1.0001  # type: ignore[operator]


def _run(events_by_partition: dict[int, list[list[dict[str, Any]]]], replay: bool = False) -> dict[tuple[str, int, str], float | None]:
    wall = [T0 / 1000]          # a wall clock near the events: others are future_time / bad_time
    merger = Merger(PLAN, wall=lambda: wall[0])
    for p, messages in events_by_partition.items():
        eng = PartitionEngine(SRC, p, wall=lambda: wall[0], speedup=60.0, idle_ms=1000)
        for offset, msg in enumerate(messages):
            eng.process(msg, offset)
            if replay and offset % 3 == 0:
                eng.process(msg, offset)          # redelivered after a crash: must not count twice
        wall[0] += 30                             # idle: the watermark follows the clock and closes everything
        eng.advance()
        for partial in eng.take_partials():
            merger.add_partial(orjson.loads(orjson.dumps(partial.to_record())))
    wall[0] += 10       # past partition_wait: partitions that never had events do not hold windows back
    return {(v.kpi, v.window_start_ms, v.series): v.value for v in merger.poll()}


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10**6))
def test_split_over_partitions_and_replays_equal_one_pass(seed: int) -> None:
    rng = random.Random(seed)
    events: list[dict[str, Any]] = [{"ts": T0 + rng.randrange(5 * 60_000), "x": rng.randrange(1, 100), "region": rng.choice("ab")}
              for _ in range(rng.randrange(1, 120))]
    events.sort(key=lambda e: e["ts"])       # in order: out-of-order beyond grace is a dead letter by design
    one = _run({0: [[e] for e in events]})
    split: dict[int, list[list[dict[str, Any]]]] = {0: [], 1: [], 2: []}
    for i in range(0, len(events), 7):
        split[rng.randrange(3)].append(events[i:i + 7])
    assert _run(split, replay=True) == one
    first = events[0]["ts"] - events[0]["ts"] % 60_000     # windows start with the partition's first event
    for w in range(5):
        ws = T0 + w * 60_000
        if ws < first:
            continue
        assert one[("n", ws, "")] == sum(1 for e in events if ws <= e["ts"] < ws + 60_000)


def test_absence_closes_windows_with_zero_and_no_value() -> None:
    wall = [T0 / 1000]
    eng = PartitionEngine(SRC, 0, wall=lambda: wall[0], speedup=60.0, idle_ms=1000)
    eng.process([{"ts": T0 + 1000, "x": 5, "region": "a"}], 0)
    closes = []
    for _ in range(100):                          # ticks of 2 s idle × 60 = 200 simulated minutes
        wall[0] += 2
        eng.advance()
        closes += [p for p in eng.take_partials() if p.kpi == "n"]
    assert len(closes) >= 100 and closes[0].series == {"": [1], "region=a": [1]}
    assert all(p.series == {} for p in closes[1:])
    merger = Merger(PLAN, wall=lambda: wall[0])
    for p in closes:
        merger.add_partial(p)
    wall[0] += 10                                 # the other two partitions never report: partition_wait
    values = {(v.kpi, v.window_start_ms, v.series): v.value for v in merger.poll()}
    assert values[("n", T0 + 60_000, "")] == 0 and values[("n", T0 + 60_000, "region=a")] == 0
