"""Alert latency: from the close of a breaching window to the e-mail at the SMTP server (prints figures).

    python bench/alert_latency_bench.py [--incidents 30] [--series 10000]

One worker (speedup 1, real broker, in-memory alert store or --redis) with a rule `count above 100, for 0s`
routed to e-mail with group_wait 0. Each incident sends 150 events of a new region into a window, then one
event at the window's end, which closes it; the clock starts when that closing event is acknowledged by the
broker and stops when the SMTP server has the message. Then alert evaluation cost per series, in process.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import orjson
from aiokafka import AIOKafkaProducer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kpimon.embedded import free_port, start_broker  # noqa: E402
from tests.fixtures.worker import WorkerProcess  # noqa: E402

CATALOG = """
version: 1
sources:
  lat: {topic: bench.latency, partitions: 1}
kpis:
  - name: lat_count
    title: {en: Latency probe}
    source: lat
    measure: count
    dimensions: [region]
    detector: {enabled: false}
    alerts:
      - {name: too_many, type: threshold, above: 100, for: 0s, severity: critical}
channels:
  mail: {type: email, host: 127.0.0.1, port: PORT, starttls: false, from: k@x, to: [ops@x]}
routes:
  - {match: {}, channels: [mail], group_by: [region], group_wait: 0s, group_interval: 1m, repeat_interval: 1h}
"""


class Inbox:
    def __init__(self) -> None:
        self.arrivals: dict[str, float] = {}

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:  # noqa: N802
        import email
        import email.policy
        import re

        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)  # type: ignore[attr-defined]
        body = msg.get_body(preferencelist=("plain",))
        text = body.get_content() if body is not None else ""
        now = time.perf_counter()
        for region in re.findall(r"\br\d+\b", text):
            self.arrivals.setdefault(region, now)
        return "250 OK"


async def incidents(bootstrap: str, n: int, inbox: Inbox) -> list[float]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
    await producer.start()
    out = []
    try:
        base = int(time.time() // 60 * 60 - 3600 * 24) * 1000
        for i in range(n):
            ws = base + i * 60_000
            region = f"r{i}"
            await producer.send_and_wait("bench.latency", orjson.dumps([{"ts": ws + k, "region": region}
                                                                         for k in range(150)]))
            await producer.send_and_wait("bench.latency", orjson.dumps({"ts": ws + 60_000, "region": "closer"}))
            t0 = time.perf_counter()
            deadline = t0 + 15
            while region not in inbox.arrivals and time.perf_counter() < deadline:
                await asyncio.sleep(0.005)
            if region in inbox.arrivals:
                out.append(inbox.arrivals[region] - t0)
            else:
                print(f"incident {i}: no e-mail within 15 s", flush=True)
    finally:
        await producer.stop()
    return out


async def eval_cost(series: int, redis_url: str | None = None) -> float:
    from alerting.config import KpiMeta, build_alerting_config
    from alerting.memory_store import MemoryStore
    from alerting.redis_store import RedisStore
    from alerting.samples import Sample
    from alerting.service import AlertService

    cfg = build_alerting_config({"k": [{"type": "threshold", "above": 100, "for": "5m"}]}, [], {},
                                {"k": KpiMeta(name="k")})
    store = RedisStore.from_url(redis_url, prefix="bench:") if redis_url else MemoryStore()
    svc = AlertService(cfg, store, clock=lambda: 1000.0)
    t0 = time.perf_counter()
    for i in range(series):
        await svc.observe(Sample("k", {"region": f"r{i}"}, 0.0, 60.0, float(i % 200)))
    return (time.perf_counter() - t0) / series * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--incidents", type=int, default=30)
    ap.add_argument("--series", type=int, default=10_000)
    args = ap.parse_args()
    from aiosmtpd.controller import Controller

    tmp = Path(tempfile.mkdtemp(prefix="kpimon-alert-bench-"))
    inbox = Inbox()
    smtp_port = free_port()
    smtp = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    catalog = tmp / "catalog.yaml"
    catalog.write_text(CATALOG.replace("PORT", str(smtp_port)))
    broker = start_broker(log_path=tmp / "broker.log")
    worker = WorkerProcess(catalog, broker, "alertbench", tmp / "worker.log", speedup=1.0, idle_ms=600_000)
    try:
        worker.start()
        time.sleep(12)      # consumer group join on the embedded broker
        lat = asyncio.run(incidents(broker.bootstrap, args.incidents, inbox))
        if lat:
            lat.sort()
            p99 = lat[min(len(lat) - 1, round(0.99 * (len(lat) - 1)))]
            print(f"window close → e-mail at SMTP: n={len(lat)} p50={statistics.median(lat) * 1000:.0f} ms "
                  f"p99={p99 * 1000:.0f} ms max={lat[-1] * 1000:.0f} ms", flush=True)
    finally:
        worker.stop()
        broker.stop()
        smtp.stop()
    us = asyncio.run(eval_cost(args.series))
    print(f"alert evaluation (threshold rule, in-memory store): {us:.1f} µs per series per window "
          f"({args.series:,} series)")
    if os.path.exists("/usr/bin/redis-server"):
        from tests.fixtures.redis_server import running_redis

        with running_redis(tmp) as url:
            us = asyncio.run(eval_cost(args.series, url))
        print(f"alert evaluation (threshold rule, Redis store on loopback): {us:.1f} µs per series per window")


if __name__ == "__main__":
    main()
