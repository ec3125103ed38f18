"""Pure (no broker): event time is bounded, closing windows over a long gap is bounded, the idle watermark
survives a restart, sums never overflow, stage 2 refuses malformed partials and never emits inf."""

from __future__ import annotations

import math
import sys
from typing import Any

import orjson
import pytest

from catalog import parse_catalog
from streams.engine import CLOSE_LOOKBACK_WINDOWS, DEFAULT_FLOOR_MS, PartitionEngine
from streams.events import MAX_TS_MS, EventError, decode_message, event_time_ms
from streams.merge import Merger
from streams.plan import compile_plan
from streams.records import BadPartial

CAT = """
version: 1
sources:
  s: {topic: t, partitions: 2%s}
kpis:
  - {name: n, source: s, measure: count, dimensions: [region]}
  - {name: total, source: s, measure: sum(x)}
  - {name: mean, source: s, measure: avg(x)}
  - {name: hop, source: s, measure: count, window: {type: hopping, size: 3m, step: 1m}}
"""
PLAN = compile_plan(parse_catalog(CAT % ""))
SRC = PLAN.sources[0]
NOW = 1_767_571_200.0            # the wall clock of these tests (s): 2026-01-05T00:00:00Z
T0 = int(NOW * 1000)
MIN = 60_000


class Clock:
    def __init__(self, t: float = NOW) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def engine(clock: Clock, **kw: Any) -> PartitionEngine:
    return PartitionEngine(kw.pop("src", SRC), 0, wall=clock, **{"speedup": 1.0, "idle_ms": 1000, **kw})


def reasons(dead: list[Any]) -> list[str]:
    return [d.reason for d in dead]


@pytest.mark.parametrize("value", [1e30, 10**20, float(MAX_TS_MS + 1), -1, -0.5, "0000-01-01T00:00:00Z",
                                   "10000-01-01T00:00:00Z", "9999-12-31T23:59:59-14:00", "1969-12-31T23:59:59Z",
                                   "0001-01-01T00:00:00+14:00", float("inf"), "now", True, None, [1]])
def test_event_time_out_of_range_is_bad_time_never_another_exception(value: Any) -> None:
    with pytest.raises(EventError) as exc:
        event_time_ms(value)
    assert exc.value.reason == "bad_time"


def test_event_time_in_range() -> None:
    assert event_time_ms(0) == 0
    assert event_time_ms(MAX_TS_MS) == MAX_TS_MS
    assert event_time_ms("9999-12-31T23:59:59.999Z") == MAX_TS_MS
    assert event_time_ms(1_700_000_000.5) == 1_700_000_000_500


def test_future_and_floor_are_dead_letters_and_move_nothing() -> None:
    clock = Clock()
    eng = engine(clock)
    dead = eng.process([{"ts": "2100-01-01T00:00:00Z", "x": 1}, {"ts": 0, "x": 1}, {"ts": 1e30, "x": 1},
                        {"ts": T0 + 5 * MIN + 1, "x": 1},                       # just past max_future (5m)
                        {"ts": T0 - DEFAULT_FLOOR_MS - 1, "x": 1}], 0)           # just before the floor
    assert reasons(dead) == ["future_time", "bad_time", "bad_time", "future_time", "bad_time"]
    assert eng.max_ts is None and eng.watermark is None and not eng.windows
    assert eng.process([{"ts": T0 - DEFAULT_FLOOR_MS, "x": 1}, {"ts": T0 + 5 * MIN, "x": 1}], 1) == []


def test_floor_is_the_first_start_kept_across_restarts_or_the_catalog_since() -> None:
    clock = Clock()
    eng = engine(clock)
    changes = dict(eng.take_changes())
    clock.t += 40 * 86400                          # restarted 40 days later: the floor does not move
    again = engine(clock)
    again.restore({k: v for k, v in changes.items() if v is not None})
    assert reasons(again.process([{"ts": T0 - DEFAULT_FLOOR_MS + 1, "x": 1}], 0)) == []
    since = compile_plan(parse_catalog(CAT % ", since: 2026-01-04T12:00:00Z")).sources[0]
    eng = engine(Clock(), src=since)
    assert reasons(eng.process([{"ts": T0 - 12 * 3_600_000 - 1, "x": 1}, {"ts": T0 - 12 * 3_600_000, "x": 1}], 0)) \
        == ["bad_time"]


def test_future_allowance_follows_a_sped_up_simulation() -> None:
    clock = Clock()
    eng = engine(clock, speedup=60.0)
    clock.t += 600                                 # a simulator started with the worker is 590 min ahead by now
    sim_now = T0 + 600 * 60 * 1000
    assert reasons(eng.process([{"ts": sim_now + 5 * MIN, "x": 1}], 0)) == []
    assert reasons(eng.process([{"ts": "2100-01-01T00:00:00Z", "x": 1}], 1)) == ["future_time"]


def test_catalog_max_future() -> None:
    src = compile_plan(parse_catalog(CAT % ", max_future: 1h")).sources[0]
    eng = engine(Clock(), src=src)
    assert reasons(eng.process([{"ts": T0 + 59 * MIN, "x": 1}, {"ts": T0 + 61 * MIN, "x": 1}], 0)) == ["future_time"]


def test_closing_after_a_long_gap_is_bounded_by_windows_with_data_plus_the_look_back() -> None:
    clock = Clock()
    eng = engine(clock, speedup=60.0)
    eng.process([{"ts": T0 + 1000, "x": 1, "region": "a"}], 0)
    eng.advance()
    eng.take_partials()
    clock.t += 1_000                                # 1000 s × 60: 1000 one-minute windows
    eng.process([{"ts": T0 + 500 * MIN, "x": 2, "region": "b"}], 1)
    clock.t += 1_000_000                            # a silence of 1.9 years of simulated time, in one advance
    eng.advance()
    partials = [p.to_record() for p in eng.take_partials()]
    for kpi in ("n", "total", "hop"):
        mine = [p for p in partials if p["kpi"] == kpi]
        with_data = [p for p in mine if p["series"]]
        assert len(with_data) == 2 * PLAN.kpis[kpi].size_ms // PLAN.kpis[kpi].advance_ms
        assert len(mine) == CLOSE_LOOKBACK_WINDOWS + len(with_data), kpi   # not the ~1e6 empty windows between
        assert {p["ws"] for p in with_data} >= {T0 + 500 * MIN}
        starts = [p["ws"] for p in mine]
        assert starts == sorted(starts) and len(set(starts)) == len(starts)
        assert eng.watermark is not None and eng.watermark - PLAN.kpis[kpi].advance_ms < starts[-1] + PLAN.kpis[kpi].size_ms <= eng.watermark
    first_window = next(p for p in partials if p["kpi"] == "n" and p["series"])
    assert first_window["series"] == {"": [1], "region=a": [1]}
    assert eng.stats.skipped["n"] > 100_000
    # the windows were all closed through: nothing is closed twice
    eng.advance()
    assert eng.take_partials() == []


def test_idle_watermark_after_a_restart_follows_the_wall_clock() -> None:
    clock = Clock()
    eng = engine(clock, speedup=1.0)
    eng.process([{"ts": T0, "x": 1}], 0)
    clock.t += 10
    eng.advance()
    records = {k: v for k, v in eng.take_changes() if v is not None}
    clock.t += 3600                                 # down for an hour, the source silent
    restarted = engine(clock, speedup=1.0)
    restarted.restore(records)
    restarted.advance()
    assert restarted.watermark == T0 + 10 * 1000    # as restored: a backlog from the downtime may be waiting
    clock.t += 1
    restarted.advance()
    assert restarted.watermark == T0 + 3611 * 1000
    # a record written before the wall time was kept: the idle clock restarts now (the old behaviour)
    old = {k: orjson.dumps({key: val for key, val in orjson.loads(v).items() if key not in ("wam", "first")})
           if k.endswith("~clock") else v for k, v in records.items()}
    legacy = engine(clock, speedup=1.0)
    legacy.restore(old)
    clock.t += 1
    legacy.advance()
    assert legacy.watermark == T0 + 10 * 1000         # max_ts + 1 s of idle since the restore is behind it


def test_a_backlog_after_a_restart_is_read_before_the_idle_watermark_jumps() -> None:
    clock = Clock()
    eng = engine(clock, speedup=1.0)
    eng.process([{"ts": T0, "x": 1}], 0)
    records = {k: v for k, v in eng.take_changes() if v is not None}
    clock.t += 3600                                 # down an hour while the source kept sending
    restarted = engine(clock, speedup=1.0)
    restarted.restore(records)
    for offset in range(0, 1800):                   # a replay of offset 0, then the backlog, read 2 per second
        clock.t += 0.5
        assert reasons(restarted.process([{"ts": T0 + offset * 1000, "x": 1}], offset)) == []
        restarted.advance()
    assert restarted.watermark == T0 + 1799 * 1000


def test_a_sum_that_would_overflow_is_a_dead_letter_taken_whole_or_not_at_all() -> None:
    clock = Clock()
    eng = engine(clock)
    assert reasons(eng.process([{"ts": T0 + 1, "x": 1e308, "region": "a"}], 0)) == []
    dead = eng.process([{"ts": T0 + 2, "x": 1e308, "region": "a"}, {"ts": T0 + 3, "x": -1e308, "region": "a"}], 1)
    assert reasons(dead) == ["overflow"]
    clock.t += 200
    eng.advance()
    closed = {p.kpi: p.series for p in eng.take_partials() if p.window_start_ms == T0}
    assert closed["n"][""] == [2]                   # the count did not take the overflowing event either
    assert closed["total"][""] == [2, 0.0] and closed["mean"][""] == [2, 0.0]
    assert all(math.isfinite(s[1]) for s in closed["total"].values())


def partial(p: int, series: Any, kpi: str = "total", ws: Any = T0) -> dict[str, Any]:
    kp = PLAN.kpis[kpi]
    return {"kpi": kpi, "sk": kp.state_key, "ws": ws, "we": ws + kp.size_ms if isinstance(ws, int) else ws,
            "src": "s", "p": p, "rev": 0, "series": series}


@pytest.mark.parametrize("bad", [
    [], "x", {"kpi": "total"}, partial(0, {"": [1, None]}), partial(0, {"": [1, "2"]}), partial(0, {"": [1]}),
    partial(0, {"": None}), partial(0, []), partial(0, {"": [1, 2.0]}, ws="0"), partial(0, {"": [1, 2.0]}, ws=True),
    partial(0, {"": ["1"]}, kpi="n"), partial(0, {"": [-1]}, kpi="n"), partial(0, {"": [True, 1.0]}),
    # shapes a Partial cannot hold (a malformed ``folded`` used to raise a TypeError out of the agent)
    partial(0, {"": [1, 2.0]}) | {"folded": {"region": 5}}, partial(0, {"": [1, 2.0]}) | {"folded": ["region"]},
    partial(0, {"": [1, 2.0]}) | {"p": "0"}, partial(0, {"": [1, 2.0]}) | {"o": "3"},
])
def test_stage2_refuses_a_malformed_partial_and_keeps_merging(bad: Any) -> None:
    clock = Clock()
    merger = Merger(PLAN, wall=clock)
    with pytest.raises(BadPartial):
        merger.add_partial(bad)
    merger.add_partial(partial(0, {"": [1, 2.5]}))
    merger.add_partial(partial(1, {"": [1, 1.5]}))
    assert [(v.series, v.value) for v in merger.poll() if v.kpi == "total"] == [("", 4.0)]


def test_stage2_saturates_a_cross_partition_overflow_instead_of_inf() -> None:
    clock = Clock()
    merger = Merger(PLAN, wall=clock)
    merger.add_partial(partial(0, {"": [1, 1e308]}))
    merger.add_partial(partial(1, {"": [1, 1e308]}))
    merger.add_partial(partial(0, {"": [1, 1e308]}, kpi="mean"))
    merger.add_partial(partial(1, {"": [1, 1e308]}, kpi="mean"))
    values = {v.kpi: v.value for v in merger.poll()}
    assert values["total"] == sys.float_info.max and values["mean"] == sys.float_info.max
    assert merger.saturated == {"total": 1, "mean": 1}
    orjson.dumps([v.to_record() for v in merger.latest.values()])       # serialisable, never inf/null


def deep(n: int) -> bytes:
    return b"[" * n + b"]" * n


def test_dead_letters_keep_the_original_bytes_of_deeply_nested_input() -> None:
    good = orjson.dumps({"ts": T0 + 1, "x": 1})
    message = b"[" + good + b", " + deep(300) + b"]"
    events, dead, origins = decode_message(message, 1 << 20)
    assert len(events) == 1 and [(d.reason, d.original) for d in dead] == [("not_an_object", message)]
    assert "array item 1" in dead[0].detail
    bad_event = b'{"x": 1, "junk": ' + deep(300) + b"}"              # no ts, and an unknown field nested 300 deep
    batch = b"[" + good + b", " + bad_event + b"]"
    for raw, item in ((bad_event, None), (batch, 1)):
        events, dead, origins = decode_message(raw, 1 << 20)
        assert dead == []
        out = engine(Clock()).process(events, 0, origins)
        assert [(d.reason, d.original) for d in out] == [("missing_time", raw)]
        assert (f"array item {item}" in out[0].detail) == (item is not None)
        orjson.loads(out[0].to_record(topic="t", partition=0, offset=0, received_ms=0))
    # without origins the engine still never raises on what orjson cannot write
    events, _, _ = decode_message(bad_event, 1 << 20)
    assert reasons(engine(Clock()).process(events, 0)) == ["missing_time"]


def test_a_list_where_a_filter_expects_a_scalar_matches_nothing_instead_of_raising() -> None:
    plan = compile_plan(parse_catalog("""
version: 1
sources:
  s: {topic: t}
kpis:
  - {name: app, source: s, measure: count, filter: {channel: {in: [app, web]}}}
  - {name: other, source: s, measure: count, filter: {channel: {not_in: [app]}}}
"""))
    eng = engine(Clock(), src=plan.sources[0])
    assert reasons(eng.process([{"ts": T0, "channel": [1]}, {"ts": T0, "channel": {"a": 1}}, {"ts": T0, "channel": "app"}],
                               0)) == []
    assert {i: w.series for (i, _), w in eng.windows.items()} == {0: {"": [1]}, 1: {"": [2]}}


def test_a_simulation_at_speedup_keeps_every_timestamp_valid() -> None:
    """`kpimon simulate --speedup 60` started with the worker: its event time runs ahead of the wall clock, late
    events included, and none of it may be future_time or bad_time."""
    from pathlib import Path

    from catalog import load_catalog
    from streams.simulator import TOPICS, Shop, parse_incident

    plan = compile_plan(load_catalog(Path(__file__).resolve().parents[2] / "examples" / "shop.yaml"))
    clock, speedup = Clock(), 60.0
    engines = {src.topic: engine(clock, src=src, speedup=speedup) for src in plan.sources}
    shop = Shop(visits_per_s=0.5, start_ts=clock.t + 2, incidents=(parse_incident("late_events@0+600"),))
    sim, seen = shop.start_ts, 0
    clock.t = shop.start_ts
    for offset in range(600):                       # 10 wall minutes = 10 simulated hours
        events = shop.tick(sim, speedup)
        sim += speedup
        clock.t += 1
        for src, ev in events:
            if isinstance(ev, dict):
                seen += 1
                dead = engines[TOPICS[src]].process([ev], offset)
                assert not [d for d in dead if d.reason in ("future_time", "bad_time")], (src, ev)
        for eng in engines.values():
            eng.advance()
    assert seen > 1000


def test_dead_letters_do_not_hold_the_idle_watermark_back() -> None:
    clock = Clock()
    eng = engine(clock, speedup=1.0)
    eng.process([{"ts": T0, "x": 1}], 0)
    for offset in range(1, 11):                     # then only garbage, every 0.5 s
        clock.t += 0.5
        assert reasons(eng.process([{"ts": 4_102_444_800_000, "x": 1}, {"x": 1}], offset)) == \
            ["future_time", "missing_time"]
        eng.advance()
    assert eng.watermark == T0 + 5000
