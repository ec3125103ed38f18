"""A real ``kpimon worker`` (speedup 60) on the real broker, Redis, SMTP and IM servers: the producer of a source
stops → exactly one ``source_silent`` notification per channel and none of its KPI's zero-window alerts; a worker
restart during the silence sends nothing; events resume → one resolved notice per channel, still no zero alert."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from tests.fixtures.im import IMServer
from tests.fixtures.redis_server import RedisProcess
from tests.fixtures.smtp_server import SMTPTestServer, smtp_cert, smtp_server, smtp_server_factory
from tests.fixtures.waiting import eventually
from tests.fixtures.worker import WorkerProcess

pytestmark = pytest.mark.slow
__all__ = ["smtp_cert", "smtp_server", "smtp_server_factory"]  # fixtures used here

T0 = 1_767_571_200_000  # 2026-01-05T00:00:00Z in ms
SPEEDUP = 60
CATALOG = """
version: 1
defaults:
  window: {type: tumbling, size: 1m, grace: 10s}
sources:
  orders: {topic: ss.orders, partitions: 1, since: 2026-01-01, max_silence: 2m}
kpis:
  - name: ss_orders
    title: {en: Orders, zh: 订单数}
    owner: shop
    source: orders
    measure: count
    alerts:
      - {name: stopped, type: threshold, below: 1, for: 0s, severity: critical, summary: "orders {value}"}
      - {name: none, type: absence, for: 0s, zero_is_absent: true, severity: critical}
channels:
  hook: {type: webhook, url: "${HOOK_URL}", timeout_seconds: 5}
  robot: {type: dingtalk, url: "${DING_URL}", secret: "${DING_SECRET}", language: zh}
  mail:
    type: email
    host: 127.0.0.1
    port: ${SMTP_PORT}
    starttls: true
    username: ${SMTP_USER}
    password: ${SMTP_PASSWORD}
    ca_file: ${SMTP_CA_FILE}
    from: kpimon@example.com
    to: [ops@example.com]
routes:
  - {match: {}, channels: [hook, mail], group_by: [kpi], group_wait: 0s, group_interval: 1m,
     repeat_interval: 1d, continue: true}
  - {match: {}, channels: [robot], language: zh, group_by: [kpi], group_wait: 0s, group_interval: 1m,
     repeat_interval: 1d}
"""


class Feed:
    """A producer sending 2 events every 0.25 s, dated on the simulated clock (T0 + wall elapsed x 60)."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.bootstrap, self.topic, self.w0 = bootstrap, topic, time.time()
        self._run = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._run.set()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._loop()), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._run.clear()
        if self._thread is not None:
            self._thread.join(10)

    async def _loop(self) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, linger_ms=5)
        await producer.start()
        try:
            while self._run.is_set():
                ts = int(T0 + (time.time() - self.w0) * SPEEDUP * 1000)
                await producer.send_and_wait(self.topic, orjson.dumps([{"ts": ts}, {"ts": ts + 1}]))
                await asyncio.sleep(0.25)
        finally:
            await producer.stop()


def wait_for(check: Any, timeout_s: float, what: str) -> Any:
    return eventually(check, timeout_s, what, poll_s=0.25)


def test_a_stopped_feed_is_one_source_silent_page_per_channel_and_one_resolved(
    broker: Any, redis_process: RedisProcess, smtp_server: SMTPTestServer, tmp_path: Path
) -> None:
    hook, robot = IMServer("webhook").start(), IMServer("dingtalk", secret="SEC" + "0" * 20).start()
    beat = IMServer("webhook").start()            # the heartbeat's external checker (any HTTP endpoint)
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(CATALOG)
    env = {"HOOK_URL": hook.url, "DING_URL": robot.url, "DING_SECRET": robot.secret or "",
           "KPIMON_REDIS_URL": redis_process.url, "SMTP_PORT": str(smtp_server.port),
           "SMTP_USER": smtp_server.username, "SMTP_PASSWORD": smtp_server.password,
           "SMTP_CA_FILE": smtp_server.ca_file, "KPIMON_HEARTBEAT_URL": beat.url,
           "KPIMON_HEARTBEAT_INTERVAL": "1"}  # fmt: skip
    worker = WorkerProcess(catalog, broker, "ssl", tmp_path / "worker.log", env=env)
    feed = Feed(broker.bootstrap, "ss.orders")

    def sent() -> tuple[int, int, int]:
        return len(hook.requests), len(robot.requests), len(smtp_server.messages)

    try:
        worker.start()
        feed.start()
        wait_for(lambda: (worker.sample("kpimon_window_closes_total", kpi="ss_orders") or 0) >= 3, 60,
                 "three windows closed on live data")
        assert sent() == (0, 0, 0)
        feed.stop()                                    # the producer stops: windows close empty, on the clock
        wait_for(lambda: sent() == (1, 1, 1), 30, "one source_silent notification per channel")
        assert worker.sample("kpimon_source_silent", source="orders") == 1.0
        worker.stop()                                  # a restart during the silence ...
        worker.start()
        wait_for(lambda: worker.sample("kpimon_source_silent", source="orders") == 1.0
                 and (worker.sample("kpimon_window_closes_total", kpi="ss_orders") or 0) >= 2, 30,
                 "the restarted worker: still silent, empty windows closed")
        time.sleep(1)
        assert sent() == (1, 1, 1), str([r.json for r in hook.requests])  # ... sends nothing
        feed.start()                                   # events resume
        wait_for(lambda: sent() == (2, 2, 2), 30, "one resolved notice per channel")
        closed = worker.sample("kpimon_window_closes_total", kpi="ss_orders") or 0
        wait_for(lambda: (worker.sample("kpimon_window_closes_total", kpi="ss_orders") or 0) >= closed + 2, 30,
                 "fresh windows")
        time.sleep(1)
        assert sent() == (2, 2, 2)
    finally:
        feed.stop()
        worker.stop()
        hook.close()
        robot.close()
        beat.close()
    assert [(r.json["status"], r.json["alerts"][0]["labels"]["alertname"]) for r in hook.requests] == [
        ("firing", "source_silent"), ("resolved", "source_silent")]
    assert robot.problems == []
    pings = [r.json for r in beat.requests]
    assert len(pings) >= 10 and {p["app_id"] for p in pings} == {"ssl"}    # a ping a second from both runs
    firing_md = robot.requests[0].json["markdown"]["text"]
    assert "数据源 orders" in firing_md and "订单数" in firing_md and "未收到任何事件" in firing_md
    subjects = [str(m.message["Subject"]) for m in smtp_server.messages]
    assert subjects[0].startswith("[FIRING] critical · Data source orders"), subjects
    assert subjects[1].startswith("[RESOLVED]"), subjects
    log = (tmp_path / "worker.log").read_text(errors="replace")
    assert log.count("is silent: no events since") == 1, log[-3000:]
    assert "Traceback" not in log, log[-3000:]
