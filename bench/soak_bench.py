"""Soak of one worker (issue #11): sustained load at 80 % of its throughput, then a cardinality flood.

    python bench/soak_bench.py [--minutes 10] [--throughput EVENTS_PER_S] [--batch 500] [--flood 100000]

1. Starts the embedded broker and one ``kpimon worker`` on examples/shop.yaml (``--listen 127.0.0.1:<free>``).
2. Throughput: unless ``--throughput`` is given, pre-produces ``--probe`` events stamped now and times the worker
   from its first counted event to the last (``kpimon_events_total`` on /metrics), like bench/pipeline_bench.py.
3. Sustained: ``--minutes`` of simulated shop events (visits, orders, payments, refunds; ``--batch`` events per
   message, event time = now) at ``--load`` (80 %) of that throughput.
   ``--users`` folds the user ids into fewer (a lighter ``distinct(user_id)``; no longer needed since distinct
   counts are bounded).
4. Flood: ``--flood`` orders, each with a region never seen before, inside the same 80 % budget, then
   ``--settle`` seconds more so the flooded windows close and reach /metrics.

Every ``--every`` seconds it samples: lag = events acknowledged by the broker minus events the worker counted
(``kpimon_events_total``; not the broker's end offsets, which the embedded broker under-reports, shared/FACTS.md),
the worker's RSS from /proc, and the series exported per KPI (samples of each ``kpi_<name>`` family; the cap is the
catalog's ``max_series`` plus the total series and one ``__other__`` per dimension). Prints a table and a summary:
lag bounded? RSS flat after warm-up? cap held?
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import itertools
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from catalog import Catalog, load_catalog  # noqa: E402
from kpimon.embedded import Broker, start_broker  # noqa: E402
from streams.plan import compile_plan  # noqa: E402
from streams.simulator import TOPICS, Shop  # noqa: E402
from streams.topics import Topics, ensure_topics  # noqa: E402
from tests.fixtures.worker import WorkerProcess  # noqa: E402

CATALOG = Path(__file__).resolve().parents[1] / "examples" / "shop.yaml"
FLOOD_SOURCE, FLOOD_DIM = "orders", "region"


@dataclass
class Sample:
    t: float              # seconds since the sustained phase started
    phase: str
    produced: int
    consumed: int
    rss_mb: float
    series: dict[str, int]

    @property
    def lag(self) -> int:
        return self.produced - self.consumed


@dataclass
class Load:
    """Shop events from a cycling pool, re-stamped with the send time; counts what the broker acknowledged."""

    pool: dict[str, Iterator[dict[str, Any]]]
    weights: dict[str, float]
    batch: int
    acked: int = 0
    sent: int = 0
    flood_sent: int = 0
    errors: int = 0
    _carry: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    @classmethod
    def from_shop(cls, batch: int, users: int | None = None, size: int = 60_000) -> Load:
        """A pool of ``size`` shop events; ``users`` folds user ids into that many (the simulator has 200,000)."""
        shop = Shop(visits_per_s=2000, seed=11, start_ts=time.time())
        by_topic: dict[str, list[dict[str, Any]]] = defaultdict(list)
        ts = shop.start_ts
        while sum(map(len, by_topic.values())) < size:
            for src, ev in shop.tick(ts, 1.0):
                if isinstance(ev, dict):
                    if users and "user_id" in ev:
                        ev["user_id"] = f"u{int(ev['user_id'][1:]) % users}"
                    by_topic[TOPICS[src]].append(ev)
            ts += 1.0
        total = sum(map(len, by_topic.values()))
        return cls({t: itertools.cycle(evs) for t, evs in by_topic.items()},
                   {t: len(evs) / total for t, evs in by_topic.items()}, batch)

    def messages(self, n: int, flood_share: float, flood_left: int) -> Iterator[tuple[str, bytes, int, int]]:
        """About ``n`` events as (topic, body, events, flood events); ``flood_share`` of them flood orders."""
        now_ms = round(time.time() * 1000)
        flood = min(flood_left, round(n * flood_share))
        if flood:
            topic = TOPICS[FLOOD_SOURCE]
            for start in range(0, flood, self.batch):
                chunk = []
                for i in range(start, min(flood, start + self.batch)):
                    ev = dict(next(self.pool[topic]))
                    ev.update(ts=now_ms, **{FLOOD_DIM: f"flood-{self.flood_sent + i:06d}"})
                    chunk.append(ev)
                yield topic, orjson.dumps(chunk), len(chunk), len(chunk)
            self.flood_sent += flood
        for topic, weight in self.weights.items():
            self._carry[topic] += (n - flood) * weight
            count = int(self._carry[topic])
            self._carry[topic] -= count
            for start in range(0, count, self.batch):
                chunk = [next(self.pool[topic]) for _ in range(min(self.batch, count - start))]
                for ev in chunk:
                    ev["ts"] = now_ms
                yield topic, orjson.dumps(chunk), len(chunk), 0

    async def send(self, producer: AIOKafkaProducer, n: int, flood_share: float = 0.0, flood_left: int = 0) -> None:
        for topic, body, events, _flood in self.messages(n, flood_share, flood_left):
            fut = await producer.send(topic, body)
            fut.add_done_callback(functools.partial(self._done, events=events))
            self.sent += events

    def _done(self, fut: asyncio.Future[Any], *, events: int) -> None:
        if fut.exception() is None:
            self.acked += events
        else:
            self.errors += events


def consumed(metrics: str) -> int:
    return round(sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                     if line.startswith("kpimon_events_total{")))


def series_per_kpi(metrics: str, kpis: set[str]) -> dict[str, int]:
    out = dict.fromkeys(kpis, 0)
    for fam in text_string_to_metric_families(metrics):
        if fam.name.startswith("kpi_") and fam.name[4:] in kpis:
            out[fam.name[4:]] = len(fam.samples)
    return out


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def series_caps(catalog: Catalog) -> dict[str, int]:
    """Most series a KPI may export: the total, ``max_series`` admitted values, one ``__other__`` per dimension."""
    return {k.name: 1 + catalog.max_series(k) + len(k.dimensions) for k in catalog.kpis}


async def new_producer(bootstrap: str) -> AIOKafkaProducer:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=1 << 20,
                                max_request_size=8 << 20)
    await producer.start()
    return producer


async def measure_throughput(broker: Broker, worker: WorkerProcess, load: Load, probe: int) -> float:
    """Events/s of the worker draining ``probe`` pre-produced events (start-up excluded)."""
    producer = await new_producer(broker.bootstrap)
    try:
        await load.send(producer, probe)
        await producer.flush()
    finally:
        await producer.stop()
    worker.start()
    async with httpx.AsyncClient(timeout=10) as http:
        t_first, n_first = None, 0
        while True:
            n = consumed((await http.get(worker.metrics_url)).text)
            now = time.perf_counter()
            if n > 0 and t_first is None:
                t_first, n_first = now, n
            if n >= load.acked:
                break
            await asyncio.sleep(0.2)
    return (n - n_first) / max(now - (t_first or now), 1e-9)


async def soak(worker: WorkerProcess, load: Load, rate: float, args: argparse.Namespace,
               kpis: set[str]) -> list[Sample]:
    """The sustained phase then the flood, sampling every ``args.every`` seconds."""
    producer = await new_producer(worker.broker.bootstrap)
    samples: list[Sample] = []
    sustained_s = args.minutes * 60
    flood_s = args.flood / (rate * args.flood_share)
    end = sustained_s + flood_s + args.settle
    tick = 0.1
    base = load.acked                      # the probe's events are counted by the worker too
    async with httpx.AsyncClient(timeout=10) as http:
        t0 = time.perf_counter()
        next_sample, due = 0.0, 0.0
        try:
            while (t := time.perf_counter() - t0) < end:
                phase = "sustained" if t < sustained_s else "flood" if load.flood_sent < args.flood else "settle"
                due += rate * tick
                n = int(due)
                due -= n
                share = args.flood_share if phase == "flood" else 0.0
                await load.send(producer, n, share, args.flood - load.flood_sent)
                if t >= next_sample:
                    assert worker.proc is not None
                    try:
                        text = (await http.get(worker.metrics_url)).text
                    except httpx.HTTPError:
                        if worker.proc.poll() is None:
                            raise
                        print(died(worker, t), flush=True)
                        return samples
                    samples.append(Sample(t, phase, load.acked - base, consumed(text) - base,
                                          rss_mb(worker.proc.pid), series_per_kpi(text, kpis)))
                    print(row(samples[-1]), flush=True)
                    next_sample += args.every
                await asyncio.sleep(max(0.0, t0 + t + tick - time.perf_counter()))
        finally:
            await producer.flush()
            await producer.stop()
        if worker.proc is not None and worker.proc.poll() is not None:
            print(died(worker, time.perf_counter() - t0), flush=True)
            return samples
        drain_t0 = time.perf_counter()
        while consumed((await http.get(worker.metrics_url)).text) < load.acked and time.perf_counter() - drain_t0 < 120:
            await asyncio.sleep(0.5)
        print(f"drained the remaining lag in {time.perf_counter() - drain_t0:.1f} s after the input stopped", flush=True)
    return samples


def died(worker: WorkerProcess, t: float) -> str:
    """What killed the worker: its exit code and the first error line of its log."""
    assert worker.proc is not None
    errors = [ln for ln in worker.log_path.read_text(errors="replace").splitlines() if "[ERROR]" in ln]
    return f"worker DIED at t={t:.0f} s (exit {worker.proc.returncode}): {errors[0][:300] if errors else '?'}"


def header() -> str:
    return f"{'t s':>6} {'phase':<9} {'produced':>11} {'consumed':>11} {'lag':>9} {'RSS MB':>7}  max series (KPI)"


def row(s: Sample) -> str:
    kpi, most = max(s.series.items(), key=lambda kv: kv[1]) if s.series else ("-", 0)
    return (f"{s.t:6.0f} {s.phase:<9} {s.produced:11,} {s.consumed:11,} {s.lag:9,} {s.rss_mb:7.1f}  "
            f"{most} ({kpi})")


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (x, y) points (0 with fewer than two)."""
    if len(points) < 2:
        return 0.0
    xs, ys = zip(*points, strict=True)
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in points) / den if den else 0.0


def summary(samples: list[Sample], rate: float, caps: dict[str, int], warmup_s: float) -> list[str]:
    sustained = [s for s in samples if s.phase == "sustained"]
    if not sustained:
        return ["no samples of the sustained phase: no summary"]
    late = [s for s in sustained if s.t >= warmup_s] or sustained
    lag_slope = slope([(s.t, s.lag) for s in late])
    max_lag = max((s.lag for s in samples), default=0)
    bound = rate * 10                      # ten seconds of input
    lag_ok = max(s.lag for s in late) <= bound and lag_slope < 0.01 * rate
    rss = [(s.t / 60, s.rss_mb) for s in late]
    rss_slope = slope(rss)
    rss_growth = (late[-1].rss_mb - late[0].rss_mb) / late[0].rss_mb if late else 0.0
    rss_ok = abs(rss_growth) < 0.10
    worst = {k: max(s.series.get(k, 0) for s in samples) for k in caps}
    over = {k: (n, caps[k]) for k, n in worst.items() if n > caps[k]}
    after = [s for s in samples if s.phase != "sustained"]
    flood_max = max((max(s.series.values(), default=0) for s in after), default=0)
    flood_lag = (f"after the flood: lag max {max(s.lag for s in after):,}, trend "
                 f"{slope([(s.t, s.lag) for s in after]):+,.0f} events/s" if after else "no flood samples")
    return [
        f"input rate: {rate:,.0f} events/s; samples: {len(samples)}; warm-up excluded: first {warmup_s:.0f} s",
        f"lag bounded: {'YES' if lag_ok else 'NO'} — max {max_lag:,} events overall, "
        f"{max(s.lag for s in late):,} after warm-up (bound {bound:,.0f} = 10 s of input), "
        f"trend {lag_slope:+,.0f} events/s",
        f"  {flood_lag}",
        f"RSS flat after warm-up: {'YES' if rss_ok else 'NO'} — {late[0].rss_mb:.1f} → {late[-1].rss_mb:.1f} MB "
        f"({rss_growth:+.1%}), trend {rss_slope:+.2f} MB/min; during flood/settle max "
        f"{max((s.rss_mb for s in samples), default=0):.1f} MB",
        f"series cap held: {'YES' if not over else 'NO ' + str(over)} — most series of one KPI {max(worst.values())} "
        f"(cap {max(caps.values())}); during the flood {flood_max}",
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10.0, help="length of the sustained phase")
    ap.add_argument("--throughput", type=float, default=None, help="events/s of one worker (skips the probe)")
    ap.add_argument("--probe", type=int, default=200_000, help="events pre-produced to measure the throughput")
    ap.add_argument("--load", type=float, default=0.8, help="share of the throughput to sustain")
    ap.add_argument("--batch", type=int, default=500, help="events per Kafka message")
    ap.add_argument("--users", type=int, default=None,
                    help="distinct user ids (default: the simulator's 200,000)")
    ap.add_argument("--flood", type=int, default=100_000, help="orders with distinct regions")
    ap.add_argument("--flood-share", type=float, default=0.5, help="share of the input the flood takes meanwhile")
    ap.add_argument("--settle", type=float, default=100.0, help="seconds after the flood (windows close: 1m + 30s)")
    ap.add_argument("--every", type=float, default=10.0, help="seconds between samples")
    ap.add_argument("--warmup", type=float, default=60.0, help="seconds of the sustained phase left out of trends")
    args = ap.parse_args()
    catalog = load_catalog(CATALOG)
    logdir = Path(tempfile.mkdtemp(prefix="kpimon-soak-"))
    broker = start_broker(log_path=logdir / "broker.log")
    worker = WorkerProcess(CATALOG, broker, "soak", logdir / "worker.log", speedup=1.0, idle_ms=2000)
    print(f"logs in {logdir}; broker {broker.bootstrap}", flush=True)
    try:
        asyncio.run(ensure_topics(broker.bootstrap, compile_plan(catalog), Topics()))
        load = Load.from_shop(args.batch, args.users)
        if args.throughput is None:
            throughput = asyncio.run(measure_throughput(broker, worker, load, args.probe))
            print(f"single-worker throughput: {throughput:,.0f} events/s ({args.probe:,} pre-produced events)")
        else:
            throughput = args.throughput
            worker.start()
        rate = throughput * args.load
        print(f"sustained input: {rate:,.0f} events/s for {args.minutes:g} min, then {args.flood:,} distinct "
              f"{FLOOD_DIM} values on {FLOOD_SOURCE}\n")
        print(header(), flush=True)
        samples = asyncio.run(soak(worker, load, rate, args, {k.name for k in catalog.kpis}))
        if load.errors:
            print(f"{load.errors:,} events were not acknowledged by the broker")
        print()
        for line in summary(samples, rate, series_caps(catalog), args.warmup):
            print(line)
        print(f"worker alive at the end: {worker.proc is not None and worker.proc.poll() is None}")
    finally:
        worker.stop()
        broker.stop()


if __name__ == "__main__":
    main()
