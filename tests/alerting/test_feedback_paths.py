"""Feedback from the messages themselves: a notifier renders the feedback links, the message reaches the local
vendor server (or SMTP server), and the link taken from what was received is clicked on ``/act``: the verdict
lands once, audited. (The CLI and HTTP API paths are tested in test_cli.py and test_http_api.py.)"""

from __future__ import annotations

import html
import json
import re
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from alerting.action_api import add_action_routes
from alerting.actions import ACTIONS, ActionLinks
from alerting.lifecycle import AlertState
from alerting.memory_store import MemoryStore
from alerting.notifiers.email import EmailNotifier
from alerting.notifiers.registry import build_notifier
from alerting.samples import Sample
from alerting.service import AlertService
from catalog.channels import EmailSpec
from tests.alerting.conftest import Clock, make_config
from tests.alerting.notifiers._samples import alert as sample_alert
from tests.alerting.notifiers._samples import notification, spec_for
from tests.fixtures.im import IMServer
from tests.fixtures.smtp_server import SMTPTestServer

LINKS = ActionLinks("https://kpimon.example", "k" * 32)
RULES = {"orders": [{"type": "threshold", "name": "low", "below": 10}]}
Client = TestClient[web.Request, web.Application]
_URL = re.compile(r"https://kpimon\.example/act/[A-Za-z0-9_\-]+\.[0-9a-f]+")
WORDS = {"en": ("True alarm", "False alarm", "Expected deviation"), "zh": ("有效告警", "误报", "符合预期")}


@pytest.fixture
async def svc(clock: Clock) -> AlertService:
    service = AlertService(make_config(RULES, [], {}), MemoryStore(), clock=clock)
    await service.observe(Sample("orders", {"region": "east"}, clock.now - 60, clock.now, 3.0))
    return service


@pytest.fixture
async def client(svc: AlertService, clock: Clock) -> AsyncIterator[Client]:
    app = web.Application()
    add_action_routes(app, svc.store, LINKS, clock=clock)
    async with TestClient(TestServer(app)) as c:
        yield c


async def _firing(svc: AlertService, clock: Clock) -> tuple[AlertState, dict[str, str]]:
    [state] = await svc.store.list_alerts()
    assert state.starts_at is not None
    return state, LINKS.urls(state.fingerprint, state.starts_at, now=clock.now)


def _by_action(text: str, clock: Clock) -> dict[str, str]:
    """The action links found in a received message, by the action their token stands for."""
    found: dict[str, str] = {}
    for url in _URL.findall(text):
        request = LINKS.verify(url.rsplit("/", 1)[1], now=clock.now)
        assert request is not None, url
        found[request.action] = url
    return found


async def _click_twice(client: Client, svc: AlertService, url: str, data: dict[str, str] | None = None) -> None:
    path = "/act/" + url.rsplit("/", 1)[1]
    assert (await client.get(path)).status == 200
    for _ in range(2):
        assert (await client.post(path, data=data or {})).status == 200
    [entry] = await svc.store.list_audit(kind="feedback")
    assert entry["who"] == "message link" and entry["kpi"] == "orders" and entry["raised"]["value"] == 3.0


@pytest.mark.parametrize("vendor", ["slack", "dingtalk", "feishu", "teams", "wecom"])
@pytest.mark.parametrize("language", ["en", "zh"])
async def test_im_message_buttons_give_feedback(
    vendor: str, language: str, request: pytest.FixtureRequest, svc: AlertService, client: Client, clock: Clock
) -> None:
    server: IMServer = request.getfixturevalue(f"{vendor}_server")
    state, urls = await _firing(svc, clock)
    info = sample_alert(fingerprint=state.fingerprint, actions=urls)
    outcome = await build_notifier(spec_for(server, language=language)).send(notification(info, language=language))
    assert outcome.delivered and server.problems == []
    received = json.dumps(server.requests[0].json, ensure_ascii=False)
    assert all(word in received for word in WORDS[language])
    links = _by_action(received, clock)
    assert set(links) == set(ACTIONS)
    await _click_twice(client, svc, links["false_alarm"])
    [entry] = await svc.store.list_audit(kind="feedback")
    assert entry["verdict"] == "false_alarm"


async def test_email_links_give_feedback(
    smtp_server: SMTPTestServer, svc: AlertService, client: Client, clock: Clock
) -> None:
    state, urls = await _firing(svc, clock)
    spec = EmailSpec.model_validate({
        "host": smtp_server.host, "port": smtp_server.port, "starttls": True, "username": smtp_server.username,
        "password": smtp_server.password, "from": "kpimon@example.com", "to": ["ops@example.com"],
        "ca_file": smtp_server.ca_file, "timeout_seconds": 3.0,
    })  # fmt: skip
    info = replace(sample_alert(fingerprint=state.fingerprint), actions=urls)
    assert (await EmailNotifier(spec).send(notification(info))).delivered
    [mail] = smtp_server.messages
    plain, rich = mail.message.iter_parts()
    in_plain, in_html = _by_action(plain.get_content(), clock), _by_action(html.unescape(rich.get_content()), clock)
    assert set(in_plain) == set(in_html) == set(ACTIONS)
    assert "Expected deviation: https://kpimon.example/act/" in plain.get_content()
    await _click_twice(client, svc, in_html["expected"], {"reason": "promotion"})
    [entry] = await svc.store.list_audit(kind="feedback")
    assert (entry["verdict"], entry["reason"]) == ("expected", "promotion")


