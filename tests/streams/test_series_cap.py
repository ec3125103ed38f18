"""The series cap, pure (no broker): stage 1 engines on several partitions, stage 2, and the admission feedback
between them delivered late and in random interleavings, with restarts from the changelogs.

The cap must never change an admitted series' value: every exported series carries all of its events,
``<dim>=__other__`` holds exactly the rest, totals stay exact, and each dimension has its own budget."""

from __future__ import annotations

import random
from collections import defaultdict
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from catalog import parse_catalog
from streams.admission import OTHER, AdmissionView
from streams.engine import PartitionEngine
from streams.merge import Merger
from streams.plan import compile_plan
from streams.records import KpiValue

CAP = 3
CAT = parse_catalog(f"""
version: 1
defaults:
  max_series_per_kpi: {CAP}
  window: {{type: tumbling, size: 1m, grace: 30s}}
sources:
  s: {{topic: t, partitions: 3}}
kpis:
  - {{name: n, source: s, measure: count, dimensions: [region, channel]}}
  - {{name: amt, source: s, measure: sum(x), dimensions: [region, channel]}}
""")
PLAN = compile_plan(CAT)
SRC = PLAN.sources[0]
T0 = 1_767_571_200_000
MIN = 60_000
REGIONS = "abcdef"                       # 6 values for a budget of 3
CHANNELS = ["web", "app", "shop", "tel", "mail"]   # 5 values for a budget of 3
DIMS = {"region": list(REGIONS), "channel": CHANNELS}


def roundtrip(doc: Any) -> Any:
    return orjson.loads(orjson.dumps(doc))


class Pipeline:
    """Stage 1 per partition (each with its own, lagging view of the feedback), one stage 2, and the
    changelogs of both, so any part can be restarted from what it wrote."""

    def __init__(self, rng: random.Random, partitions: int = 3, pending_factor: int = 10) -> None:
        self.rng = rng
        self.wall = [T0 / 1000]          # the wall clock at the data: event time is bounded by it
        self.pending_factor = pending_factor
        self.views = [AdmissionView() for _ in range(partitions)]
        self.engines = [self._engine(p) for p in range(partitions)]
        self.stage1_log: list[dict[str, bytes]] = [{} for _ in range(partitions)]
        self.stage2_log: dict[str, Any] = {}
        self.partials: list[dict[str, Any]] = []                       # the partials topic, not read yet
        self.sent: list[dict[str, Any]] = []                           # every partial ever sent
        self.feedback: list[tuple[bytes, bytes]] = []                  # the admission topic, in order
        self.read = [0] * partitions                                   # feedback offset each view has read
        self.merger = Merger(PLAN, wall=lambda: self.wall[0])
        self.out: list[KpiValue] = []

    def _engine(self, p: int) -> PartitionEngine:
        return PartitionEngine(SRC, p, wall=lambda: self.wall[0], speedup=60.0, idle_ms=1000,
                               admissions=self.views[p], pending_factor=self.pending_factor)

    def flush(self, p: int) -> None:
        eng = self.engines[p]
        eng.advance()
        partials = [roundtrip(partial.to_record()) for partial in eng.take_partials()]
        self.partials += partials
        self.sent += partials
        for key, value in eng.take_changes():
            if value is None:
                self.stage1_log[p].pop(key, None)
            else:
                self.stage1_log[p][key] = value

    def merge(self, upto: int | None = None) -> None:
        """Stage 2 reads the partials topic (up to ``upto`` of them) and polls."""
        n = len(self.partials) if upto is None else upto
        for partial in self.partials[:n]:
            self.merger.add_partial(partial)
        del self.partials[:n]
        self.out += self.merger.poll()
        for key, doc in self.merger.take_changes():      # the changelog first, then the feedback
            if doc is None:
                self.stage2_log.pop(key, None)
            else:
                self.stage2_log[key] = roundtrip(doc)
        self.feedback += self.merger.take_feedback()

    def hear(self, p: int) -> None:
        """Partition ``p``'s worker reads the admission topic up to some point."""
        target = self.rng.randint(self.read[p], len(self.feedback))
        for key, value in self.feedback[self.read[p]:target]:
            self.views[p].apply(key, value)
        self.read[p] = target

    def hear_all(self, p: int) -> None:
        for key, value in self.feedback[self.read[p]:]:
            self.views[p].apply(key, value)
        self.read[p] = len(self.feedback)

    def restart_stage1(self, p: int) -> None:
        """A new worker takes partition ``p``: restore from its changelog, re-read the whole admission topic."""
        self.flush(p)
        self.views[p] = AdmissionView()
        self.read[p] = 0
        self.hear_all(p)        # the worker reads the topic to its end before stage 1 starts
        self.engines[p] = self._engine(p)
        self.engines[p].restore(dict(self.stage1_log[p]))

    def restart_stage2(self) -> None:
        self.merger = Merger(PLAN, wall=lambda: self.wall[0])
        self.out += self.merger.restore(roundtrip(self.stage2_log))
        view = AdmissionView()
        for key, value in self.feedback:
            view.apply(key, value)
        self.merger.adopt(view)

    def finish(self) -> dict[tuple[str, int, str], KpiValue]:
        self.wall[0] += 30                    # idle: every partition's watermark follows the clock
        for p in range(len(self.engines)):
            self.flush(p)
        self.merge()
        self.wall[0] += 10                    # past partition_wait
        self.merge()
        final: dict[tuple[str, int, str], KpiValue] = {}
        for v in self.out:
            key = (v.kpi, v.window_start_ms, v.series)
            if key not in final or v.revision >= final[key].revision:
                final[key] = v
        return final


def make_events(rng: random.Random, windows: int, per_window: int) -> list[dict[str, Any]]:
    weights_r = [rng.random() for _ in REGIONS]
    weights_c = [rng.random() for _ in CHANNELS]
    events: list[dict[str, Any]] = []
    for w in range(windows):
        for _ in range(per_window):
            events.append({"ts": T0 + w * MIN + rng.randrange(MIN), "x": rng.randrange(1, 100),
                           "region": rng.choices(REGIONS, weights_r)[0], "channel": rng.choices(CHANNELS, weights_c)[0]})
    events.sort(key=lambda e: e["ts"])        # in order: out-of-order beyond grace is a dead letter by design
    return events


def expected_admitted(events: list[dict[str, Any]], dim: str) -> list[str]:
    """First come in window order, sorted within a window, ``CAP`` per dimension."""
    first: dict[str, int] = {}
    for e in events:
        first.setdefault(e[dim], (e["ts"] - T0) // MIN)
    return sorted(first, key=lambda v: (first[v], v))[:CAP]


def check_exact(final: dict[tuple[str, int, str], KpiValue], events: list[dict[str, Any]],
                admitted: dict[str, list[str]]) -> None:
    windows = sorted({(e["ts"] - T0) // MIN for e in events})
    for kpi, measure in (("n", lambda e: 1), ("amt", lambda e: e["x"])):
        exported = {key[2] for key in final if key[0] == kpi}
        for dim, values in admitted.items():
            # per dimension: exactly its own budget of series, plus __other__
            folded = {f"{dim}={OTHER}"} if len({e[dim] for e in events}) > len(values) else set()
            assert {s for s in exported if s.startswith(dim + "=")} == {f"{dim}={v}" for v in values} | folded
        for w in windows:
            ws = T0 + w * MIN
            in_w = [e for e in events if (e["ts"] - T0) // MIN == w]

            def value(series: str) -> float | None:
                v = final.get((kpi, ws, series))   # noqa: B023
                return None if v is None else v.value

            assert value("") == sum(measure(e) for e in in_w), (kpi, w)
            for dim, values in admitted.items():
                for v in values:
                    true = sum(measure(e) for e in in_w if e[dim] == v)
                    got = value(f"{dim}={v}")
                    # a series reports from its first window on (0 when its events stop), exactly
                    assert got == true or (got is None and true == 0 and not any(
                        e[dim] == v and (e["ts"] - T0) // MIN < w for e in events)), (kpi, w, dim, v, got, true)
                rest = sum(measure(e) for e in in_w if e[dim] not in values)
                assert (value(f"{dim}={OTHER}") or 0) == rest, (kpi, w, dim)


def check_exact_or_absent(final: dict[tuple[str, int, str], KpiValue], events: list[dict[str, Any]]) -> None:
    """Every exported number is exact; __other__ holds exactly the events of values without one; totals exact."""
    windows = sorted({(e["ts"] - T0) // MIN for e in events})
    for kpi, measure in (("n", lambda e: 1), ("amt", lambda e: e["x"])):
        for dim in DIMS:
            assert len({k[2] for k in final if k[0] == kpi and k[2].startswith(dim + "=")} - {f"{dim}={OTHER}"}) <= CAP
        for w in windows:
            ws = T0 + w * MIN
            in_w = [e for e in events if (e["ts"] - T0) // MIN == w]
            got = {k[2]: v.value for k, v in final.items() if k[0] == kpi and k[1] == ws}
            assert got[""] == sum(measure(e) for e in in_w)
            for dim in DIMS:
                numbered = {s.partition("=")[2]: v for s, v in got.items()
                            if s.startswith(dim + "=") and s != f"{dim}={OTHER}" and v is not None}
                for value, v in numbered.items():
                    assert v == sum(measure(e) for e in in_w if e[dim] == value), (kpi, w, dim, value)
                assert (got.get(f"{dim}={OTHER}") or 0) == sum(measure(e) for e in in_w if e[dim] not in numbered)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10**9))
def test_cap_is_exact_per_dimension_under_any_interleaving_of_partitions_feedback_and_restarts(seed: int) -> None:
    rng = random.Random(seed)
    events = make_events(rng, windows=5, per_window=rng.randrange(8, 40))
    pipe = Pipeline(rng)
    # every partition starts with an event of the first window, so stage 2 waits for all of them
    by_partition: dict[int, list[list[dict[str, Any]]]] = defaultdict(list)
    for p in range(3):
        by_partition[p].append([events[p]])
    rest = events[3:]
    i = 0
    while i < len(rest):
        n = rng.randint(1, 6)
        by_partition[rng.randrange(3)].append(rest[i:i + n])
        i += n
    offsets = [0, 0, 0]
    todo = [p for p, msgs in by_partition.items() for _ in msgs]
    rng.shuffle(todo)
    for p in todo:
        eng = pipe.engines[p]
        assert not eng.process(by_partition[p][offsets[p]], offsets[p])
        offsets[p] += 1
        action = rng.random()
        if action < 0.4:
            pipe.flush(p)
        elif action < 0.6:
            pipe.merge(rng.randint(0, len(pipe.partials)))
        elif action < 0.85:
            pipe.hear(rng.randrange(3))
        elif action < 0.93:
            pipe.restart_stage1(p)
        else:
            pipe.merge()
            pipe.restart_stage2()
    final = pipe.finish()
    admitted = {dim: expected_admitted(events, dim) for dim in DIMS}
    check_exact(final, events, admitted)


def interleave(pipe: Pipeline, events: list[dict[str, Any]], rng: random.Random, partitions: int = 3) -> None:
    by_partition: dict[int, list[list[dict[str, Any]]]] = defaultdict(list)
    for p in range(partitions):
        by_partition[p].append([events[p]])
    i = partitions
    while i < len(events):
        n = rng.randint(1, 6)
        by_partition[rng.randrange(partitions)].append(events[i:i + n])
        i += n
    offsets = [0] * partitions
    todo = [p for p, msgs in by_partition.items() for _ in msgs]
    rng.shuffle(todo)
    for p in todo:
        assert not pipe.engines[p].process(by_partition[p][offsets[p]], offsets[p])
        offsets[p] += 1
        action = rng.random()
        if action < 0.4:
            pipe.flush(p)
        elif action < 0.6:
            pipe.merge(rng.randint(0, len(pipe.partials)))
        elif action < 0.85:
            pipe.hear(rng.randrange(partitions))
        elif action < 0.93:
            pipe.restart_stage1(p)
        else:
            pipe.merge()
            pipe.restart_stage2()


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10**9))
def test_floods_at_a_tiny_bound_never_export_a_wrong_number(seed: int) -> None:
    """The same with a bound of 3 undecided values (pending_factor 1) and up to 20 values per dimension: partitions
    fold at the bound before they hear, dimensions close; whatever is exported is still exact."""
    rng = random.Random(seed)
    regions = [f"r{i}" for i in range(rng.randrange(4, 20))]
    events: list[dict[str, Any]] = []
    for w in range(5):
        for _ in range(rng.randrange(8, 40)):
            events.append({"ts": T0 + w * MIN + rng.randrange(MIN), "x": rng.randrange(1, 100),
                           "region": rng.choice(regions), "channel": rng.choice(CHANNELS)})
    events.sort(key=lambda e: e["ts"])
    pipe = Pipeline(rng, pending_factor=1)
    interleave(pipe, events, rng)
    check_exact_or_absent(pipe.finish(), events)


def test_two_partitions_the_measured_undercount() -> None:
    """Issue #11 as measured: cap 3, two partitions, five regions. Partition 1 meets region a after three others;
    stage 2 admits a (first window, sorted): its value must hold both partitions' events."""
    pipe = Pipeline(random.Random(0), partitions=3)
    p0 = [{"ts": T0 + i, "x": 1, "region": "a", "channel": "web"} for i in range(10)]
    p1 = [{"ts": T0 + 100 + i, "x": 1, "region": r, "channel": "web"} for i, r in enumerate("cdeaaaaaaaaaa")]
    p2 = [{"ts": T0 + 200, "x": 1, "region": "b", "channel": "web"}]
    for p, evs in enumerate((p0, p1, p2)):
        for off, e in enumerate(evs):
            pipe.engines[p].process([e], off)
    final = pipe.finish()
    assert final[("n", T0, "region=a")].value == 20
    assert final[("n", T0, "region=b")].value == 1 and final[("n", T0, "region=c")].value == 1
    assert final[("n", T0, f"region={OTHER}")].value == 2          # d, e
    assert ("n", T0, "region=d") not in final
    assert final[("n", T0, "channel=web")].value == 24             # its own budget: not taken by the regions


def flood_pipeline(hear: bool) -> Pipeline:
    """Cap 3, bound pending_factor × cap = 3. Window 0: a and b. Window 1: partition 1 meets ten new values before
    stage 2 decided window 0; window 2: partition 0 meets c, partitions 1 and 2 meet a."""
    pipe = Pipeline(random.Random(0), partitions=3, pending_factor=1)
    w0 = [{"ts": T0 + 1, "x": 1, "region": "a", "channel": "web"}, {"ts": T0 + 2, "x": 1, "region": "b", "channel": "web"},
          {"ts": T0 + 3, "x": 1, "region": "a", "channel": "app"}]
    for p, ev in enumerate(w0):
        pipe.engines[p].process([ev], 0)
    flood = [{"ts": T0 + MIN + i, "x": 1, "region": f"v{i}", "channel": "web"} for i in range(10)]
    flood += [{"ts": T0 + MIN + 20, "x": 5, "region": "b", "channel": "web"}]
    pipe.engines[1].process(flood, 1)              # closes window 0 at partition 1
    for p in (0, 2):
        pipe.engines[p].process([{"ts": T0 + MIN + 30, "x": 1, "region": "a", "channel": "web"}], 1)
    for p in range(3):
        pipe.flush(p)
    pipe.merge()                                   # window 0: a, b admitted; partition 1 had not heard of it
    # partition 1 keeps b, v0, v1 undecided (its bound), folds v2..v9 and flags the window; b still passes
    assert pipe.engines[1].pending[0]["region"] == {"b", "v0", "v1"}
    if hear:
        for p in range(3):
            pipe.read[p] = 0
            pipe.hear_all(p)
    pipe.engines[0].process([{"ts": T0 + 2 * MIN + 1, "x": 1, "region": "c", "channel": "web"}], 2)
    for p in (1, 2):
        pipe.engines[p].process([{"ts": T0 + 2 * MIN + 2, "x": 1, "region": "a", "channel": "web"}], 2)
    return pipe


def test_a_flood_closes_the_dimension_and_keeps_admitted_series_exact() -> None:
    """A partition meets more new values than its bound before stage 2 decided them: it folds the rest and flags
    the window; stage 2 admits nothing more on that dimension from then on, and the other dimension is unaffected."""
    pipe = flood_pipeline(hear=True)
    final = pipe.finish()
    (flagged,) = [p for p in pipe.sent if p["p"] == 1 and p["kpi"] == "n" and p["ws"] == T0 + MIN]
    assert flagged["folded"] == {"region": [0, 0]}          # the partition knew of 0 admitted values
    assert flagged["series"][f"region={OTHER}"] == [8] and flagged["series"]["region=b"] == [1]
    assert pipe.merger.cap.dims[("n", "region")].closed and not pipe.merger.cap.dims[("n", "channel")].closed
    # Partition 1 had not heard that a was admitted when it folded at its bound in window 1, and a is not among its
    # series there: a may have been folded, so a gets no value in window 1 (exact: its 2 events are in __other__).
    # b is among partition 1's series: an undecided value it kept, never folded, so b is exact.
    assert ("n", T0 + MIN, "region=a") not in final
    assert final[("n", T0 + MIN, "region=b")].value == 1
    assert final[("amt", T0 + MIN, "region=b")].value == 5
    assert final[("n", T0 + MIN, f"region={OTHER}")].value == 12       # v0..v9 wherever they were folded, and a
    assert final[("n", T0 + 2 * MIN, "region=a")].value == 2            # it had heard by then
    assert final[("n", T0 + 2 * MIN, f"region={OTHER}")].value == 1    # c: the dimension is closed
    assert {k[2] for k in final if k[2].startswith("region=")} == {"region=a", "region=b", f"region={OTHER}"}
    assert final[("n", T0 + MIN, "")].value == 13
    assert final[("n", T0 + MIN, "channel=web")].value == 13            # another dimension is not affected
    assert final[("n", T0, "channel=app")].value == 1
    # once stage 1 hears that the dimension is closed, it folds new values itself, unflagged, and keeps none undecided
    pipe.hear_all(1)
    eng = pipe.engines[1]
    assert not eng.process([{"ts": T0 + 40 * MIN, "x": 1, "region": "zz", "channel": "web"}], 3)
    assert not eng.pending[0]["region"]
    (win,) = [w for (i, start), w in eng.windows.items() if i == 0 and start == T0 + 40 * MIN]
    assert win.series == {"": [1], f"region={OTHER}": [1], "channel=web": [1]} and not win.folded


def test_the_flood_limit_is_reported_by_name(caplog: pytest.LogCaptureFixture) -> None:
    """A flooded partition that has not heard of an admission yet folds that value's events too (a in window 2 here).
    Stage 2 knows from the flag which admitted values may have lost events there: they get no value in that window,
    their events are in __other__, and the warning names them."""
    pipe = flood_pipeline(hear=False)
    final = pipe.finish()
    assert ("n", T0 + 2 * MIN, "region=a") not in final and ("n", T0 + 2 * MIN, "region=b") not in final
    assert final[("n", T0 + 2 * MIN, f"region={OTHER}")].value == 3     # c, and a of partitions 1 and 2
    assert final[("n", T0 + 2 * MIN, "")].value == 3
    assert "before it heard that ['a'] were admitted" in caplog.text


FLOOD_CAT = parse_catalog("""
version: 1
defaults:
  max_series_per_kpi: 50
  window: {type: tumbling, size: 1m, grace: 30s}
sources:
  s: {topic: t, partitions: 2}
kpis:
  - {name: n, source: s, measure: count, dimensions: [user, region]}
""")


def test_a_cardinality_flood_keeps_stage_1_state_and_partials_bounded() -> None:
    """100k distinct values on one dimension at one partition that hears nothing from stage 2: stage 1 keeps at most
    10 × cap undecided values, its partial and changelog records stay small, and totals stay exact."""
    plan = compile_plan(FLOOD_CAT)
    wall = [T0 / 1000]
    eng = PartitionEngine(plan.sources[0], 0, wall=lambda: wall[0], speedup=60.0, idle_ms=1000)
    offset = 0
    sizes = (100_000, 10_000)               # window 0: 100k new values; window 1: u0..u999 again, then new
    for w, size in enumerate(sizes):
        for batch in range(size // 1000):
            base = 0 if w and not batch else w * 100_000 + batch * 1000      # window 1 starts with u0..u999
            events = [{"ts": T0 + w * MIN + (base + i) % MIN, "user": f"u{base + i}", "region": "east"}
                      for i in range(1000)]
            assert not eng.process(events, offset)
            offset += 1
        assert len(eng.pending[0]["user"]) == 500
        assert eng.pending[0]["region"] == {"east"}
    assert eng.stats.folded == {"n": sum(sizes) - 2 * 500}             # kpimon_series_folded_total: all but 500 a window
    wall[0] += 30
    eng.advance()
    partials = [p.to_record() for p in eng.take_partials() if p.window_start_ms in (T0, T0 + MIN)]
    assert len(partials) == 2
    first, second = partials
    for p, size in zip(partials, sizes, strict=True):
        assert p["series"][""] == [size]                                # the total is exact
        assert p["series"]["region=east"] == [size]                     # the other dimension is not touched
        users = {k: v for k, v in p["series"].items() if k.startswith("user=")}
        assert sum(v[0] for v in users.values()) == size                # every event is in some user series
        assert p["folded"] == {"user": [0, 0]}                          # flagged: stage 2 closes the dimension
        assert len(orjson.dumps(p)) < 32 * 1024                         # far below 1 MiB
    assert len(first["series"]) == 1 + 500 + 1 + 1                      # total, 500 undecided, __other__, east
    assert len(second["series"]) == 1 + 500 + 1 + 1                     # the same 500 pass again, nothing new
    assert {k for k in second["series"] if k.startswith("user=u")} == {k for k in first["series"] if k.startswith("user=u")}
    records = eng.take_changes()
    assert max(len(v or b"") for _k, v in records) < 32 * 1024

    # stage 2 closes the dimension; once stage 1 hears, it forgets its undecided values and folds new ones itself
    merger = Merger(plan, wall=lambda: wall[0])
    for p in partials:
        merger.add_partial(roundtrip(p))
    wall[0] += 10
    merger.poll()
    assert merger.cap.dims[("n", "user")].closed and len(merger.cap.dims[("n", "user")].admitted) == 0
    for key, value in merger.take_feedback():
        eng.admissions.apply(key, value)
    late = T0 + 40 * MIN
    assert not eng.process([{"ts": late + i, "user": f"x{i}", "region": "east"} for i in range(1000)], offset)
    assert not eng.pending[0]["user"]
    (win,) = [w for (_i, start), w in eng.windows.items() if start == late - late % MIN]
    assert win.series == {"": [1000], f"user={OTHER}": [1000], "region=east": [1000]}
    assert not win.folded and eng.stats.folded == {"n": sum(sizes) - 2 * 500 + 1000}


def test_a_flagged_partial_after_the_window_was_published_revises_the_unsafe_series_to_no_value() -> None:
    """Partition 1 is late (stage 2 published the window after partition_wait without it) and its partial then says
    it folded at its bound without knowing that a was admitted: the revision says a has no value in that window
    (null) and moves a's events to __other__; the total does not change."""
    pipe = Pipeline(random.Random(0), partitions=3, pending_factor=1)
    for p in (0, 2):
        pipe.engines[p].process([{"ts": T0 + 1, "x": 1, "region": "a", "channel": "web"}], 0)
        pipe.engines[p].process([{"ts": T0 + MIN + 1, "x": 1, "region": "a", "channel": "web"}], 1)
        pipe.flush(p)
    pipe.merge()
    pipe.wall[0] += 10                               # partition 1 is silent: the window is published without it
    pipe.merge()
    assert [(v.series, v.value, v.revision) for v in pipe.out if v.window_start_ms == T0 and v.kpi == "n"] == [
        ("", 2, 0), ("channel=web", 2, 0), ("region=a", 2, 0)]
    pipe.engines[1].process([{"ts": T0 + 2, "x": 1, "region": r, "channel": "web"} for r in ("b", "c", "d", "e")], 0)
    pipe.engines[1].process([{"ts": T0 + MIN + 2, "x": 1, "region": "a", "channel": "web"}], 1)
    pipe.flush(1)
    (flagged,) = [p for p in pipe.sent if p["p"] == 1 and p["kpi"] == "n" and p["ws"] == T0]
    assert flagged["folded"] == {"region": [0, 0]}
    pipe.merge()
    revised = {v.series: v.value for v in pipe.out if v.window_start_ms == T0 and v.kpi == "n" and v.revision == 1}
    assert revised == {"": 6, "channel=web": 6, "region=a": None, f"region={OTHER}": 6}   # a, and b..e: closed


def test_a_restarted_stage_2_keeps_what_it_published_even_if_its_changelog_lost_it() -> None:
    """The admission topic and the stage-2 changelog are separate writes. If the feedback got out and the changelog
    records did not, a stage 1 may already fold by the published decision: the restarted stage 2 adopts it."""
    pipe = Pipeline(random.Random(0), partitions=3)
    for p, region in enumerate("abc"):
        pipe.engines[p].process([{"ts": T0 + p, "x": 1, "region": region, "channel": "web"}], 0)
        pipe.engines[p].process([{"ts": T0 + MIN + 10 + p, "x": 1, "region": "a", "channel": "web"}], 1)
        pipe.flush(p)
    before = dict(pipe.stage2_log)
    pipe.merge()                                     # window 0: a, b, c admitted, published: the dimension is full
    pipe.stage2_log = before                         # ... but none of it reached the changelog
    pipe.restart_stage2()
    pipe.hear_all(0)                                 # partition 0 knows region is full: it folds d itself
    pipe.engines[0].process([{"ts": T0 + MIN + 20, "x": 1, "region": "d", "channel": "web"}], 2)
    pipe.engines[1].process([{"ts": T0 + MIN + 21, "x": 1, "region": "d", "channel": "web"}], 2)   # has not heard
    final = pipe.finish()
    assert final[("n", T0 + MIN, "region=a")].value == 3
    assert final[("n", T0 + MIN, f"region={OTHER}")].value == 2     # both d, wherever they were folded
    assert ("n", T0 + MIN, "region=d") not in final
