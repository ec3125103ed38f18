"""The example shop end to end: simulator incident → worker → detector verdicts, alerts by email (real
SMTP with STARTTLS + AUTH) and DingTalk (signature checked), live threshold tuning over the API, and a
restarted worker that resumes its detectors warm. Real broker, Redis, SMTP and HTTP servers."""

from __future__ import annotations

import os
import signal
from typing import Any

import httpx
import pytest

from tests.fixtures.shop import ShopRun
from tests.fixtures.waiting import eventually

pytestmark = pytest.mark.slow



def test_outage_fires_critical_alert_by_email_and_dingtalk(shop_run: ShopRun) -> None:
    def east_mail() -> list[Any]:
        return [m for m in shop_run.smtp.messages if "east" in m.message["Subject"] and "严重" in m.message["Subject"]]

    mails = eventually(east_mail, 120, "critical e-mail for region east")
    msg = mails[0].message
    assert "告警中" in msg["Subject"]                                 # firing, in the route's language
    body = msg.get_body(preferencelist=("plain",)).get_content()
    assert "east" in body and "支付订单数" in body
    assert msg.get_body(preferencelist=("html",)) is not None         # HTML + plain text
    assert shop_run.smtp.auth_attempts and all(ok for _, ok in shop_run.smtp.auth_attempts)

    def east_ding() -> list[Any]:
        return [r for r in shop_run.dingtalk.requests if "east" in str(r.json)]

    ding = eventually(east_ding, 60, "DingTalk message for region east")
    assert shop_run.dingtalk.problems == []                           # signature, timestamp and payload valid
    assert ding[0].json["msgtype"] == "markdown"
    assert "sign" in ding[0].query and "timestamp" in ding[0].query


def test_alert_is_annotated_on_the_kpi_panel_in_grafana(shop_run: ShopRun) -> None:
    """Grafana cannot run here: FakeGrafana follows its documented annotations API (POST /api/annotations)."""
    def east_annotation() -> list[dict[str, Any]]:
        return [a for a in shop_run.grafana.annotations
                if {"kpi:paid_orders", "alert:firing", "region:east"} <= set(a["tags"])]

    ann = eventually(east_annotation, 120, "Grafana annotation of the east alert")[0]
    assert ann["dashboardUID"] == "kpimon-paid_orders" and ann["panelId"] == 1
    assert all(r.headers.get("authorization") == f"Bearer {shop_run.grafana.token}" for r in shop_run.grafana.requests)


def test_threshold_change_through_the_api_applies_to_the_running_worker(shop_run: ShopRun) -> None:
    url = f"{shop_run.api_url}/api/thresholds/paid_orders/payments_stopped"
    assert httpx.put(url, json={"below": 1e9}, timeout=5).status_code == 401
    assert httpx.put(url, json={"below": 1e9}, headers={"Authorization": "Bearer wrong-token"}, timeout=5).status_code == 401
    auth = {"Authorization": f"Bearer {shop_run.api_token}"}    # alice's token (the fixture's token file)
    assert httpx.put(url, json={"below": "lots"}, headers=auth, timeout=5).status_code == 400
    try:
        resp = httpx.put(url, json={"below": 1e9}, headers=auth, timeout=5)
        assert resp.status_code == 200, resp.text

        def total_alert() -> list[dict[str, Any]]:
            alerts = httpx.get(f"{shop_run.api_url}/api/alerts", headers=auth, timeout=5).json()
            items = alerts["alerts"] if isinstance(alerts, dict) else alerts
            return [a for a in items if a["rule"] == "payments_stopped" and not a["series"]]

        # every series is now below the threshold: the total series alerts without a restart
        eventually(total_alert, 30, "alert on the total series after the threshold change")
        history = httpx.get(f"{shop_run.api_url}/api/thresholds/history", headers=auth, timeout=5).json()
        entries = history["history"] if isinstance(history, dict) else history
        assert any(e["who"] == "alice" and e["kpi"] == "paid_orders" for e in entries)
    finally:
        httpx.put(url, json={"below": None}, headers=auth, timeout=5)


def test_restarted_worker_resumes_detectors_warm(shop_run: ShopRun) -> None:
    w = shop_run.worker
    eventually(lambda: "kpi_visits_expected{" in w.metrics(), 120, "visits band before the restart")
    # Pause the simulator so the restarted worker has no backlog to race through: windows then close
    # one per second (idle watermark) and we can count how many it needed before exporting a band.
    os.kill(shop_run.simulator.pid, signal.SIGSTOP)
    try:
        w.kill9()
        w.start()
        # A cold detector needs 30 windows before it exports a band; a restored one exports after the first. The
        # idle watermark catches up with the downtime at once (× the speedup), so count restored detectors too.
        eventually(lambda: "kpi_visits_expected{" in w.metrics(), 60, "visits band after the restart")
        published = w.sample("kpimon_values_published_total", kpi="visits") or 0
        series = w.sample("kpimon_series", kpi="visits") or 1
        assert (w.sample("kpimon_detectors_restored_total", kpi="visits") or 0) >= series, w.metrics()
        assert published / series < 30, (published, series)       # warm: fewer windows than a cold warm-up
    finally:
        os.kill(shop_run.simulator.pid, signal.SIGCONT)
