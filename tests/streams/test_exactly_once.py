"""The pieces of the exactly-once argument (README, "Exactly-once numbers without transactions"), pure: no broker.

The torture test (test_torture.py) checks the whole through repeated kill -9; these check each step of the
argument on its own, so a failure says which step broke.
"""

from __future__ import annotations

from typing import Any

import orjson

from catalog import parse_catalog
from streams.engine import PartitionEngine
from streams.merge import INCOMPLETE_KEEP_MS, Merger
from streams.plan import compile_plan

PLAN = compile_plan(parse_catalog("""
version: 1
defaults: {window: {type: tumbling, size: 1m, grace: 30s}}
sources:
  s: {topic: t, partitions: 2}
kpis:
  - {name: n, source: s, measure: count}
"""))
SRC = PLAN.sources[0]
T0 = 1_767_571_200_000
MIN = 60_000


def partial(p: int, w: int, count: int, o: int, rev: int = 0) -> dict[str, Any]:
    kp = PLAN.kpis["n"]
    return {"kpi": "n", "sk": kp.state_key, "ws": T0 + w * MIN, "we": T0 + (w + 1) * MIN, "src": "s", "p": p,
            "rev": rev, "o": o, "series": {"": [count]} if count else {}}


def emitted(merger: Merger) -> dict[tuple[int, int], float | None]:
    """(window index, revision) -> value of the total series, for what one poll emits."""
    return {((v.window_start_ms - T0) // MIN, v.revision): v.value for v in merger.poll() if not v.series}


def test_a_partition_behind_but_reporting_is_waited_for() -> None:
    wall = [0.0]
    merger = Merger(PLAN, partition_wait_s=3.0, wall=lambda: wall[0])
    for w in range(6):                       # partition 0 is six windows ahead
        merger.add_partial(partial(0, w, 10, o=w))
    out: dict[tuple[int, int], float | None] = {}
    for w in range(6):                       # partition 1 catches up, one window every 2 s (< partition_wait)
        wall[0] += 2.0
        merger.add_partial(partial(1, w, 5, o=w))
        out.update(emitted(merger))
    assert out == {(w, 0): 15 for w in range(6)}          # each window published once, complete


def test_a_silent_partition_is_waited_out_then_revises_never_a_second_revision_0() -> None:
    wall = [0.0]
    merger = Merger(PLAN, partition_wait_s=3.0, wall=lambda: wall[0])
    merger.add_partial(partial(0, 0, 10, o=1))
    wall[0] += 3.5
    assert emitted(merger) == {(0, 0): 10}                # partition 1 silent: waited out
    for w in range(1, 8):                                 # later windows from partition 0 only, all waited out
        merger.add_partial(partial(0, w, 10, o=w + 1))
        wall[0] += 3.5
        emitted(merger)
    merger.add_partial(partial(1, 0, 4, o=1))             # partition 1 comes back with window 0
    assert emitted(merger) == {(0, 1): 14}                # a revision, not a new revision 0


def test_a_partial_for_a_dropped_window_is_counted_and_ignored() -> None:
    wall = [0.0]
    merger = Merger(PLAN, partition_wait_s=3.0, wall=lambda: wall[0])
    last = INCOMPLETE_KEEP_MS // MIN + 10
    for w in (0, last):
        merger.add_partial(partial(0, w, 10, o=w))
        wall[0] += 3.5
        emitted(merger)
    assert ("n", T0) not in merger.entries                # window 0 finalised without partition 1, kept 6 h, gone
    merger.add_partial(partial(1, 0, 4, o=0))
    assert emitted(merger) == {} and merger.dropped == {"n": 1}


def test_an_older_partial_never_replaces_a_newer_one() -> None:
    wall = [0.0]
    merger = Merger(PLAN, partition_wait_s=3.0, wall=lambda: wall[0])
    merger.add_partial(partial(0, 0, 10, o=9))
    merger.add_partial(partial(1, 0, 5, o=3))
    assert emitted(merger) == {(0, 0): 15}
    merger.add_partial(partial(0, 0, 7, o=6))             # a replayed, older state of partition 0's window
    assert emitted(merger) == {}


def test_a_restored_merger_ignores_replayed_partials_and_republishes_what_it_held() -> None:
    wall = [0.0]
    first = Merger(PLAN, partition_wait_s=3.0, wall=lambda: wall[0])
    inputs = [partial(0, 0, 10, o=1), partial(1, 0, 5, o=1), partial(0, 1, 8, o=2)]
    for offset, p in enumerate(inputs):
        first.add_partial(p, offset)
    assert emitted(first) == {(0, 0): 15}
    records = {k: orjson.loads(orjson.dumps(doc)) for k, doc in first.take_changes() if doc is not None}
    second = Merger(PLAN, partition_wait_s=3.0, wall=lambda: wall[0])
    again = {((v.window_start_ms - T0) // MIN, v.revision): v.value for v in second.restore(records) if not v.series}
    assert again == {(0, 0): 15}                          # re-published with the same revision and value
    for offset, p in enumerate(inputs):                   # Kafka redelivers from the last committed offset
        second.add_partial({**p, "series": {"": [999]}}, offset)
    assert emitted(second) == {}                          # nothing re-applied, nothing re-published
    assert second.entries[("n", T0 + MIN)].parts["s:0"] == {"": [8]}


def test_stage_1_skips_a_redelivered_message_whole_after_a_restore() -> None:
    wall = [T0 / 1000]                       # the wall clock at the data: event time is bounded by it
    eng = PartitionEngine(SRC, 0, wall=lambda: wall[0], idle_ms=600_000)
    bad = {"region": "no time"}
    assert len(eng.process([{"ts": T0 + 1000}, bad], 0)) == 1
    eng.process([{"ts": T0 + 2000}], 1)
    records = {k: v for k, v in eng.take_changes() if v is not None}
    restored = PartitionEngine(SRC, 0, wall=lambda: wall[0], idle_ms=600_000)
    restored.restore(records)
    assert restored.process([{"ts": T0 + 1000}, bad], 0) == []     # no second dead letter
    restored.process([{"ts": T0 + 2000}], 1)
    restored.process([{"ts": T0 + 3000}], 2)
    restored.process([{"ts": T0 + MIN + 1}], 3)                    # closes window 0
    restored.advance()
    closes = [p for p in restored.take_partials() if p.window_start_ms == T0]
    assert [c.series[""] for c in closes] == [[3]] and restored.stats.replayed == 2


RATIO_PLAN = compile_plan(parse_catalog("""
version: 1
defaults: {window: {type: tumbling, size: 1m, grace: 30s}}
sources:
  s: {topic: t, partitions: 1}
kpis:
  - {name: n, source: s, measure: count}
  - {name: paid, source: s, measure: count, filter: {status: paid}}
  - {name: rate, ratio: {numerator: paid, denominator: n}}
"""))


def test_a_ratio_is_computed_when_its_lagging_part_arrives_after_the_other_moved_on() -> None:
    wall = [0.0]
    merger = Merger(RATIO_PLAN, partition_wait_s=3.0, wall=lambda: wall[0])

    def part(kpi: str, w: int, count: int) -> dict[str, Any]:
        return {"kpi": kpi, "sk": RATIO_PLAN.kpis[kpi].state_key, "ws": T0 + w * MIN, "we": T0 + (w + 1) * MIN,
                "src": "s", "p": 0, "rev": 0, "o": w, "series": {"": [count]}}

    merger.add_partial(part("n", 0, 10))
    merger.add_partial(part("paid", 0, 4))
    assert [v.value for v in merger.poll() if v.kpi == "rate"] == [0.4]
    for w in range(1, 13):                   # the denominator's partials of 12 windows come in first...
        merger.add_partial(part("n", w, 10))
    merger.poll()
    for w in range(1, 13):                   # ...then the numerator's, in a later batch
        merger.add_partial(part("paid", w, 4))
    rates = {(v.window_start_ms - T0) // MIN: v.value for v in merger.poll() if v.kpi == "rate"}
    assert rates == {w: 0.4 for w in range(1, 13)}


def test_a_ratio_is_computed_when_its_part_sends_its_first_windows_after_the_other_moved_on() -> None:
    """A backlog read after a start: stage 1 closes windows KPI by KPI, so the denominator's first 13 windows can be
    final before the numerator has any window at all. Its windows must still be there when the numerator comes."""
    merger = Merger(RATIO_PLAN, partition_wait_s=3.0, wall=lambda: 0.0)

    def part(kpi: str, w: int, count: int) -> dict[str, Any]:
        return {"kpi": kpi, "sk": RATIO_PLAN.kpis[kpi].state_key, "ws": T0 + w * MIN, "we": T0 + (w + 1) * MIN,
                "src": "s", "p": 0, "rev": 0, "o": w, "series": {"": [count]}}

    for w in range(13):
        merger.add_partial(part("n", w, 10))
    assert len([v for v in merger.poll() if v.kpi == "n"]) == 13
    for w in range(13):
        merger.add_partial(part("paid", w, 4))
    rates = {(v.window_start_ms - T0) // MIN: v.value for v in merger.poll() if v.kpi == "rate"}
    assert rates == {w: 0.4 for w in range(13)}


def test_a_ratio_part_that_never_reports_holds_the_other_part_for_a_bounded_time() -> None:
    """A part whose source is dead from the start must not keep the other part's windows for ever."""
    merger = Merger(RATIO_PLAN, partition_wait_s=3.0, wall=lambda: 0.0)

    def part(w: int) -> dict[str, Any]:
        return {"kpi": "n", "sk": RATIO_PLAN.kpis["n"].state_key, "ws": T0 + w * MIN, "we": T0 + (w + 1) * MIN,
                "src": "s", "p": 0, "rev": 0, "o": w, "series": {"": [10]}}

    horizon = INCOMPLETE_KEEP_MS // MIN
    for w in range(horizon + 20):
        merger.add_partial(part(w))
        merger.poll()
    kept = sorted((ws - T0) // MIN for (kpi, ws) in merger.entries if kpi == "n")
    assert kept and kept[0] >= 19 and kept[-1] == horizon + 19


def test_a_window_final_and_past_retention_in_one_poll_is_not_deleted_before_it_is_published() -> None:
    """A backlog closes many windows at once: the oldest are final and already past retention in the same poll.
    The changelog written before the values are published must still hold them (a kill in between re-publishes
    them on restore); they are dropped by a later poll, once they have been published."""
    merger = Merger(PLAN, partition_wait_s=3.0, wall=lambda: 0.0)
    for w in range(20):
        for p in (0, 1):
            merger.add_partial(partial(p, w, 5, o=w), w * 2 + p)
    assert emitted(merger) == {(w, 0): 10 for w in range(20)}
    records = {k: doc for k, doc in merger.take_changes()}
    assert not [k for k, doc in records.items() if doc is None]          # no tombstone yet
    restored = Merger(PLAN, partition_wait_s=3.0, wall=lambda: 0.0)     # killed after the write, before publishing
    again = {(v.window_start_ms - T0) // MIN for v in restored.restore(orjson.loads(orjson.dumps(
        {k: doc for k, doc in records.items() if doc is not None}))) if not v.series}
    assert again == set(range(20))
    assert emitted(merger) == {}                                         # the next poll, after publishing...
    gone = sorted(k for k, doc in merger.take_changes() if doc is None)
    assert gone and len(gone) < 20 and ("n", T0) not in merger.entries  # ...drops the old windows


def test_a_ratio_part_is_not_deleted_in_the_write_that_holds_the_ratio_it_completes() -> None:
    """The numerator's window 0 comes last, when the denominator's window 0 is past retention: the write made before
    the ratio is published must keep the denominator's window, or a kill in between loses the ratio for good."""
    merger = Merger(RATIO_PLAN, partition_wait_s=3.0, wall=lambda: 0.0)

    def part(kpi: str, w: int, count: int) -> dict[str, Any]:
        return {"kpi": kpi, "sk": RATIO_PLAN.kpis[kpi].state_key, "ws": T0 + w * MIN, "we": T0 + (w + 1) * MIN,
                "src": "s", "p": 0, "rev": 0, "o": w, "series": {"": [count]}}

    merger.add_partial(part("n", 0, 10))
    for w in range(1, 13):
        merger.add_partial(part("n", w, 10))
        merger.add_partial(part("paid", w, 4))
    merger.poll()
    records = {k: doc for k, doc in merger.take_changes() if doc is not None}
    merger.add_partial(part("paid", 0, 5))       # late: partition 0 had sent its later windows first
    assert [(v.kpi, v.value) for v in merger.poll() if v.window_start_ms == T0] == [("paid", 5), ("rate", 0.5)]
    for key, doc in merger.take_changes():       # what is durable when the kill comes, before publishing
        if doc is None:
            records.pop(key, None)
        else:
            records[key] = doc
    restored = Merger(RATIO_PLAN, partition_wait_s=3.0, wall=lambda: 0.0)
    again = [(v.kpi, v.value) for v in restored.restore(orjson.loads(orjson.dumps(records))) if v.window_start_ms == T0]
    assert ("rate", 0.5) in again
