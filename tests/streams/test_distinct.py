"""Bounded distinct states (pure, no broker): exact up to a threshold, then a HyperLogLog sketch that merges
register for register across partitions, stays a few KB, and restores from the changelog as it was live."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from catalog import CatalogError, parse_catalog
from streams.aggregations import DISTINCT_STANDARD_ERROR, make_aggregation, to_json_state
from streams.engine import PartitionEngine
from streams.merge import Merger
from streams.plan import compile_plan

T0 = 1_767_571_200_000
MIN = 60_000


def wire(state: Any) -> Any:
    """What a state looks like after a changelog record or a `kpi.partials` message."""
    return orjson.loads(orjson.dumps(to_json_state(state)))


def number(result: float | None) -> float:
    """A result that must be a number (a distinct count always is)."""
    assert result is not None
    return result


def fold(agg: Any, values: Iterable[Any]) -> Any:
    state = agg.init()
    for v in values:
        state = agg.add(state, v)
    return state


values_st = st.lists(st.integers(0, 400) | st.text(max_size=3), max_size=300)


@settings(max_examples=60, deadline=None)
@given(values_st, st.integers(1, 5), st.sampled_from([0, 3, 40, 1000]))
def test_split_over_partitions_merges_to_the_one_pass_state(values: list[Any], parts: int, exact_up_to: int) -> None:
    agg = make_aggregation("distinct", exact_up_to=exact_up_to)
    whole = fold(agg, values)
    chunks = [wire(fold(agg, values[p::parts])) for p in range(parts)]
    forward = agg.init()
    for chunk in chunks:
        forward = agg.merge(forward, chunk)
    backward = agg.init()
    for chunk in reversed(chunks):
        backward = agg.merge(chunk, backward)
    # The same state, not only the same number: the same set of hashes, or the same 4096 registers.
    assert agg.load(wire(forward)) == agg.load(wire(backward)) == agg.load(wire(whole)) == agg.load(whole)
    truth = len({str(v) for v in values})
    if truth <= exact_up_to:
        assert agg.result(forward) == truth
    else:
        assert number(agg.result(forward)) > exact_up_to     # an estimate is always above the threshold: marked as such


def test_merging_does_not_change_its_inputs() -> None:
    agg = make_aggregation("distinct", exact_up_to=10)
    a, b = fold(agg, range(8)), fold(agg, range(5, 20))
    a_before, b_before = wire(a), wire(b)
    sketch = agg.merge(a, b)
    agg.merge(sketch, a)
    agg.merge(a, sketch)
    assert wire(a) == a_before and wire(b) == b_before and agg.result(a) == 8


def test_exact_up_to_the_threshold_then_an_estimate_above_it() -> None:
    agg = make_aggregation("distinct", exact_up_to=1000)
    state = fold(agg, [f"u{i % 1000}" for i in range(5000)])       # 1000 distinct values, each seen 5 times
    assert agg.result(state) == 1000.0 and agg.result(wire(state)) == 1000.0
    state = agg.add(state, "one more")
    estimate = number(agg.result(state))
    assert estimate > 1000
    assert abs(estimate - 1001) <= 3 * DISTINCT_STANDARD_ERROR * 1001
    assert agg.result(agg.init()) == 0.0
    # 5 and "5" were one value before sketches (values were kept as strings); they still are.
    assert agg.result(fold(agg, [5, "5", 5.0])) == 2.0


def test_estimates_within_three_sigma_and_a_sketch_stays_a_few_kb() -> None:
    agg = make_aggregation("distinct")
    state = agg.init()
    sizes = {}
    for n, upto in enumerate((1000, 10_000, 200_000, 1_000_000)):
        start = 0 if n == 0 else (1000, 10_000, 200_000)[n - 1]
        for i in range(start, upto):
            state = agg.add(state, f"user-{i}")
        estimate = agg.result(wire(state))
        assert estimate is not None
        assert abs(estimate - upto) <= 3 * DISTINCT_STANDARD_ERROR * upto, (upto, estimate)
        sizes[upto] = len(orjson.dumps(to_json_state(state)))
    assert sizes[1000] < 16 * 1024                      # the exact set at the threshold: 8 bytes a value
    assert sizes[1_000_000] < 16 * 1024 and sizes[200_000] < 16 * 1024
    assert sizes[1_000_000] <= sizes[10_000] * 1.2      # bounded: 100x the values, about the same size


CAT = parse_catalog("""
version: 1
sources:
  s: {topic: t, partitions: 3}
kpis:
  - {name: users, source: s, measure: distinct(user), dimensions: [region]}
  - {name: small, source: s, measure: distinct(user), distinct: {exact_up_to: 50}}
""")
PLAN = compile_plan(CAT)
SRC = PLAN.sources[0]


def events(n: int, first: int = 0, ts: int = T0) -> list[dict[str, Any]]:
    return [{"ts": ts + i % MIN, "user": f"u{first + i}", "region": "ab"[i % 2]} for i in range(n)]


def test_restored_engine_equals_the_live_one() -> None:
    wall = [T0 / 1000]          # the wall clock at the data: event time is bounded by it
    live = PartitionEngine(SRC, 0, wall=lambda: wall[0], speedup=60.0, idle_ms=1000)
    live.process(events(30), 0)                        # window 0: exact everywhere
    live.process(events(3000, ts=T0 + MIN), 1)         # window 1: 3000 users, sketched in every series
    records = {k: v for k, v in live.take_changes() if v is not None}
    restored = PartitionEngine(SRC, 0, wall=lambda: wall[0], speedup=60.0, idle_ms=1000)
    restored.restore(records)
    for eng in (live, restored):
        eng.process(events(500, first=2900, ts=T0 + MIN), 2)    # overlaps: 400 new users in window 1
        eng.process(events(10, ts=T0 + 2 * MIN), 3)
    assert live.take_changes() == restored.take_changes()
    wall[0] += 600                                      # idle: everything closes
    for eng in (live, restored):
        eng.advance()
    assert live.take_partials() == restored.take_partials()


def test_partials_of_three_partitions_merge_to_the_one_pass_value() -> None:
    wall = [T0 / 1000]          # the wall clock at the data: event time is bounded by it
    merger = Merger(PLAN, wall=lambda: wall[0])
    agg = PLAN.kpis["users"].agg
    all_events: list[dict[str, Any]] = []
    for p in range(3):
        evs = events(4000, first=p * 3000)              # overlapping users across partitions
        all_events += evs
        eng = PartitionEngine(SRC, p, wall=lambda: wall[0], speedup=60.0, idle_ms=1000)
        eng.process(evs, 0)
        wall[0] += 600
        eng.advance()
        for partial in eng.take_partials():
            merger.add_partial(orjson.loads(orjson.dumps(partial.to_record())))
    values = {(v.kpi, v.window_start_ms, v.series): v.value for v in merger.poll()}
    assert values[("users", T0, "")] == agg.result(fold(agg, [e["user"] for e in all_events]))
    assert values[("users", T0, "region=a")] == agg.result(fold(agg, [e["user"] for e in all_events
                                                                      if e["region"] == "a"]))
    assert abs(values[("users", T0, "")] - 10_000) <= 3 * DISTINCT_STANDARD_ERROR * 10_000  # type: ignore[operator]
    small = PLAN.kpis["small"].agg
    assert values[("small", T0, "")] == small.result(fold(small, [e["user"] for e in all_events]))


def test_a_changelog_record_from_before_sketches_restores() -> None:
    old = orjson.dumps({"o": 7, "r": 0, "s": {"": [f"u{i}" for i in range(60)], "region=a": ["u1", "u2"]}})
    eng = PartitionEngine(SRC, 0, wall=lambda: T0 / 1000)
    eng.restore({f"small|{PLAN.kpis['small'].state_key}|{T0}": old})
    agg = PLAN.kpis["small"].agg
    state = eng.windows[(1, T0)].series
    assert agg.load(wire(state[""])) == agg.load(wire(fold(agg, [f"u{i}" for i in range(60)])))   # now a sketch
    assert agg.result(state["region=a"]) == 2.0


def test_catalog_distinct_options_are_validated_with_their_line() -> None:
    base = """\
version: 1
sources:
  s: {topic: t}
kpis:
  - name: k
    source: s
    measure: MEASURE
    distinct: {exact_up_to: LIMIT}
"""
    for measure, limit, path, words in (("count", "10", "kpis.0.distinct", "only apply to a distinct"),
                                        ("distinct(u)", "99999", "kpis.0.distinct.exact_up_to", "less than or equal"),
                                        ("distinct(u)", "-1", "kpis.0.distinct.exact_up_to", "greater than or equal")):
        with pytest.raises(CatalogError) as exc:
            parse_catalog(base.replace("MEASURE", measure).replace("LIMIT", limit), "cat.yaml")
        found = [(i.line, ".".join(str(p) for p in i.path), i.message) for i in exc.value.issues]
        assert any(line == 8 and p == path and words in msg for line, p, msg in found), found
    cat = parse_catalog(base.replace("MEASURE", "distinct(u)").replace("LIMIT", "2")
                        .replace("version: 1\n", "version: 1\ndefaults: {distinct: {exact_up_to: 7}}\n"))
    assert cat.exact_up_to(cat.kpis[0]) == 2
    agg = compile_plan(cat).kpis["k"].agg
    assert agg.result(fold(agg, "ab")) == 2.0 and isinstance(agg.load(wire(fold(agg, "abc"))), bytearray)
    cat = parse_catalog(base.replace("MEASURE", "distinct(u)").replace("    distinct: {exact_up_to: LIMIT}\n", "")
                        .replace("version: 1\n", "version: 1\ndefaults: {distinct: {exact_up_to: 7}}\n"))
    assert cat.exact_up_to(cat.kpis[0]) == 7
