"""Feedback from the messages themselves: a notifier renders the feedback links, the message reaches the local
vendor server (or SMTP server), and the link taken from what was received is clicked on ``/act``: the verdict
lands once, audited. (The CLI and HTTP API paths are tested in test_cli.py and test_http_api.py.)"""

from __future__ import annotations

import html
import json
import re
from dataclasses import replace

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from alerting.actions import ACTIONS
from alerting.lifecycle import AlertState
from alerting.notifiers.email import EmailNotifier
from alerting.notifiers.registry import build_notifier
from alerting.service import AlertService
from catalog.channels import EmailSpec
from tests.alerting.conftest import LINKS, Clock
from tests.alerting.notifiers._samples import alert as sample_alert
from tests.alerting.notifiers._samples import notification, spec_for
from tests.fixtures.im import IMServer
from tests.fixtures.smtp_server import SMTPTestServer

Client = TestClient[web.Request, web.Application]
_URL = re.compile(r"https://kpimon\.example/act/[A-Za-z0-9_\-]+\.[0-9a-f]+")
WORDS = {"en": ("True alarm", "False alarm", "Expected deviation"), "zh": ("有效告警", "误报", "符合预期")}


async def _firing(link_svc: AlertService, clock: Clock) -> tuple[AlertState, dict[str, str]]:
    [state] = await link_svc.store.list_alerts()
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


async def _click_twice(link_client: Client, link_svc: AlertService, url: str, data: dict[str, str] | None = None) -> None:
    path = "/act/" + url.rsplit("/", 1)[1]
    assert (await link_client.get(path)).status == 200
    for _ in range(2):
        assert (await link_client.post(path, data=data or {})).status == 200
    [entry] = await link_svc.store.list_audit(kind="feedback")
    assert entry["who"] == "message link" and entry["kpi"] == "orders" and entry["raised"]["value"] == 3.0


@pytest.mark.parametrize("vendor", ["slack", "dingtalk", "feishu", "teams", "wecom"])
@pytest.mark.parametrize("language", ["en", "zh"])
async def test_im_message_buttons_give_feedback(
    vendor: str, language: str, request: pytest.FixtureRequest, link_svc: AlertService, link_client: Client, clock: Clock
) -> None:
    server: IMServer = request.getfixturevalue(f"{vendor}_server")
    state, urls = await _firing(link_svc, clock)
    info = sample_alert(fingerprint=state.fingerprint, actions=urls)
    outcome = await build_notifier(spec_for(server, language=language)).send(notification(info, language=language))
    assert outcome.delivered and server.problems == []
    received = json.dumps(server.requests[0].json, ensure_ascii=False)
    assert all(word in received for word in WORDS[language])
    links = _by_action(received, clock)
    assert set(links) == set(ACTIONS)
    await _click_twice(link_client, link_svc, links["false_alarm"])
    [entry] = await link_svc.store.list_audit(kind="feedback")
    assert entry["verdict"] == "false_alarm"


async def test_email_links_give_feedback(
    smtp_server: SMTPTestServer, link_svc: AlertService, link_client: Client, clock: Clock
) -> None:
    state, urls = await _firing(link_svc, clock)
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
    await _click_twice(link_client, link_svc, in_html["expected"], {"reason": "promotion"})
    [entry] = await link_svc.store.list_audit(kind="feedback")
    assert (entry["verdict"], entry["reason"]) == ("expected", "promotion")


