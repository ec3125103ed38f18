"""Storm control and threading, end to end through the service, its outbox and the real channel servers.

A stopped feed (every series of one rule at 0) is one message per channel listing the series; escalation to a
robot that already got the alert is a different message, once; a resolved e-mail replies to its firing one.
"""

from __future__ import annotations

from typing import Any

from alerting.config import KpiMeta, build_alerting_config
from alerting.memory_store import MemoryStore
from alerting.samples import Sample
from alerting.service import AlertService
from tests.alerting.conftest import Clock
from tests.fixtures.im import IMServer
from tests.fixtures.smtp_server import SMTPTestServer

REGIONS = ("east", "west", "north", "south")
STOPPED: dict[str, list[dict[str, Any]]] = {
    "paid_orders": [
        {"name": "payments_stopped", "type": "threshold", "below": 1, "severity": "critical",
         "summary": "paid orders {value} in {region}"},
        {"name": "unusual", "type": "anomaly", "severity": "warning"},
    ]
}  # fmt: skip
KPIS = {"paid_orders": KpiMeta(name="paid_orders", title={"en": "Paid orders", "zh": "支付订单数"}, unit="orders",
                               owner="payments", kind="count", min_value=0.0)}  # fmt: skip


def _ding(server: IMServer) -> dict[str, Any]:
    return {"type": "dingtalk", "url": server.url, "secret": server.secret, "timeout_seconds": 3}


def _mail(server: SMTPTestServer) -> dict[str, Any]:
    return {"type": "email", "host": server.host, "port": server.port, "username": server.username,
            "password": server.password, "from": "kpimon@shop.example", "to": ["ops@shop.example"],
            "ca_file": server.ca_file, "timeout_seconds": 3}  # fmt: skip


def _service(clock: Clock, channels: dict[str, Any], route: dict[str, Any]) -> AlertService:
    cfg = build_alerting_config(STOPPED, [route], channels, KPIS, timezone="Asia/Shanghai")
    return AlertService(cfg, MemoryStore(), clock=clock, wall_clock=clock)


async def _windows(svc: AlertService, clock: Clock, value: float, series: list[dict[str, str]]) -> None:
    clock.advance(60)
    for labels in series:
        await svc.observe(Sample("paid_orders", labels, clock.now - 60, clock.now, value))
    await svc.tick()


async def _ticks(svc: AlertService, clock: Clock, seconds: float) -> None:
    for _ in range(int(seconds // 10)):
        clock.advance(10)
        await svc.tick()


async def test_a_stopped_feed_is_one_message_per_channel(
    clock: Clock, dingtalk_server: IMServer, smtp_server: SMTPTestServer
) -> None:
    route = {"channels": ["robot", "mail"], "group_by": ["kpi"], "group_wait": 0, "language": "zh"}
    svc = _service(clock, {"robot": _ding(dingtalk_server), "mail": _mail(smtp_server)}, route)
    series = [{"region": r} for r in REGIONS] + [{}]  # every region and the total
    await _windows(svc, clock, 0.0, series)
    await _ticks(svc, clock, 30)
    [req] = dingtalk_server.requests
    assert dingtalk_server.problems == []
    title = req.json["markdown"]["title"]
    assert title == "【告警中:5】严重 · 支付订单数：低于 1 · region=east、north、south、west、合计"
    assert "{" not in req.json["markdown"]["text"]
    [mail] = smtp_server.messages
    assert mail.message["Subject"] == title


async def test_escalation_to_the_same_robot_is_a_new_message_once(clock: Clock, dingtalk_server: IMServer) -> None:
    route = {"channels": ["robot", "robot"], "group_wait": 0, "repeat_interval": "4h", "language": "en",
             "escalate": {"after": "15m", "channels": ["robot"]}}  # fmt: skip
    svc = _service(clock, {"robot": _ding(dingtalk_server)}, route)
    await _windows(svc, clock, 0.0, [{"region": "east"}])
    await _ticks(svc, clock, 16 * 60)
    texts = [r.json["markdown"]["text"] for r in dingtalk_server.requests]
    assert len(texts) == 2 and len(set(texts)) == 2, texts  # the alert, then its escalation; no copy
    assert texts[0].startswith("### [FIRING] critical · Paid orders · region=east: paid orders 0 in east")
    assert texts[1].startswith("### [ESCALATED] critical · Paid orders · region=east")
    assert "unacknowledged for 15 min" in texts[1].split("\n")[0]


async def test_resolved_mail_replies_to_its_firing_mail(clock: Clock, smtp_server: SMTPTestServer) -> None:
    route = {"channels": ["mail"], "group_wait": 0, "group_interval": "1m", "language": "en"}
    svc = _service(clock, {"mail": _mail(smtp_server)}, route)
    await _windows(svc, clock, 0.0, [{"region": "east"}])
    await _ticks(svc, clock, 20)
    await _windows(svc, clock, 30.0, [{"region": "east"}])
    await _ticks(svc, clock, 120)
    firing, resolved = (m.message for m in smtp_server.messages)
    assert firing["Subject"].startswith("[FIRING]") and firing["In-Reply-To"] is None
    assert resolved["Subject"].startswith("[RESOLVED] critical · Paid orders · region=east: back to normal (30 orders)")
    assert resolved["In-Reply-To"] == firing["Message-ID"] == resolved["References"]
    assert "UTC+8" in resolved.get_body(("plain",)).get_content()  # type: ignore[union-attr]
