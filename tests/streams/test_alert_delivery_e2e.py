"""A real ``kpimon worker`` (at --speedup 60) rides over a Redis crash while a notification waits in the outbox:
one log line when Redis goes, one when it is back, ``kpimon_store_up``/``kpimon_store_errors_total`` on /metrics,
and the notification delivered exactly once after both Redis and the endpoint recover. Short real waits."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.im_servers import IMServer, Reply
from tests.fixtures.kafka_io import produce
from tests.fixtures.redis_server import RedisProcess
from tests.fixtures.worker import WorkerProcess

pytestmark = pytest.mark.slow

T0 = 1_767_571_200_000  # 2026-01-05T00:00:00Z in ms
CATALOG = """
version: 1
defaults:
  window: {type: tumbling, size: 1m, grace: 10s}
sources:
  orders: {topic: dl.orders, partitions: 1}
kpis:
  - name: dl_orders
    source: orders
    measure: count
    alerts:
      - {name: stopped, type: threshold, below: 1, for: 0s, severity: critical, summary: "orders {value}"}
channels:
  hook: {type: webhook, url: "${HOOK_URL}", timeout_seconds: 5}
routes:
  - {match: {}, channels: [hook], group_by: [kpi], group_wait: 0s, group_interval: 1m, repeat_interval: 1d}
"""


def wait_for(check: Any, timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.25)
    raise TimeoutError(f"{what} not seen within {timeout_s:g}s")


def test_worker_rides_over_a_redis_crash_with_a_notification_in_the_outbox(
    broker: Any, redis_process: RedisProcess, tmp_path: Path
) -> None:
    hook = IMServer("webhook").start()
    hook.reply(*[Reply(503, text="maintenance")] * 10_000)  # the endpoint is down too
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(CATALOG)
    env = {"HOOK_URL": hook.url, "KPIMON_REDIS_URL": redis_process.url, "KPIMON_DELIVERY_BACKOFF_CAP": "3"}
    worker = WorkerProcess(catalog, broker, "dlv", tmp_path / "worker.log", env=env)
    try:
        worker.start()
        asyncio.run(produce(broker.bootstrap, "dl.orders", [{"ts": T0 + 1_000 + i} for i in range(3)]))
        # no more orders: the next windows close with 0 and the alert fires; its notification waits (503)
        wait_for(lambda: len(hook.requests) >= 2, 90, "notification attempts at the failing endpoint")
        assert worker.sample("kpimon_outbox_entries", channel="hook") == 1.0

        redis_process.kill(signal.SIGKILL)
        wait_for(lambda: worker.sample("kpimon_store_up") == 0.0, 30, "kpimon_store_up 0")
        time.sleep(5)  # ten ticks a second... of failures: still one log line
        assert (worker.sample("kpimon_store_errors_total") or 0) >= 5
        hook.clear_replies()  # the endpoint is back; Redis is not: nothing can be claimed yet
        before = len(hook.requests)
        time.sleep(2)
        assert len(hook.requests) == before

        redis_process.start()  # same port, same AOF
        wait_for(lambda: worker.sample("kpimon_store_up") == 1.0, 30, "kpimon_store_up 1")
        wait_for(lambda: len(hook.requests) > before, 30, "the notification after recovery")
        wait_for(lambda: worker.sample("kpimon_outbox_entries", channel="hook") == 0.0, 30, "an empty outbox")
        time.sleep(3)  # a few more ticks: no second copy
        delivered = hook.requests[before:]
        assert len(delivered) == 1 and delivered[0].json["status"] == "firing"
        assert {r.headers["Idempotency-Key"] for r in hook.requests} == {delivered[0].headers["Idempotency-Key"]}
        assert worker.proc is not None and worker.proc.poll() is None  # never crashed
    finally:
        worker.stop()
        hook.close()
    log = (tmp_path / "worker.log").read_text(errors="replace")
    assert log.count("alert store unreachable") == 1, log[-3000:]
    assert log.count("alert store reachable again") == 1, log[-3000:]
    assert "Traceback" not in log, log[-3000:]
