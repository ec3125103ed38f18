"""A real ``kpimon worker`` (broker, Redis, its HTTP API): an anomaly alert fires, a false alarm is posted to the
API, and the worker that owns the series teaches it to the series' detector once (``kpimon_feedback_taught_total``
on /metrics), also when the same verdict is posted again."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.kafka_io import produce
from tests.fixtures.waiting import eventually
from tests.fixtures.worker import WorkerFactory

pytestmark = pytest.mark.slow

T0 = 1_767_571_200_000  # 2026-01-05T00:00:00Z in ms
TOKEN = "ann:feedback-e2e-token-0123456789"
CATALOG = """
version: 1
defaults:
  window: {type: tumbling, size: 1m, grace: 10s}
sources:
  orders: {topic: fb.orders, partitions: 1, since: 2026-01-01}
kpis:
  - name: fb_orders
    source: orders
    measure: count
    detector: {kind: calibrated, params: {seasonality: none, warmup: 10}}
    alerts:
      - {name: odd, type: anomaly, for: 0s, severity: warning}
"""


def _events() -> list[dict[str, Any]]:
    """Five orders a minute for 30 minutes, sixty in minute 30, then five a minute again (closing it)."""
    per_minute = [5] * 30 + [60] + [5] * 4
    return [{"ts": T0 + 60_000 * m + 500 * j} for m, n in enumerate(per_minute) for j in range(n)]


def test_a_false_alarm_posted_to_the_api_reaches_the_series_detector_once(
    worker_factory: WorkerFactory, redis_server: str, tmp_path: Path, broker: Any
) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text(TOKEN + "\n")
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(CATALOG)
    worker = worker_factory(catalog, f"fb{uuid.uuid4().hex[:6]}", env={"KPIMON_REDIS_URL": redis_server},
                            args=("--api-token-file", str(tokens)))
    api = f"http://127.0.0.1:{worker.metrics_port}/api"
    auth = {"Authorization": f"Bearer {TOKEN.split(':', 1)[1]}"}
    asyncio.run(produce(broker.bootstrap, "fb.orders", _events()))

    def firing() -> list[dict[str, Any]]:
        alerts = httpx.get(f"{api}/alerts", headers=auth, timeout=5).json()
        return [a for a in alerts if a["rule"] == "odd" and a["state"] == "firing"]

    eventually(lambda: bool(firing()), 120, lambda: f"the anomaly alert; log:\n{worker.log_tail()}", poll_s=0.5)
    [alert] = firing()
    assert alert["raised"]["value"] in (60.0, 0.0)  # the spike, or the zeros once the orders stop
    url = f"{api}/alerts/{alert['fingerprint']}/feedback"
    first = httpx.post(url, headers=auth, json={"verdict": "false_alarm"}, timeout=5)
    assert first.status_code == 201, first.text
    eventually(lambda: worker.sample("kpimon_feedback_taught_total", kpi="fb_orders") == 1.0, 30,
               lambda: f"the detector taught; log:\n{worker.log_tail()}", poll_s=0.25)
    assert httpx.post(url, headers=auth, json={"verdict": "false_alarm"}, timeout=5).status_code == 200
    time.sleep(2)  # twenty more ticks: nothing taught twice
    assert worker.sample("kpimon_feedback_taught_total", kpi="fb_orders") == 1.0
    assert "Traceback" not in worker.log_tail(400)
