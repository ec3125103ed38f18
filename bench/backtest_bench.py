"""How fast ``kpimon backtest`` replays history: the simulated shop (examples/shop.yaml, 30 visits/s at average
traffic, as the demo) for ``--hours`` simulated hours, replayed through the worker's engine (stage 1 and 2) and then
judged by the detectors and alert rules, in one process. Prints events/s of the replay and the judging time.

    .venv/bin/python bench/backtest_bench.py --hours 24
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import time

from catalog import load_catalog
from streams.backtest import Judge, judge, replay
from streams.plan import compile_plan
from streams.simulator import Shop, parse_incident


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hours", type=float, default=6.0)
    parser.add_argument("--catalog", default="examples/shop.yaml")
    args = parser.parse_args()
    cat = load_catalog(args.catalog)
    start = 1_767_571_200.0           # 2026-01-05T00:00:00Z, a Monday
    shop = Shop(visits_per_s=30, seed=7, start_ts=start,
                incidents=(parse_incident("payment_outage:east@600+30"), parse_incident("traffic_spike@900+20")))
    by_src: dict[str, list[dict[str, object]]] = {}
    ts = start
    while ts < start + args.hours * 3600:
        for src, ev in shop.tick(ts, 1.0):
            if isinstance(ev, dict):
                by_src.setdefault(src, []).append(ev)
        ts += 1.0
    events = sum(map(len, by_src.values()))
    t0 = time.perf_counter()
    history = replay(compile_plan(cat), by_src)
    replayed = time.perf_counter() - t0
    t0 = time.perf_counter()
    report = asyncio.run(judge(history, Judge.of(cat)))
    judged = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"history: {args.hours:g} simulated hours, {events:,} events, {history.values:,} window values")
    print(f"replay (stage 1 + 2): {replayed:.1f} s = {events / replayed:,.0f} events/s")
    print(f"judge (detectors + rules): {judged:.1f} s = {history.values / judged:,.0f} windows/s; "
          f"{sum(r.fired for r in report.rows)} alerts on {len(report.rows)} series")
    print(f"max RSS {rss:,.0f} MB")


if __name__ == "__main__":
    main()
