"""What `kpimon demo` shows and keeps: every delivery in alerts.jsonl (real SMTP and HTTP receivers), and a live
view whose alerts stay visible on an 80x24 terminal."""

from __future__ import annotations

import io
import json
import smtplib
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
from rich.cells import cell_len
from rich.console import Console

from kpimon.demo import WATCH, screen
from kpimon.demo_sinks import Delivered, Sinks
from kpimon.embedded import free_port


def test_every_delivery_is_a_json_line_with_subject_and_body(tmp_path: Path) -> None:
    log = tmp_path / "alerts.jsonl"
    sinks = Sinks(free_port(), free_port(), log_path=log).start()
    try:
        mail = EmailMessage()
        mail["Subject"], mail["From"], mail["To"] = "【告警中】严重 · 数据源 payments: 未收到事件", "k@x", "o@x"
        mail.set_content("自 10:40 起未收到任何事件\n受影响指标：支付订单数\n")
        with smtplib.SMTP("127.0.0.1", sinks.smtp_port, timeout=10) as smtp:
            smtp.send_message(mail)
        md: dict[str, Any] = {"msgtype": "markdown", "markdown": {"title": "[RESOLVED] critical · Data source payments",
                                                  "text": "### [RESOLVED] critical\n\n> Data source: payments"}}
        httpx.post(f"http://127.0.0.1:{sinks.http_port}/robot/send?access_token=demo", json=md, timeout=10)
    finally:
        sinks.stop()
    first, second = (json.loads(line) for line in log.read_text(encoding="utf-8").splitlines())
    assert isinstance(first, dict) and isinstance(second, dict)
    assert (first["channel"], first["state"]) == ("email", "firing")
    assert first["subject"].startswith("【告警中】严重 · 数据源 payments") and "受影响指标：支付订单数" in first["body"]
    assert (second["channel"], second["state"], second["body"]) == ("dingtalk", "resolved", md["markdown"]["text"])
    assert first["time"].endswith("+00:00")


def test_the_alerts_stay_visible_on_an_80x24_terminal() -> None:
    sinks = Sinks(0, 0)
    for k in range(8):
        sinks.received.append(Delivered("email", f"【告警中】严重 · 支付订单数: alert number {k} " + "x" * 120))
    ws = [1_767_571_200.0 + 60 * k for k in range(8)]
    rows = {kpi: [(w, {"value": 1234.5}) for w in ws] for kpi in WATCH}
    regions: dict[float, dict[str, float | None]] = {
        w: {"east": 0.0, "north": 10.0, "south": 12.0, "west": 5.0} for w in ws
    }
    out = io.StringIO()
    console = Console(file=out, width=80, height=24, color_system=None, legacy_windows=False)
    console.print(screen({k: k for k in WATCH}, rows, regions, sinks, console.size.height), crop=True)
    lines = out.getvalue().splitlines()
    assert len(lines) <= 24 and max(cell_len(line) for line in lines) <= 80, "\n".join(lines)
    shown = [line for line in lines if "alert number" in line]
    assert [s.split("alert number ")[1][0] for s in shown] == ["2", "3", "4", "5", "6", "7"]   # the newest six
    assert any("paid orders · east" in line for line in lines)
