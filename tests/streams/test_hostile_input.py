"""Hostile input against a real ``kpimon worker`` on the embedded broker (issue #11): each attack must leave the
worker up with bounded memory, end as the right dead letter, and leave later good events counted exactly.
An agent that raises anyway (a bug) must take the worker process down loudly instead of stalling its source."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from kpimon.embedded import Broker
from tests.fixtures.kafka_io import produce, read_until
from tests.fixtures.waiting import eventually
from tests.fixtures.worker import WorkerFactory, WorkerProcess
from tests.streams.test_pipeline_e2e import MIN, final_values, has

CATALOG = Path(__file__).with_name("hostile.yaml")
B = int(time.time() - 2 * 3600) // 60 * 60_000     # a window two hours ago: inside the default floor, not future
MAX_RSS_MB = 400                                   # a behaviour bound (no walk over empty windows), not a timing

pytestmark = pytest.mark.slow


def rss_mb(w: WorkerProcess) -> float:
    assert w.proc is not None
    for line in Path(f"/proc/{w.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def good(n: int, ws: int = B, **fields: Any) -> bytes:
    return orjson.dumps([{"ts": ws + 1000 + i, **fields} for i in range(n)])


def deep(n: int) -> bytes:
    return b"[" * n + b"]" * n


def dead_letters(bootstrap: str, app: str, topic: str, n: int) -> list[dict[str, Any]]:
    def mine(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [d for d in records if d["topic"] == topic]

    return mine(asyncio.run(read_until(bootstrap, f"{app}.kpi.deadletter", lambda r: len(mine(r)) >= n)))


def value(bootstrap: str, app: str, kpi: str, ws: int) -> Any:
    records = asyncio.run(read_until(bootstrap, f"{app}.kpi.values", has(kpi, ws)))
    return final_values(records, kpi)[(ws / 1000, "")]["value"]


def still_fine(w: WorkerProcess) -> None:
    assert w.exit_code() is None, w.log_tail()
    assert rss_mb(w) < MAX_RSS_MB
    assert "Traceback" not in w.log_path.read_text(errors="replace"), w.log_tail()


@pytest.fixture(scope="module")
def hostile(broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerProcess]:
    w = WorkerProcess(CATALOG, broker, "hostile", tmp_path_factory.mktemp("hostile") / "worker.log")
    w.start()
    yield w
    w.stop()


def test_an_event_dated_2100_is_future_time_and_moves_no_watermark(broker: Broker, hostile: WorkerProcess) -> None:
    asyncio.run(produce(broker.bootstrap, "h.future", [{"ts": 4_102_444_800_000}, good(5)]))   # 2100-01-01
    dead = dead_letters(broker.bootstrap, "hostile", "h.future", 1)
    assert [d["reason"] for d in dead] == ["future_time"]
    assert orjson.loads(dead[0]["original"]) == {"ts": 4_102_444_800_000}
    assert value(broker.bootstrap, "hostile", "hf_count", B) == 5
    still_fine(hostile)


def test_ts_zero_as_first_event_is_bad_time_not_a_walk_from_1970(broker: Broker, hostile: WorkerProcess) -> None:
    asyncio.run(produce(broker.bootstrap, "h.zero", [{"ts": 0}, good(5)]))
    assert [d["reason"] for d in dead_letters(broker.bootstrap, "hostile", "h.zero", 1)] == ["bad_time"]
    assert value(broker.bootstrap, "hostile", "hz_count", B) == 5
    still_fine(hostile)


def test_unrepresentable_times_are_bad_time(broker: Broker, hostile: WorkerProcess) -> None:
    bad = [b'{"ts": 1e30}', b'{"ts": 100000000000000000000000}', b'{"ts": "99999-01-01T00:00:00Z"}',
           b'{"ts": -5}', b'{"ts": "0000-01-01"}']
    asyncio.run(produce(broker.bootstrap, "h.huge", [*bad, good(5)]))
    dead = dead_letters(broker.bootstrap, "hostile", "h.huge", len(bad))
    assert [d["reason"] for d in dead] == ["bad_time"] * len(bad)
    assert [d["original"].encode() for d in dead] == bad
    assert value(broker.bootstrap, "hostile", "hh_count", B) == 5
    still_fine(hostile)


def test_input_nested_300_deep_is_a_dead_letter_with_its_original_bytes(broker: Broker, hostile: WorkerProcess) -> None:
    one = orjson.dumps({"ts": B + 1000})
    as_item = b"[" + one + b", " + deep(300) + b"]"                  # an array item nested 300 deep
    in_field = b'{"junk": ' + deep(300) + b"}"                       # a bad event (no ts), a deep unknown field
    in_batch = b"[" + one + b", " + in_field + b"]"
    asyncio.run(produce(broker.bootstrap, "h.deep", [as_item, in_field, in_batch, good(3)]))
    dead = dead_letters(broker.bootstrap, "hostile", "h.deep", 3)
    assert [(d["reason"], d["original"].encode()) for d in dead] == \
        [("not_an_object", as_item), ("missing_time", in_field), ("missing_time", in_batch)]
    assert "array item 1" in dead[0]["detail"] and "array item 1" in dead[2]["detail"]
    assert value(broker.bootstrap, "hostile", "hd_count", B) == 5
    still_fine(hostile)


def test_amounts_that_overflow_a_sum_are_dead_letters_and_values_stay_finite(broker: Broker, hostile: WorkerProcess) -> None:
    asyncio.run(produce(broker.bootstrap, "h.big", [good(2, amount=1e308), good(4, B + MIN, amount=2.5)]))
    dead = dead_letters(broker.bootstrap, "hostile", "h.big", 1)
    assert [d["reason"] for d in dead] == ["overflow"]
    assert value(broker.bootstrap, "hostile", "hb_sum", B) == 1e308
    assert value(broker.bootstrap, "hostile", "hb_count", B) == 1          # taken whole or not at all
    assert value(broker.bootstrap, "hostile", "hb_sum", B + MIN) == 10.0
    assert value(broker.bootstrap, "hostile", "hb_count", B + MIN) == 4
    # stage 2 goes on for every KPI: a later window of another source still arrives
    asyncio.run(produce(broker.bootstrap, "h.future", [good(2, B + 30 * MIN)]))
    assert value(broker.bootstrap, "hostile", "hf_count", B + 30 * MIN) == 2
    still_fine(hostile)


def test_a_huge_dimension_value_is_a_dead_letter_not_a_series(broker: Broker, hostile: WorkerProcess) -> None:
    huge = "x" * 500_000       # as a series key it would ride in every partial and changelog record, and a label
    asyncio.run(produce(broker.bootstrap, "h.long", [good(1, region=huge), good(3, region="east")]))
    dead = dead_letters(broker.bootstrap, "hostile", "h.long", 1)
    assert [d["reason"] for d in dead] == ["too_long"] and dead[0]["size"] > 500_000
    records = asyncio.run(read_until(broker.bootstrap, "hostile.kpi.values", has("hl_count", B, "region=east")))
    values = final_values(records, "hl_count")
    assert values[(B / 1000, "")]["value"] == 3 and values[(B / 1000, "region=east")]["value"] == 3
    assert all(len(k[1]) < 300 for k in values)
    still_fine(hostile)


def watermark_ms(w: WorkerProcess, source: str) -> float | None:
    wm = w.sample("kpimon_watermark_timestamp_seconds", source=source)
    return None if wm is None else wm * 1000


ONE_SOURCE = """version: 1
defaults:
  window: {type: tumbling, size: 1m, grace: 1m}
sources:
  one: {topic: %s, partitions: 1}
kpis:
  - {name: %s, source: one, measure: count}
"""


def test_idle_watermark_after_a_restart_in_a_silence_follows_the_wall_clock(broker: Broker, worker_factory: WorkerFactory, tmp_path: Path) -> None:
    speedup = 60.0
    catalog = tmp_path / "silent.yaml"
    catalog.write_text(ONE_SOURCE % ("h.silent", "hs_count"))
    w1 = worker_factory(catalog, "silence", speedup=speedup)
    asyncio.run(produce(broker.bootstrap, "h.silent", [good(3)]))
    assert value(broker.bootstrap, "silence", "hs_count", B) == 3
    seen_by = time.time()           # the worker saw the newest event (B + 1002) before this
    w1.kill9()
    time.sleep(5)                   # down, the source silent (with the restart: some 15 simulated minutes)
    w2 = worker_factory(catalog, "silence", speedup=speedup)
    # Idle since `seen_by` at the latest, so the watermark is at least B + 1002 + (now - seen_by) × speedup,
    # less a tick or two of staleness. One that restarted the idle clock at the restart trails by the downtime.
    def caught_up() -> float | None:
        bound = B + 1002 + (time.time() - seen_by) * speedup * 1000 - 3 * speedup * 1000
        wm = watermark_ms(w2, "one")
        return wm if wm is not None and wm >= bound else None

    wm = eventually(caught_up, 60, lambda: f"watermark {watermark_ms(w2, 'one')} caught up\n{w2.log_tail()}")
    # events at the (simulated) present are counted in their window, closed by the idle watermark
    ws = int(wm + 10 * MIN) // MIN * MIN
    asyncio.run(produce(broker.bootstrap, "h.silent", [good(4, ws)]))
    assert value(broker.bootstrap, "silence", "hs_count", ws) == 4
    still_fine(w2)
    assert w2.sample("kpimon_dead_letters_total", source="one", reason="too_late") is None


@pytest.mark.parametrize("stage", ["stage1", "stage2"])
def test_an_agent_failure_exits_the_worker_non_zero(broker: Broker, worker_factory: WorkerFactory, tmp_path: Path, stage: str) -> None:
    catalog = tmp_path / "fault.yaml"
    catalog.write_text(ONE_SOURCE % (f"h.fault.{stage}", "hx_count"))
    w = worker_factory(catalog, f"fault-{stage}", env={"KPIMON_FAULT_INJECT": stage})  # test-only hook
    asyncio.run(produce(broker.bootstrap, f"h.fault.{stage}", [good(3)]))    # stage 2 gets its partial when B closes
    assert w.proc is not None
    try:
        rc = w.proc.wait(60)
    except Exception:
        pytest.fail(f"the worker did not exit after an agent failure:\n{w.log_tail()}")
    assert rc == 70
    text = w.log_path.read_text(errors="replace")
    assert text.count("injected fault in " + stage) == 1, text     # logged once, with its traceback
    assert "Traceback" in text
