"""End-to-end throughput of one worker vs a raw aiokafka consumer on the same topics (prints figures).

    python bench/pipeline_bench.py [--events 300000] [--batch 500] [--single 20000]

Pre-produces simulated shop events (examples/shop.yaml sources) to a fresh embedded broker, then
1. reads them with a raw aiokafka consumer (no decoding) — the ceiling;
2. runs one `kpimon worker` and times from its first counted event to the last (start-up excluded),
   from `kpimon_events_total` on /metrics;
3. the same with one event per message.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from catalog import load_catalog  # noqa: E402
from kpimon.embedded import Broker, start_broker  # noqa: E402
from streams.plan import compile_plan  # noqa: E402
from streams.simulator import TOPICS, Shop  # noqa: E402
from streams.topics import Topics, ensure_topics  # noqa: E402
from tests.fixtures.worker import WorkerProcess  # noqa: E402

CATALOG = Path(__file__).resolve().parents[1] / "examples" / "shop.yaml"


def make_events(n: int) -> list[tuple[str, dict]]:
    shop = Shop(visits_per_s=2000, seed=1, start_ts=1_767_571_200.0)
    out: list[tuple[str, dict]] = []
    ts = shop.start_ts
    while len(out) < n:
        out.extend((s, e) for s, e in shop.tick(ts, 1.0) if isinstance(e, dict))
        ts += 1.0
    return out[:n]


async def produce(bootstrap: str, events: list[tuple[str, dict]], batch: int, prefix: str) -> int:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=50, max_batch_size=1 << 20,
                                max_request_size=8 << 20)
    await producer.start()
    by_topic: dict[str, list[dict]] = {}
    for src, ev in events:
        by_topic.setdefault(prefix + TOPICS[src], []).append(ev)
    messages = 0
    try:
        for topic, evs in by_topic.items():
            for i in range(0, len(evs), batch):
                chunk = evs[i:i + batch]
                await producer.send(topic, orjson.dumps(chunk if batch > 1 else chunk[0]))
                messages += 1
        await producer.flush()
    finally:
        await producer.stop()
    return messages


async def raw_consume(bootstrap: str, topics: list[str], messages: int) -> float:
    consumer = AIOKafkaConsumer(*topics, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                group_id=f"raw-{time.time()}", enable_auto_commit=False, max_partition_fetch_bytes=8 << 20,
                                fetch_max_bytes=64 << 20, session_timeout_ms=10_000)
    await consumer.start()
    seen, t0 = 0, None
    try:
        while seen < messages:
            batch = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            if batch and t0 is None:
                t0 = time.perf_counter()
            seen += sum(len(v) for v in batch.values())
        return time.perf_counter() - (t0 or time.perf_counter())
    finally:
        await consumer.stop()


def run_worker(broker: Broker, app_id: str, total: int, logdir: Path) -> float:
    w = WorkerProcess(CATALOG, broker, app_id, logdir / f"{app_id}.log", speedup=1.0, idle_ms=600_000)
    w.start()
    try:
        t_first = None
        while True:
            text = w.metrics()
            n = sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith("kpimon_events_total{"))
            now = time.perf_counter()
            if n > 0 and t_first is None:
                t_first = now
            if n >= total:
                return now - (t_first or now)
            time.sleep(0.2)
    finally:
        w.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=300_000)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--single", type=int, default=20_000)
    args = ap.parse_args()
    logdir = Path(tempfile.mkdtemp(prefix="kpimon-bench-"))
    broker = start_broker(log_path=logdir / "broker.log")
    try:
        plan = compile_plan(load_catalog(CATALOG))
        asyncio.run(ensure_topics(broker.bootstrap, plan, Topics()))
        print(f"generating {args.events:,} events…", flush=True)
        events = make_events(args.events)
        msgs = asyncio.run(produce(broker.bootstrap, events, args.batch, ""))
        print(f"produced {len(events):,} events in {msgs:,} messages ({args.batch} events/message)", flush=True)
        raw_s = asyncio.run(raw_consume(broker.bootstrap, [s.topic for s in plan.sources], msgs))
        raw_rate = len(events) / raw_s
        print(f"raw aiokafka consumer: {raw_s:.2f} s → {raw_rate:,.0f} events/s ({msgs / raw_s:,.0f} messages/s)", flush=True)
        w_s = run_worker(broker, "bench-batched", len(events), logdir)
        w_rate = len(events) / w_s
        print(f"kpimon worker (batched): {w_s:.2f} s → {w_rate:,.0f} events/s = {w_rate / raw_rate:.2f} × raw", flush=True)
        # single-event messages go to other topics: a second catalog-less run is not needed, reuse a fresh broker
        broker.stop()
        broker = start_broker(log_path=logdir / "broker2.log")
        asyncio.run(ensure_topics(broker.bootstrap, plan, Topics()))
        single = make_events(args.single)
        asyncio.run(produce(broker.bootstrap, single, 1, ""))
        s_s = run_worker(broker, "bench-single", len(single), logdir)
        print(f"kpimon worker (1 event/message, {len(single):,} events): {len(single) / s_s:,.0f} events/s", flush=True)
    finally:
        broker.stop()


if __name__ == "__main__":
    main()
