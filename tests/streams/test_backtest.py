"""``kpimon backtest``: history through the worker's engine, detectors and rules, nothing sent.

Pure replays (no broker) with events whose windows and alerts are known by construction, the CLI's JSON contract on
files (NDJSON, CSV), hostile input, proposed changes judged beside the current settings, and the Kafka paths
(``--from-topic``, ``--from-values``) against the embedded broker."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from catalog import parse_catalog
from kpimon.commands.backtest import parse_time
from streams.backtest import Judge, judge, replay
from streams.plan import compile_plan
from tests.fixtures.kafka_io import produce, produce_to

REPO = Path(__file__).resolve().parents[2]
T0 = 1_767_571_200_000          # 2026-01-05T00:00:00Z (a Monday)
MIN = 60_000

CATALOG = """
version: 1
defaults:
  window: {type: tumbling, size: 1m, grace: 10s}
sources:
  orders: {topic: bt.orders, since: 2026-01-01, max_silence: 30m}
  visits: {topic: bt.visits, since: 2026-01-01, max_silence: 30m}
kpis:
  - name: orders
    source: orders
    measure: count
    dimensions: [region]
    detector: {enabled: false}
    alerts:
      - {name: low, type: threshold, below: 5, for: 2m, severity: critical}
  - name: visits
    source: visits
    measure: count
    detector: {enabled: false}
  - name: conversion
    ratio: {numerator: orders, denominator: visits}
    detector: {enabled: false}
    alerts:
      - {name: conv_low, type: threshold, below: 0.05, for: 0s, severity: warning}
"""


def orders_history(minutes: int = 60, dip: range = range(20, 30), region: str = "east") -> list[dict[str, Any]]:
    """10 orders a minute in each of two regions; ``region`` has 1 a minute during ``dip``."""
    out = []
    for m in range(minutes):
        for reg in ("east", "west"):
            n = 1 if (reg == region and m in dip) else 10
            out += [{"ts": T0 + m * MIN + i * 1000 + (500 if reg == "west" else 0), "region": reg} for i in range(n)]
    return out


def visits_history(minutes: int = 60) -> list[dict[str, Any]]:
    return [{"ts": T0 + m * MIN + i * 600} for m in range(minutes) for i in range(100)]


def run(cat_text: str, by_source: dict[str, list[Any]]) -> tuple[Any, Any]:
    cat = parse_catalog(cat_text)
    history = replay(compile_plan(cat), by_source)
    return history, asyncio.run(judge(history, Judge.of(cat)))


def test_a_dip_fires_once_after_its_for_and_resolves_when_it_ends() -> None:
    """east has 1 order a minute in minutes 20-29: its window values are 2 (both regions' totals stay above 5); `low`
    is pending from the end of window 20 and fires 2 minutes later (the end of window 22), and resolves at the end
    of window 30, the first good one: 8 alert-minutes; the first windows and the last one (still open) are not
    judged as zeros."""
    history, report = run(CATALOG, {"orders": orders_history(), "visits": visits_history()})
    values = {(v.kpi, v.series, (v.window_start_ms - T0) // MIN): v.value for _, vals in history.steps for v in vals}
    assert values[("orders", "region=east", 25)] == 1 and values[("orders", "", 25)] == 11
    assert ("orders", "", 59) not in values            # the last window is not closed: it may be incomplete
    assert [(r.kpi, r.rule, r.series, r.fired) for r in report.rows] == [("orders", "low", {"region": "east"}, 1)]
    row = report.rows[0]
    assert row.first == (T0 + 23 * MIN) / 1000        # pending at the end of window 20 (21:00), + for 2m
    assert row.alert_minutes == 8.0 and row.longest_minutes == 8.0 and row.open_since is None
    assert history.dead == {} and history.silences == []


def test_ratio_alerts_come_from_the_same_merge_as_the_worker() -> None:
    """conversion = orders / visits per window: 20/100 normally, 11/100 in the dip, 0.02 when orders nearly stop."""
    orders = [e for e in orders_history() if not (40 <= (e["ts"] - T0) // MIN < 43) or e["region"] == "east"
              and (e["ts"] - T0) % MIN < 2000]
    history, report = run(CATALOG, {"orders": orders, "visits": visits_history()})
    conv = {(v.window_start_ms - T0) // MIN: v.value for _, vals in history.steps for v in vals
            if v.kpi == "conversion" and v.series == ""}
    assert conv[10] == pytest.approx(0.2) and conv[25] == pytest.approx(0.11) and conv[41] == pytest.approx(0.02)
    fired = {(r.rule, tuple(r.series.items())): r for r in report.rows}
    assert fired[("conv_low", ())].fired == 1 and fired[("conv_low", ())].alert_minutes == 3.0


def test_the_replay_is_independent_of_how_the_history_is_cut_into_messages() -> None:
    """The same events as single-event NDJSON lines, as 50-event arrays and as decoded dicts: identical values."""
    events = orders_history()
    cat = parse_catalog(CATALOG)
    plan = compile_plan(cat)
    runs = [
        replay(plan, {"orders": [orjson.dumps(e) for e in events]}),
        replay(plan, {"orders": [orjson.dumps(events[i:i + 50]) for i in range(0, len(events), 50)]}),
        replay(plan, {"orders": events}),
    ]
    seen = [sorted((v.kpi, v.series, v.window_start_ms, v.value) for _, vals in h.steps for v in vals) for h in runs]
    assert seen[0] == seen[1] == seen[2] and len(seen[0]) > 100
    assert [h.messages for h in runs] == [len(events), -(-len(events) // 50), len(events)]


def test_hostile_history_is_dead_lettered_with_the_workers_reasons_not_a_crash() -> None:
    """Broken JSON, an array of numbers, ts 0, a date in 2100, 300-deep nesting, a 1e308 sum pair, a missing
    time: each is a dead letter with its reason; the good events around them count exactly."""
    cat = parse_catalog(CATALOG.replace("measure: count\n    dimensions: [region]",
                                        "measure: sum(amount)\n    dimensions: [region]"))
    good = [orjson.dumps({"ts": T0 + m * MIN + 1000, "region": "east", "amount": 10}) for m in range(10)]
    bad = [b'{"ts": ', b"[1, 2]", orjson.dumps({"ts": 0, "region": "east", "amount": 1}),
           orjson.dumps({"ts": 4_102_444_800_000, "region": "east", "amount": 1}),
           b'{"ts": %d, "region": "east", "amount": 1, "x": ' % (T0 + 2 * MIN + 1) + b"[" * 300 + b"]" * 300 + b"}",
           orjson.dumps({"ts": T0 + 2 * MIN + 5, "region": "east", "amount": 1e308}),
           orjson.dumps({"ts": T0 + 2 * MIN + 6, "region": "east", "amount": 1e308}),
           orjson.dumps({"region": "east", "amount": 1})]
    history = replay(compile_plan(cat), {"orders": good[:3] + bad + good[3:]})
    assert history.dead == {"malformed_json": 1, "not_an_object": 2, "bad_time": 1, "future_time": 1,
                            "overflow": 1, "missing_time": 1}      # the 300-deep event is taken (x is not read)
    sums = {(v.window_start_ms - T0) // MIN: v.value for _, vals in history.steps for v in vals
            if v.kpi == "orders" and v.series == ""}
    assert sums[0] == 10 and sums[2] == pytest.approx(1e308) and sums[5] == 10


def test_a_gap_of_max_silence_is_no_data_not_a_zero() -> None:
    """orders stop for 40 minutes (max_silence 30m): no `low` alert for the gap's zero windows, the silence is
    reported; a 20-minute gap is shorter than max_silence: its zeros are a business alert."""
    long_gap = [e for e in orders_history(100, dip=range(0)) if not 30 <= (e["ts"] - T0) // MIN < 70]
    history, report = run(CATALOG, {"orders": long_gap, "visits": visits_history(100)})
    assert [(s.source, s.start < (T0 + 30 * MIN) / 1000 < s.end) for s in history.silences] == [("orders", True)]
    assert not [r for r in report.rows if r.rule == "low"]
    short_gap = [e for e in orders_history(100, dip=range(0)) if not 30 <= (e["ts"] - T0) // MIN < 50]
    _, report = run(CATALOG, {"orders": short_gap, "visits": visits_history(100)})
    assert {tuple(r.series.items()) for r in report.rows if r.rule == "low"} == {(), (("region", "east"),),
                                                                                 (("region", "west"),)}


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kpimon", "backtest", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=300, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})


def write_ndjson(path: Path, events: list[dict[str, Any]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    return path


def test_cli_json_contract_on_one_ndjson_file(tmp_path: Path) -> None:
    """`kpimon backtest --catalog FILE --from-file EVENTS.ndjson --json`: one JSON object, `rules` per rule and
    series with the figures, exit 0 (the catalog's only source needs no SOURCE= prefix)."""
    one = CATALOG.split("  visits:")[0] + "kpis:" + CATALOG.split("kpis:")[1].split("  - name: visits")[0]
    (tmp_path / "cat.yaml").write_text(one)
    events = write_ndjson(tmp_path / "events.ndjson", orders_history())
    done = cli("--catalog", "cat.yaml", "--from-file", str(events), "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["rules"] == [{"kpi": "orders", "rule": "low", "series": {"region": "east"}, "severity": "critical",
                             "fired": 1, "alert_minutes": 8.0, "first": (T0 + 23 * MIN) / 1000,
                             "last": (T0 + 23 * MIN) / 1000, "longest_minutes": 8.0, "firing_at_end": False,
                             "fired_at": [(T0 + 23 * MIN) / 1000]}]
    assert doc["history"]["events"] == len(orders_history()) and doc["history"]["dead_letters"] == {}
    assert done.stderr == ""                 # no progress line when stderr is not a terminal


def test_cli_proposed_changes_beside_the_current_ones(tmp_path: Path) -> None:
    """A threshold that would have fired on the dip (below 5) and one that would not (below 1), from CSV and NDJSON
    files of two sources: the current settings fire on east and the proposal does not; a longer `for` fires later
    and shorter; a proposal that fires where the current one does not is listed with current zeros."""
    (tmp_path / "cat.yaml").write_text(CATALOG)
    write_ndjson(tmp_path / "orders.ndjson", orders_history())
    with (tmp_path / "v.csv").open("w") as f:
        f.write("ts,page\n" + "".join(f"{e['ts']},home\n" for e in visits_history()))
    base = ("-c", "cat.yaml", "--from-file", "orders.ndjson", "--from-file", "visits=v.csv", "--json")
    quiet = json.loads(cli(*base, "--set", "orders.low.below=1", cwd=tmp_path).stdout)
    [row] = [r for r in quiet["rules"] if r["rule"] == "low"]
    assert (row["fired"], row["proposed"]["fired"], row["proposed"]["alert_minutes"]) == (1, 0, 0.0)
    assert quiet["totals"]["proposed"]["fired"] == quiet["totals"]["current"]["fired"] - 1
    later = json.loads(cli(*base, "--set", "orders.low.for=5m", cwd=tmp_path).stdout)
    [row] = [r for r in later["rules"] if r["rule"] == "low"]
    assert row["proposed"]["fired"] == 1 and row["proposed"]["first"] == (T0 + 26 * MIN) / 1000
    assert row["proposed"]["alert_minutes"] == 5.0
    touchy = json.loads(cli(*base, "--set", "orders.low.below=11", "--set", "orders.low.for=0s", cwd=tmp_path).stdout)
    [west] = [r for r in touchy["rules"] if r["series"] == {"region": "west"}]     # 10 a minute: below 11
    assert west["fired"] == 0 and west["proposed"]["fired"] == 1 and west["proposed"]["firing_at_end"]
    assert touchy["changes"]["rules"] == [{"kpi": "orders", "rule": "low", "fields": {"below": 11, "for": "0s"}}]
    table = cli(*base[:-1], "--set", "orders.low.below=1", cwd=tmp_path)
    assert "proposed" in table.stdout and "orders" in table.stdout and table.returncode == 0


@pytest.mark.parametrize("args, message", [
    (("--from-file", "orders.ndjson", "--set", "orders.nope.below=1"), "KPI orders has no rule 'nope'"),
    (("--from-file", "orders.ndjson", "--set", "orders.low.below=abc"), "below must be a finite number"),
    (("--from-file", "orders.ndjson", "--sensitivity", "orders=extreme"), "sensitivity is one of low, medium, high"),
    (("--from-file", "nowhere.ndjson",), "which source is nowhere.ndjson?"),
    (("--from-file", "orders=nowhere.ndjson",), "no file nowhere.ndjson"),
    (("--from-file", "orders.ndjson", "--since", "yesterday"), "'yesterday' is not a time"),
    ((), "give the history"),
])
def test_cli_refuses_bad_options_in_one_line(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    (tmp_path / "cat.yaml").write_text(CATALOG)
    write_ndjson(tmp_path / "orders.ndjson", orders_history(5))
    done = cli("-c", "cat.yaml", *args, cwd=tmp_path)
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_parse_time_forms() -> None:
    assert parse_time("2026-01-05", 0) == T0
    assert parse_time("2026-01-05T08:00+08:00", 0) == T0
    assert parse_time(str(T0 // 1000), 0) == T0
    assert parse_time("2h", T0 / 1000) == T0 - 120 * MIN


@pytest.mark.slow
def test_cli_from_topic_and_from_values_on_the_broker(broker: Any, tmp_path: Path) -> None:
    """History read from the sources' Kafka topics (single-event and batched messages), and the same windows'
    kpi.values records judged without the engine: the same alert both ways; --since drops the first half."""
    (tmp_path / "cat.yaml").write_text(CATALOG)
    orders = orders_history()
    asyncio.run(produce(broker.bootstrap, "bt.orders", orders))
    visits = visits_history()
    asyncio.run(produce_to(broker.bootstrap, "bt.visits",
                           [(0, orjson.dumps(visits[i:i + 100])) for i in range(0, len(visits), 100)]))
    done = cli("-c", "cat.yaml", "--from-topic", "all", "--broker", broker.bootstrap, "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["history"]["events"] == len(orders) + len(visits) and doc["history"]["dead_letters"] == {}
    assert [(r["rule"], r["series"], r["fired"], r["alert_minutes"]) for r in doc["rules"]] == [
        ("low", {"region": "east"}, 1, 8.0)]
    # the kpi.values records of those windows (as a worker publishes them), judged alone
    history = replay(compile_plan(parse_catalog(CATALOG)), {"orders": orders, "visits": visits})
    records = [(0, orjson.dumps(v.to_record())) for _, vals in history.steps for v in vals]
    asyncio.run(produce_to(broker.bootstrap, "bt.values", records))
    judged = json.loads(cli("-c", "cat.yaml", "--from-values", "bt.values", "--broker", broker.bootstrap, "--json",
                            cwd=tmp_path).stdout)
    assert [(r["rule"], r["series"], r["fired"], r["alert_minutes"]) for r in judged["rules"]] == [
        ("low", {"region": "east"}, 1, 8.0)]
    later = json.loads(cli("-c", "cat.yaml", "--from-values", "bt.values", "--broker", broker.bootstrap,
                           "--since", "2026-01-05T00:40:00", "--json", cwd=tmp_path).stdout)
    assert later["rules"] == [] and later["history"]["messages"] < judged["history"]["messages"]


async def test_cli_scores_rules_by_the_feedback_recorded_in_redis(tmp_path: Path, redis_server: str,
                                                                  redis_prefix: str) -> None:
    """Feedback in the workers' Redis (real): east's dip marked a true alarm, west's a false one, and a true alarm
    at minute 50 that `low` never fired on. Current `below 5`: fires on both dips, precision 50 %, recall 50 %; the
    proposal `below 2` fires on east only (1 a minute) not west (3 a minute): precision 100 %, recall still 50 %."""
    from alerting.redis_store import RedisStore

    events = [e for e in orders_history() if not (e["region"] == "west" and 40 <= (e["ts"] - T0) // MIN < 46
                                                  and (e["ts"] - T0) % MIN >= 3000)]
    (tmp_path / "cat.yaml").write_text(CATALOG)
    write_ndjson(tmp_path / "orders.ndjson", events)
    store = RedisStore.from_url(redis_server, prefix=redis_prefix)
    try:
        for n, (region, window_end_min, verdict) in enumerate(
                (("east", 23, "true_alarm"), ("west", 43, "false_alarm"), ("east", 50, "true_alarm"))):
            record = {"fingerprint": f"fp{n}", "incident": float(n), "kpi": "orders", "rule": "low",
                      "series": {"region": region}, "verdict": verdict, "reason": "",
                      "raised": {"start": (T0 + (window_end_min - 1) * MIN) / 1000,
                                 "end": (T0 + window_end_min * MIN) / 1000, "value": 1.0}}
            await store.put_feedback(record, {"kind": "feedback"}, expect="", identity=verdict)
    finally:
        await store.aclose()
    done = await asyncio.to_thread(cli, "-c", "cat.yaml", "--from-file", "orders.ndjson", "--redis-url",
                                   redis_server, "--prefix", redis_prefix, "--set", "orders.low.below=2", "--json",
                                   cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    [score] = json.loads(done.stdout)["feedback"]
    assert {k: score[k] for k in ("marked_true", "marked_false", "fired_true", "fired_false", "precision",
                                  "recall")} == {"marked_true": 2, "marked_false": 1, "fired_true": 1,
                                                 "fired_false": 1, "precision": 0.5, "recall": 0.5}
    assert (score["proposed"]["precision"], score["proposed"]["recall"], score["proposed"]["fired_false"]) == (
        1.0, 0.5, 0)
    table = await asyncio.to_thread(cli, "-c", "cat.yaml", "--from-file", "orders.ndjson", "--redis-url",
                                    redis_server, "--prefix", redis_prefix, cwd=tmp_path)
    assert "feedback on orders/low: 2 true, 1 false alarm(s) marked; fired on 1 true, 1 false: precision 50%, " \
           "recall 50%" in table.stdout
    unreachable = await asyncio.to_thread(cli, "-c", "cat.yaml", "--from-file", "orders.ndjson", "--redis-url",
                                          "redis://:secret@127.0.0.1:1/0", cwd=tmp_path)
    assert unreachable.returncode == 2 and "cannot read feedback" in unreachable.stderr
    assert "secret" not in unreachable.stderr


def test_cli_reads_parquet_history(tmp_path: Path) -> None:
    """A Parquet file (pyarrow) of the orders replays like the NDJSON file: the same alert."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    one = CATALOG.split("  visits:")[0] + "kpis:" + CATALOG.split("kpis:")[1].split("  - name: visits")[0]
    (tmp_path / "cat.yaml").write_text(one)
    events = orders_history()
    pq.write_table(pa.table({"ts": [e["ts"] for e in events], "region": [e["region"] for e in events]}),
                   tmp_path / "orders.parquet", row_group_size=500)
    done = cli("-c", "cat.yaml", "--from-file", "orders.parquet", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["history"]["events"] == len(events)
    assert [(r["rule"], r["series"], r["fired"], r["alert_minutes"]) for r in doc["rules"]] == [
        ("low", {"region": "east"}, 1, 8.0)]
