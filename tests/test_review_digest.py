"""``kpimon review`` and the scheduled digest against real Redis, a real SMTP server and a DingTalk robot
fixture: the known set of incidents, acks and feedback of tests/alerting/test_review.py, moved to a week that
starts on a Monday in the catalog's time zone, gives the same hand-computed figures everywhere."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
from collections.abc import AsyncIterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from alerting.digest_charts import charts
from alerting.digest_job import DigestScheduler, DigestSender, gather, send_due
from alerting.notifiers.dingtalk import DingTalkNotifier
from alerting.notifiers.email import EmailNotifier
from alerting.redis_store import RedisStore
from catalog import load_catalog
from catalog.channels import DingTalkSpec, EmailSpec
from catalog.model import Catalog
from kpimon.cli import main
from tests.alerting.test_review import AUDIT, INCIDENTS, RULES, S
from tests.fixtures.im import IMServer
from tests.fixtures.smtp_server import SMTPTestServer

W = 1767542400.0  # Monday 2026-01-05 00:00 Asia/Shanghai
SHIFT = W - S
DAY = 86400.0


def catalog_text(smtp: SMTPTestServer, ding: IMServer) -> str:
    return f"""\
version: 1
defaults: {{language: en, timezone: Asia/Shanghai}}
sources:
  orders: {{topic: events.orders}}
kpis:
  - {{name: orders, title: {{en: Orders, zh: 订单数}}, owner: sales, source: orders, measure: count,
      dimensions: [region], target: {{value: 1000, per: day}}}}
  - {{name: gmv, owner: sales, source: orders, measure: sum(amount)}}
  - {{name: refunds, owner: service, source: orders, measure: count}}
channels:
  mail: {{type: email, host: {smtp.host}, port: {smtp.port}, username: {smtp.username}, password: {smtp.password},
          ca_file: {smtp.ca_file}, from: kpimon@example.com, to: [sales@example.com]}}
  ding: {{type: dingtalk, url: "{ding.url}", secret: {ding.secret}}}
teams:
  sales:
    budget: 3/week
    digest: {{every: weekly, channels: [mail, ding], language: zh}}
"""


def _moved(value: float | None) -> float | None:
    return None if value is None else value + SHIFT


async def seed(store: RedisStore) -> None:
    """The known set: incidents (acks through the store's ack path), feedback and changes, one week later."""
    for inc in INCIDENTS:
        moved = dataclasses.replace(inc, starts_at=inc.starts_at + SHIFT, resolved_at=_moved(inc.resolved_at),
                                    acked_at=None, acked_by="")
        await store.record_incident(moved)
        if inc.acked_at is not None:
            await store.ack_incident(inc.fingerprint, moved.starts_at, inc.acked_by, inc.acked_at + SHIFT)
    for entry in reversed(AUDIT):  # the log is newest first
        moved_entry: dict[str, Any] = dict(entry)
        for key in ("incident", "at"):
            if isinstance(moved_entry.get(key), float):
                moved_entry[key] += SHIFT
        await store.append_audit(moved_entry)
    await store.publish_rules({k: {**v, "name": k[1]} for k, v in RULES.items()})
    for h in range(7 * 24):  # what the service keeps of orders' total series: 40 an hour, band 30-50
        await store.record_point("orders", W + 3600 * h, 40.0, 30.0, 50.0, keep_s=8 * DAY)
    await store.record_point("orders", W - 3600, 999.0, None, None, keep_s=8 * DAY)  # before the period


@pytest.fixture
async def store(redis_server: str, redis_prefix: str) -> AsyncIterator[RedisStore]:
    s = RedisStore.from_url(redis_server, prefix=redis_prefix)
    await seed(s)
    yield s
    keys = [k async for k in s.redis.scan_iter(match=redis_prefix + "*")]
    if keys:
        await s.redis.delete(*keys)
    await s.aclose()


@pytest.fixture
def catalog_file(tmp_path: Path, smtp_server: SMTPTestServer, dingtalk_server: IMServer) -> Path:
    path = tmp_path / "catalog.yaml"
    path.write_text(catalog_text(smtp_server, dingtalk_server), encoding="utf-8")
    return path


def cli(url: str, prefix: str, *args: str) -> Any:
    env = {"KPIMON_REDIS_URL": url, "KPIMON_REDIS_PREFIX": prefix}
    return CliRunner().invoke(main, ["review", *args], env=env, catch_exceptions=False)


async def test_review_command_json_and_table(store: RedisStore, catalog_file: Path, redis_server: str,
                                             redis_prefix: str) -> None:
    args = ["--team", "sales", "--since", "2026-01-05T00:00:00+08:00", "--until", "2026-01-12T00:00:00+08:00",
            "-c", str(catalog_file)]
    result = await asyncio.to_thread(cli, redis_server, redis_prefix, *args, "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert (out["alerts"], out["per_week"], out["precision"]) == (6, 6.0, 0.5)
    assert out["budget"] == {"budget": "3/week", "allowed": 3.0, "alerts": 6, "over": True, "excess": 3.0}
    assert (out["ack"]["median_s"], out["ack"]["p90_s"], out["resolve"]["median_s"], out["resolve"]["p90_s"]) == (
        300.0, 900.0, 1200.0, 3600.0)
    assert out["feedback"] == {"true_alarm": 2, "false_alarm": 2, "expected": 1}
    assert [(r["kpi"], r["rule"], r["alerts"], r["false_alarms"]) for r in out["rules"]] == [
        ("orders", "low", 4, 2), ("gmv", "odd", 2, 0)]
    assert [p["change"] for p in out["proposals"]] == [{"below": 62.0}]
    assert [c["new"] for c in out["changes"]] == [80]
    # 168 windows of 40 against 1000 a day for 7 days; gmv has no target, refunds is another team's
    assert out["attainment"] == [{"kpi": "orders", "actual": 6720.0, "target": 7000.0, "per": "period", "ratio": 0.96}]
    table = await asyncio.to_thread(cli, redis_server, redis_prefix, *args)
    assert "sales 复盘" in table.output and re.search("准确率 +50%", table.output) and "below = 62.0" in table.output
    en = await asyncio.to_thread(cli, redis_server, redis_prefix, *args, "--lang", "en")
    assert "Precision            50%" in en.output
    bad = await asyncio.to_thread(cli, redis_server, redis_prefix, "--team", "nobody", "-c", str(catalog_file))
    assert bad.exit_code == 2 and "owns no KPI" in bad.output


def _senders(cat: Catalog) -> dict[str, DigestSender]:
    mail, ding = cat.channels["mail"], cat.channels["ding"]
    return {"mail": EmailNotifier(EmailSpec.model_validate(mail)), "ding": DingTalkNotifier(DingTalkSpec.model_validate(ding))}


def _html(msg: EmailMessage) -> tuple[str, list[tuple[str, bytes]]]:
    html, images = "", list[tuple[str, bytes]]()
    for part in msg.walk():
        if part.get_content_type() == "text/html":
            html = part.get_content()
        elif part.get_content_type() == "image/png":
            png = part.get_payload(decode=True)
            assert isinstance(png, bytes)
            images.append((str(part["Content-ID"]).strip("<>"), png))
    return html, images


async def test_weekly_digest_by_mail_and_dingtalk_once(store: RedisStore, catalog_file: Path,
                                                       smtp_server: SMTPTestServer, dingtalk_server: IMServer,
                                                       redis_server: str, redis_prefix: str) -> None:
    cat = load_catalog(catalog_file)
    now = W + 7 * DAY + 60  # Monday after the week, 00:01
    smtp_server.fail_next("DATA", "451 4.3.0 Try again later")
    first = await send_due(store, cat, _senders(cat), now=now, wall_now=now, charts=charts(store, cat))
    assert [(r.channel, r.status) for r in first] == [("mail", "failed"), ("ding", "sent")]
    assert (first[0].since, first[0].until) == (W, W + 7 * DAY)
    # a "restart": a new store and senders; the mail lease (5 min) must expire before it is tried again
    again = RedisStore.from_url(redis_server, prefix=redis_prefix)
    try:
        busy = await send_due(again, cat, _senders(cat), now=now, wall_now=now)
        assert [(r.channel, r.status) for r in busy] == [("ding", "already"), ("mail", "busy")]
        await again.redis.delete(redis_prefix + f"marker:digest|sales|{W:.0f}|mail")  # the lease's TTL ran out
        second = await send_due(again, cat, _senders(cat), now=now + 600, wall_now=now + 600, charts=charts(again, cat))
        assert [(r.channel, r.status) for r in second] == [("ding", "already"), ("mail", "sent")]
        third = await send_due(again, cat, _senders(cat), now=now + 900, wall_now=now + 900)
        assert {r.status for r in third} == {"already"}
    finally:
        await again.aclose()

    [mail] = smtp_server.messages
    msg = mail.message
    assert msg["Subject"].startswith("sales 复盘：2026-01-05 00:00 UTC+8") and mail.rcpt_tos == ["sales@example.com"]
    html, images = _html(msg)
    assert "<td>准确率</td><td>50%</td>" in html and "<td>orders/low</td><td>4</td><td>1 / 2 / 0</td><td>33%</td>" in html
    assert "<td>订单数</td><td>6,720</td><td>7,000</td><td>96%</td>" in html
    assert "中位数 5 分钟，p90 15 分钟（6 条中 5 条）" in html and "<td>below = 62.0</td>" in html
    assert sorted(cid for cid, _ in images) == ["chart-gmv", "chart-orders"]  # the team's KPIs with alerts
    assert all(f'src="cid:{cid}"' in html and png.startswith(b"\x89PNG") for cid, png in images)
    assert "订单数：数值与预期区间；红色：告警" in html

    assert dingtalk_server.problems == [] and len(dingtalk_server.requests) == 1
    body = dingtalk_server.requests[0].json
    assert body["msgtype"] == "markdown" and body["markdown"]["title"].startswith("sales 复盘")
    text = body["markdown"]["text"]
    assert "- **准确率**: 50%" in text and "- **预算**: 3/week (3): 超出预算 3" in text
    assert "规则: orders/low; 告警: 4; 真 / 误 / 预期内: 1 / 2 / 0; 准确率: 33%" in text


async def test_send_command_reports_each_channel(store: RedisStore, catalog_file: Path, redis_server: str,
                                                 redis_prefix: str, smtp_server: SMTPTestServer,
                                                 dingtalk_server: IMServer) -> None:
    # `kpimon review --send` at the real time: the last complete week has none of the known alerts, but the
    # digest still goes (an empty week is worth saying), once
    result = await asyncio.to_thread(cli, redis_server, redis_prefix, "--send", "-c", str(catalog_file))
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == ["sales mail: sent (sent to 1 recipient(s))", "sales ding: sent (HTTP 200)"]
    again = await asyncio.to_thread(cli, redis_server, redis_prefix, "--send", "-c", str(catalog_file))
    assert again.output.splitlines() == ["sales mail: already", "sales ding: already"]
    assert len(smtp_server.messages) == 1 and len(dingtalk_server.requests) == 1


async def test_the_worker_sends_the_digest_when_due_once(store: RedisStore, catalog_file: Path,
                                                         smtp_server: SMTPTestServer, dingtalk_server: IMServer) -> None:
    from alerting.service import AlertService
    from kpimon.wiring import AlertShell, alerting_config

    cat = load_catalog(catalog_file)
    wall = [1000.0]
    service = AlertService(alerting_config(cat), store, clock=lambda: W + 7 * DAY + 60, wall_clock=lambda: wall[0])
    senders = {n: x for n, x in service.notifiers.items() if isinstance(x, DigestSender)}
    assert sorted(senders) == ["ding", "mail"]
    shell = AlertShell(service, digests=DigestScheduler(store, cat, senders, clock=service.clock,
                                                        wall_clock=lambda: wall[0], charts=charts(store, cat)))
    try:
        await shell.tick()
        assert shell.digest_task is not None
        await shell.digest_task
        assert len(smtp_server.messages) == 1 and len(dingtalk_server.requests) == 1
        first = shell.digest_task
        wall[0] += 30
        await shell.tick()
        assert shell.digest_task is first  # not due again within a minute
        wall[0] += 31
        await shell.tick()
        assert shell.digest_task is not first
        await shell.digest_task
        assert len(smtp_server.messages) == 1 and len(dingtalk_server.requests) == 1  # sent once per period
        assert "<td>准确率</td><td>50%</td>" in _html(smtp_server.messages[0].message)[0]
    finally:
        await shell.aclose()


async def test_the_proposals_carry_their_backtest(store: RedisStore, catalog_file: Path) -> None:
    """gather() asks the backtest seam once per proposal with the overrides in effect and the period, and attaches
    what it answers; a backtest that fails leaves that proposal without one and the review goes on. (The seam here
    is a stand-in that records its calls; the real one reads kpi.values: tests/streams/test_dry_run.py.)"""
    cat = load_catalog(catalog_file)
    asked: list[tuple[str, str, dict[str, Any], dict[Any, Any], float, float]] = []
    figures = {"days": 7.0, "current": {"fired": 4, "alert_minutes": 60.0, "series": 2},
               "proposed": {"fired": 2, "alert_minutes": 20.0, "series": 1}}

    async def backtest(p: Any, overrides: Any, since: float, until: float) -> dict[str, Any]:
        asked.append((p.kpi, p.rule, dict(p.change), dict(overrides), since, until))
        return figures

    r = await gather(store, cat, "sales", W, W + 7 * DAY, backtest=backtest)
    assert asked == [("orders", "low", {"below": 62.0}, await store.get_overrides(), W, W + 7 * DAY)]
    assert [p.backtest for p in r.proposals] == [figures]

    async def broken(p: Any, overrides: Any, since: float, until: float) -> dict[str, Any]:
        raise ConnectionError("no broker")

    r = await gather(store, cat, "sales", W, W + 7 * DAY, backtest=broken)
    assert [p.backtest for p in r.proposals] == [None] and [p.change for p in r.proposals] == [{"below": 62.0}]


async def test_auto_tune_applies_a_paying_proposal_once_audited_and_only_where_the_catalog_says(
        store: RedisStore, catalog_file: Path) -> None:
    """sales runs over budget; with `auto_tune: true` the threshold proposal (below 62) whose backtest fires fewer
    alerts is applied once per period, audited as `kpimon auto-tune` with its figures. Without `auto_tune`, or when
    the backtest shows no gain, or without a backtest at all, nothing changes. (The backtest is a stand-in here; the
    real one reads kpi.values: tests/streams/test_dry_run.py.)"""
    from alerting.digest_job import AUTO_WHO, auto_tune_due
    from catalog import parse_catalog

    text = catalog_file.read_text(encoding="utf-8")
    plain = load_catalog(catalog_file)
    tuning = parse_catalog(text.replace("    budget: 3/week\n", "    budget: 3/week\n    auto_tune: true\n"))
    now = W + 7 * DAY + 60
    gain = {"days": 7.0, "current": {"fired": 4, "alert_minutes": 60.0, "series": 2},
            "proposed": {"fired": 1, "alert_minutes": 10.0, "series": 1}}
    none = {**gain, "proposed": gain["current"]}

    def answering(figures: dict[str, Any]) -> Any:
        async def backtest(p: Any, overrides: Any, since: float, until: float) -> dict[str, Any]:
            return figures
        return backtest

    assert await auto_tune_due(store, plain, now=now, wall_now=now, backtest=answering(gain)) == []
    assert await auto_tune_due(store, tuning, now=now, wall_now=now, backtest=None) == []
    before = await store.get_overrides()
    flat = await auto_tune_due(store, tuning, now=now, wall_now=now, backtest=answering(none))
    assert flat == [] and await store.get_overrides() == before
    await store.redis.delete(store.p + f"marker:autotune|sales|{W:.0f}")   # that period again, with a gain
    [tuned] = await auto_tune_due(store, tuning, now=now, wall_now=now, backtest=answering(gain))
    assert (tuned.kpi, tuned.rule, dict(tuned.change)) == ("orders", "low", {"below": 62.0})
    assert (await store.get_overrides())[("orders", "low")]["below"] == 62.0
    [entry] = [e for e in await store.list_audit(kind="threshold") if e.get("who") == AUTO_WHO]
    assert entry["new"] == 62.0 and entry["backtest"]["proposed"]["fired"] == 1 and "budget" in entry["comment"]
    again = await auto_tune_due(store, tuning, now=now + 600, wall_now=now + 600, backtest=answering(gain))
    assert again == []                                             # once per period
