"""Real ``kpimon worker`` processes at --speedup 60, short real waits: a Redis crash while a notification waits
in the outbox (one log line each way, ``kpimon_store_up``/``kpimon_store_errors_total`` on /metrics, delivered
exactly once after both recover); an endpoint outage (webhook 503, SMTP refused then 451) with the worker killed
during it (every notification once, firing before resolved)."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.im import IMServer, Reply
from tests.fixtures.kafka_io import produce
from tests.fixtures.redis_server import RedisProcess
from tests.fixtures.smtp_server import SMTPTestServer
from tests.fixtures.waiting import eventually
from tests.fixtures.worker import WorkerProcess

pytestmark = pytest.mark.slow

T0 = 1_767_571_200_000  # 2026-01-05T00:00:00Z in ms
CATALOG = """
version: 1
defaults:
  window: {type: tumbling, size: 1m, grace: 10s}
sources:
  orders: {topic: dl.orders, partitions: 1, since: 2026-01-01}   # the events are dated January 2026
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


POLL_S = 0.25      # the worker ticks ten times a second


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
        eventually(lambda: len(hook.requests) >= 2, 90, "notification attempts at the failing endpoint", poll_s=POLL_S)
        assert worker.sample("kpimon_outbox_entries", channel="hook") == 1.0

        redis_process.kill(signal.SIGKILL)
        eventually(lambda: worker.sample("kpimon_store_up") == 0.0, 30, "kpimon_store_up 0", poll_s=POLL_S)
        time.sleep(5)  # ten ticks a second... of failures: still one log line
        assert (worker.sample("kpimon_store_errors_total") or 0) >= 5
        hook.clear_replies()  # the endpoint is back; Redis is not: nothing can be claimed yet
        before = len(hook.requests)
        time.sleep(2)
        assert len(hook.requests) == before

        redis_process.start()  # same port, same AOF
        eventually(lambda: worker.sample("kpimon_store_up") == 1.0, 30, "kpimon_store_up 1", poll_s=POLL_S)
        eventually(lambda: len(hook.requests) > before, 30, "the notification after recovery", poll_s=POLL_S)
        eventually(lambda: worker.sample("kpimon_outbox_entries", channel="hook") == 0.0, 30, "an empty outbox", poll_s=POLL_S)
        time.sleep(3)  # a few more ticks: no second copy
        delivered = hook.requests[before:]
        assert len(delivered) == 1 and delivered[0].json["status"] == "firing"
        assert {r.headers["Idempotency-Key"] for r in hook.requests} == {delivered[0].headers["Idempotency-Key"]}
        assert worker.exit_code() is None  # never crashed
    finally:
        worker.stop()
        hook.close()
    log = (tmp_path / "worker.log").read_text(errors="replace")
    assert log.count("alert store unreachable") == 1, log[-3000:]
    assert log.count("alert store reachable again") == 1, log[-3000:]
    assert "Traceback" not in log, log[-3000:]


MAIL_CATALOG = CATALOG.replace(
    "channels:\n",
    "channels:\n  mail:\n    type: email\n    host: 127.0.0.1\n    port: ${SMTP_PORT}\n    starttls: true\n"
    "    username: ${SMTP_USER}\n    password: ${SMTP_PASSWORD}\n    ca_file: ${SMTP_CA_FILE}\n"
    "    from: kpimon@example.com\n    to: [ops@example.com]\n",
).replace("channels: [hook]", "channels: [hook, mail]")


def test_endpoint_outage_with_a_worker_kill_every_notification_once_in_order(
    broker: Any, redis_process: RedisProcess, smtp_server: SMTPTestServer, tmp_path: Path
) -> None:
    hook = IMServer("webhook").start()
    hook.reply(*[Reply(503, text="maintenance")] * 10_000)  # webhook answers 503; SMTP refuses connections
    smtp_server.stop()
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(MAIL_CATALOG)
    env = {"HOOK_URL": hook.url, "KPIMON_REDIS_URL": redis_process.url, "KPIMON_DELIVERY_BACKOFF_CAP": "2",
           "SMTP_PORT": str(smtp_server.port), "SMTP_USER": smtp_server.username,
           "SMTP_PASSWORD": smtp_server.password, "SMTP_CA_FILE": smtp_server.ca_file}  # fmt: skip
    worker = WorkerProcess(catalog, broker, "dlk", tmp_path / "worker.log", env=env)
    try:
        worker.start()
        asyncio.run(produce(broker.bootstrap, "dl.orders", [{"ts": T0 + 1_000 + i} for i in range(3)]))
        eventually(lambda: len(hook.requests) >= 1, 90, "the firing notification's first attempt", poll_s=POLL_S)
        # orders again, in the worker's current window: the alert resolves, then fires again on the next empty one
        mark = worker.sample("kpimon_watermark_timestamp_seconds", source="orders") or T0 / 1000
        late = [{"ts": int((mark + 20 * k) * 1000)} for k in range(1, 6)]  # some land in an open window
        asyncio.run(produce(broker.bootstrap, "dl.orders", late))
        eventually(lambda: (worker.sample("kpimon_outbox_entries", channel="mail") or 0) >= 3, 60, "3 waiting mails", poll_s=POLL_S)
        smtp_server.failing = "451 4.3.0 Try again later"
        smtp_server.start()  # back, answering 451
        worker.kill9()  # killed during the outage
        worker.start()
        time.sleep(3)
        smtp_server.failing = None
        before = len(hook.requests)
        hook.clear_replies()
        eventually(lambda: worker.sample("kpimon_outbox_entries", channel="mail") == 0.0
                 and worker.sample("kpimon_outbox_entries", channel="hook") == 0.0, 90, "an empty outbox", poll_s=POLL_S)
        time.sleep(2)  # a few more ticks: no second copy
    finally:
        worker.stop()
        hook.close()
    ok = hook.requests[before:]  # every answer since is a success
    assert [r.json["status"] for r in ok][:3] == ["firing", "resolved", "firing"]
    keys = [r.headers["Idempotency-Key"] for r in ok]
    assert len(set(keys)) == len(keys)
    subjects = [m.message["Subject"].split("]")[0].lstrip("[") for m in smtp_server.messages]
    assert subjects[:3] == ["FIRING", "RESOLVED", "FIRING"]
    ids = [m.message["Message-ID"] for m in smtp_server.messages]
    assert len(set(ids)) == len(ids) >= 3
