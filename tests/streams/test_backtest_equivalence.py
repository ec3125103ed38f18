"""Backtest equivalence: the alerts a live ``kpimon worker`` fires on a simulated hour with incidents are the alerts
``kpimon backtest`` reports for the same events, series by series.

The shop simulator's events (a payment outage in one region, then a bot traffic spike that sinks conversion) are
produced at 60x to the embedded broker (about 800 events a wall second: light enough not to disturb the suite's
other live runs), where a real worker (--speedup 60, detectors on) judges them and delivers to a local webhook
receiver (Alertmanager's JSON: every firing alert with its labels and ``startsAt``). The same events,
written as NDJSON files, go through ``kpimon backtest --json``. Each firing incident the receiver got must be one
the backtest reports (same KPI, rule and series; the live one firing up to 4 minutes later, the delay of a
window close and the ratio wait on the event clock at 60x), and the other way
round, for incidents that start before the history's last 5 minutes (the live worker keeps closing windows on the
idle clock after the producer stops; the backtest ends at the last event)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from streams.simulator import Shop, parse_incident
from tests.fixtures.im import IMServer
from tests.fixtures.waiting import eventually
from tests.fixtures.worker import WorkerProcess

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
SPEEDUP = 60.0
SIM_MINUTES = 60
TOPICS = {"visits": "eq.visits", "payments": "eq.payments"}
CATALOG = """
version: 1
defaults:
  window: {type: tumbling, size: 1m, grace: 10s}
sources:
  visits: {topic: eq.visits}
  payments: {topic: eq.payments}
kpis:
  - name: visits
    source: visits
    measure: count
    dimensions: [region]
    alerts:
      - {name: unusual, type: anomaly, fire_on: [anomaly], min_score: 0.6, severity: warning}
  - name: paid_orders
    source: payments
    filter: {status: success}
    measure: count
    dimensions: [region]
    detector: {enabled: false}
    alerts:
      - {name: payments_stopped, type: threshold, below: 1, for: 2m, keep_firing_for: 1m, severity: critical}
  - name: conversion
    ratio: {numerator: paid_orders, denominator: visits}
    dimensions: [region]
    detector: {enabled: false}
    alerts:
      - {name: conv_low, type: threshold, below: 0.04, for: 3m, severity: warning}
channels:
  hook: {type: webhook, url: "${HOOK_URL}", timeout_seconds: 5}
routes:
  - {match: {}, channels: [hook], group_by: [kpi, region], group_wait: 0s, group_interval: 1m, repeat_interval: 1d}
"""
HIDDEN = {"alertname", "kpi", "severity", "team"}


async def produce_paced(bootstrap: str, shop: Shop, minutes: float, out: Path) -> float:
    """Produce the shop's events at SPEEDUP (messages of up to 50 events per topic and simulated second), writing
    every message to ``out/<source>.ndjson`` too; return the newest event time (s)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    files = {src: (out / f"{src}.ndjson").open("wb") for src in TOPICS}
    newest, wall0, sim = 0.0, time.monotonic(), shop.start_ts
    try:
        while sim < shop.start_ts + minutes * 60:
            by_src: dict[str, list[dict[str, Any]]] = {}
            for src, ev in shop.tick(sim, 1.0):
                if src in TOPICS and isinstance(ev, dict):
                    by_src.setdefault(src, []).append(ev)
                    newest = max(newest, ev["ts"] / 1000)
            for src, evs in by_src.items():
                for i in range(0, len(evs), 50):
                    raw = orjson.dumps(evs[i:i + 50])
                    files[src].write(raw + b"\n")
                    await producer.send(TOPICS[src], raw)
            sim += 1.0
            lag = wall0 + (sim - shop.start_ts) / SPEEDUP - time.monotonic()
            if lag > 0:
                await asyncio.sleep(lag)
        await producer.flush()
    finally:
        await producer.stop()
        for f in files.values():
            f.close()
    return newest


def live_incidents(hook: IMServer) -> dict[tuple[str, str, str], list[float]]:
    """(kpi, rule, series) -> the startsAt of every firing incident the receiver was told of."""
    seen: dict[tuple[str, str, str], set[float]] = {}
    for req in hook.requests:
        for alert in req.json["alerts"]:
            if alert["status"] != "firing":
                continue
            labels = alert["labels"]
            series = json.dumps({k: v for k, v in labels.items() if k not in HIDDEN}, sort_keys=True)
            starts = datetime.fromisoformat(alert["startsAt"].replace("Z", "+00:00")).timestamp()
            seen.setdefault((labels["kpi"], labels["alertname"], series), set()).add(starts)
    return {k: sorted(v) for k, v in seen.items()}


def test_live_worker_and_backtest_fire_the_same_alerts(broker: Any, tmp_path: Path) -> None:
    hook = IMServer("webhook").start()
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(CATALOG)
    # dated in the past (the worker reads it at 60x as if live: its idle clock runs at 60x too)
    start = time.time() - 2 * 3600
    shop = Shop(visits_per_s=12, seed=11, start_ts=start,
                incidents=(parse_incident("payment_outage:east@15+12"), parse_incident("traffic_spike@36+10")))
    shop.at_hour(11)
    worker = WorkerProcess(catalog, broker, "eqv", tmp_path / "worker.log", env={"HOOK_URL": hook.url})
    try:
        worker.start()
        newest = asyncio.run(produce_paced(broker.bootstrap, shop, SIM_MINUTES, tmp_path))
        horizon = newest - 300
        # everything the worker judged up to the horizon has been told (a notification goes out within a tick)
        eventually(lambda: (worker.sample("kpimon_watermark_timestamp_seconds", source="payments") or 0) > newest,
                   60, "the worker's watermark past the last event", poll_s=0.5)
        time.sleep(3)
        assert worker.exit_code() is None, worker.log_tail()
    finally:
        worker.stop()
        hook.close()
    assert not hook.problems, hook.problems
    live = {k: [t for t in v if t < horizon] for k, v in live_incidents(hook).items()}
    live = {k: v for k, v in live.items() if v}

    done = subprocess.run([sys.executable, "-m", "kpimon", "backtest", "-c", str(catalog),
                           "--from-file", str(tmp_path / "visits.ndjson"),
                           "--from-file", str(tmp_path / "payments.ndjson"), "--json"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "HOOK_URL": "http://127.0.0.1:9/"})
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["history"]["dead_letters"] == {}
    backtest = {(r["kpi"], r["rule"], json.dumps(r["series"], sort_keys=True)): [t for t in r["fired_at"] if t < horizon]
                for r in doc["rules"]}
    backtest = {k: v for k, v in backtest.items() if v}
    # the incidents were there to be found: the outage and the spike, in the outage region and overall
    assert ("paid_orders", "payments_stopped", '{"region": "east"}') in live
    assert ("conversion", "conv_low", "{}") in live
    assert set(live) == set(backtest), (sorted(live), sorted(backtest))
    for key, starts in live.items():
        assert len(backtest[key]) == len(starts), (key, starts, backtest[key])
        # live times run later: a window is judged when it closes, on the event clock (x60 of the wall delay)
        assert all(0 <= a - b <= 240 for a, b in zip(starts, backtest[key], strict=True)), (key, starts, backtest[key])
