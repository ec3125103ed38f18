"""``kpimon backfill``: detectors warmed from history land where a worker restores them.

Two days of order events (a file) are backfilled into app ``bfw``'s stage-2 changelog on the embedded broker; a
second run writes nothing (idempotent). Then two real workers read the same live minutes from the source topic: the
backfilled one judges the first live windows (its detector exports an expected band at once), a cold one (app
``bfc``, no backfill) is still warming up and exports none."""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.fixtures.kafka_io import produce
from tests.fixtures.waiting import eventually
from tests.fixtures.worker import WorkerProcess

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
MIN = 60_000
CATALOG = """
version: 1
defaults:
  window: {type: tumbling, size: 1m, grace: 5s}
sources:
  orders: {topic: bf.orders}
kpis:
  - name: bf_orders
    source: orders
    measure: count
    target: {value: 28800, per: day}
    alerts:
      - {name: unusual, type: anomaly, fire_on: [anomaly], min_score: 0.6, severity: warning}
"""


def minutes_of_orders(start_ms: int, minutes: int, rng: random.Random) -> list[dict[str, Any]]:
    """About 20 orders a minute, more by day than by night (a daily rhythm the detector learns)."""
    out = []
    for m in range(minutes):
        t = start_ms + m * MIN
        hour = (t // 3_600_000) % 24
        n = max(0, round(rng.gauss(14 + 10 * (8 <= hour < 20), 2)))
        out += [{"ts": t + int(i * MIN / (n + 1)) + 1} for i in range(n)]
    return out


def backfill(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kpimon", "backfill", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=300, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})


def test_a_backfilled_worker_judges_the_first_live_window_a_cold_one_does_not(broker: Any, tmp_path: Path) -> None:
    rng = random.Random(5)
    live_start = (int(time.time() * 1000) // MIN - 3) * MIN
    history = minutes_of_orders(live_start - 2 * 1440 * MIN, 2 * 1440, rng)
    (tmp_path / "orders.ndjson").write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in history))
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(CATALOG)
    args = ("-c", str(catalog), "--from-file", "orders.ndjson", "--broker", broker.bootstrap, "--app-id", "bfw",
            "--topic-prefix", "bfw.")
    first = backfill(*args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "bfw-stage2-changelog" in first.stdout and "bf_orders" in first.stdout
    assert "1 series warmed" in first.stdout and "still warming" not in first.stdout, first.stdout
    assert "attainment of the current period: bf_orders" in first.stdout
    again = backfill(*args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "0 record(s)" in again.stdout and "0 series warmed,     1 kept" in again.stdout, again.stdout

    asyncio.run(produce(broker.bootstrap, "bf.orders", minutes_of_orders(live_start, 3, rng)))
    warm = WorkerProcess(catalog, broker, "bfw", tmp_path / "warm.log")
    cold = WorkerProcess(catalog, broker, "bfc", tmp_path / "cold.log")
    try:
        warm.start()
        cold.start()
        for worker in (warm, cold):      # both have closed the live windows
            def closed(w: WorkerProcess = worker) -> bool:
                mark = w.sample("kpimon_watermark_timestamp_seconds", source="orders") or 0
                return mark >= (live_start + 3 * MIN) / 1000 and w.sample("kpi_bf_orders", by="total") is not None

            eventually(closed, 90, "the live windows closed and exported", poll_s=0.5)
        busy = backfill(*args, "--replace", cwd=tmp_path)          # the workers run: a backfill would be lost
        assert busy.returncode == 2 and "worker(s) of app 'bfw' are running: stop them first" in busy.stderr
        expected = warm.sample("kpi_bf_orders_expected", by="total")
        assert expected is not None and 5 < expected < 40, warm.metrics()[-3000:]
        assert cold.sample("kpi_bf_orders_expected", by="total") is None
        if live_start % 86_400_000 >= 10 * MIN:   # today (UTC) began inside the history: its orders count
            assert (warm.sample("kpi_bf_orders_attainment_ratio") or 0) > (
                cold.sample("kpi_bf_orders_attainment_ratio") or 0)
    finally:
        warm.stop()
        cold.stop()
    assert "Traceback" not in (tmp_path / "warm.log").read_text(errors="replace")
