"""Email: STARTTLS + AUTH against a real aiosmtpd server; multipart/alternative; SMTP codes classified."""

from __future__ import annotations

from typing import Any

import pytest

from alerting.notifiers.email import EmailNotifier, message_id
from catalog.channels import EmailSpec
from tests.fixtures.im import unused_port
from tests.fixtures.smtp_server import SMTPTestServer

from ._samples import notification


def _spec(server: SMTPTestServer, **overrides: Any) -> EmailSpec:
    fields: dict[str, Any] = {
        "host": server.host,
        "port": server.port,
        "starttls": server.tls == "starttls",
        "ssl": server.tls == "implicit",
        "username": server.username,
        "password": server.password,
        "from": "kpimon@example.com",
        "to": ["ops@example.com", "oncall@example.com"],
        "ca_file": server.ca_file,
        "timeout_seconds": 3.0,
    }
    return EmailSpec.model_validate({**fields, **overrides})


async def test_starttls_auth_multipart_in_chinese(smtp_server: SMTPTestServer) -> None:
    outcome = await EmailNotifier(_spec(smtp_server, language="zh")).send(notification(id="n/42 x"))

    assert outcome.delivered, outcome
    assert smtp_server.auth_attempts == [("PLAIN", True)]
    [mail] = smtp_server.messages
    assert mail.mail_from == "kpimon@example.com"
    assert mail.rcpt_tos == ["ops@example.com", "oncall@example.com"]
    msg = mail.message
    assert msg["Subject"].startswith("【告警中】严重 · 支付订单数")
    assert msg["Message-ID"] == message_id("n/42 x", "kpimon@example.com")
    assert msg["Message-ID"].endswith("@example.com>") and " " not in msg["Message-ID"]
    assert msg.get_content_type() == "multipart/alternative"
    plain, html = msg.iter_parts()
    assert plain.get_content_type() == "text/plain" and html.get_content_type() == "text/html"
    assert "当前值: 9 单" in plain.get_content()
    assert "<th" in html.get_content() and "查看看板" in html.get_content()


async def test_message_id_is_stable_across_retries(smtp_server: SMTPTestServer) -> None:
    notifier = EmailNotifier(_spec(smtp_server))
    smtp_server.fail_next("DATA", "451 4.3.0 Try again later")
    first = await notifier.send(notification())
    second = await notifier.send(notification())
    assert (first.delivered, first.retryable) == (False, True) and second.delivered
    assert smtp_server.messages[0].message["Message-ID"] == "<n-0001@example.com>"


async def test_implicit_tls(smtps_server: SMTPTestServer) -> None:
    outcome = await EmailNotifier(_spec(smtps_server)).send(notification())
    assert outcome.delivered and len(smtps_server.messages) == 1
    assert smtps_server.auth_attempts == [("PLAIN", True)]


async def test_wrong_password_is_not_retryable(smtp_server: SMTPTestServer) -> None:
    outcome = await EmailNotifier(_spec(smtp_server, password="wrong")).send(notification())
    assert (outcome.delivered, outcome.retryable) == (False, False)
    assert outcome.reason.startswith("SMTP 535")


async def test_untrusted_certificate_is_not_retryable(smtp_server: SMTPTestServer) -> None:
    outcome = await EmailNotifier(_spec(smtp_server, ca_file=None)).send(notification())
    assert (outcome.delivered, outcome.retryable) == (False, False)
    assert outcome.reason == "TLS certificate verification failed"
    assert smtp_server.messages == []


@pytest.mark.parametrize(
    ("stage", "reply", "retryable"),
    [
        ("MAIL", "451 4.7.1 Greylisted, try later", True),
        ("MAIL", "553 5.7.1 Sender not allowed", False),
        ("DATA", "452 4.3.1 Insufficient system storage", True),
        ("DATA", "554 5.7.1 Message rejected as spam", False),
    ],
)
async def test_smtp_reply_codes(smtp_server: SMTPTestServer, stage: Any, reply: str, retryable: bool) -> None:
    smtp_server.fail_next(stage, reply)
    outcome = await EmailNotifier(_spec(smtp_server)).send(notification())
    assert (outcome.delivered, outcome.retryable) == (False, retryable)
    assert outcome.reason.startswith(f"SMTP {reply[:3]}")


async def test_all_recipients_refused(smtp_server: SMTPTestServer) -> None:
    smtp_server.fail_next("RCPT", "550 5.1.1 No such user")
    smtp_server.fail_next("RCPT", "550 5.1.1 No such user")
    outcome = await EmailNotifier(_spec(smtp_server)).send(notification())
    assert (outcome.delivered, outcome.retryable) == (False, False)


async def test_some_recipients_refused_counts_as_delivered(smtp_server: SMTPTestServer) -> None:
    smtp_server.fail_next("RCPT", "450 4.2.1 Mailbox busy")
    outcome = await EmailNotifier(_spec(smtp_server)).send(notification())
    assert outcome.delivered and "refused by 1" in outcome.reason
    assert smtp_server.messages[0].rcpt_tos == ["oncall@example.com"]


async def test_connection_refused_is_retryable() -> None:
    spec = EmailSpec.model_validate(
        {"host": "127.0.0.1", "port": unused_port(), "from": "a@example.com", "to": ["b@example.com"]}
    )
    outcome = await EmailNotifier(spec).send(notification())
    assert (outcome.delivered, outcome.retryable) == (False, True)


async def test_server_without_starttls_is_not_retryable(smtp_server_factory: Any) -> None:
    plain = smtp_server_factory(tls="none", auth=False)
    outcome = await EmailNotifier(_spec(plain, starttls=True, username=None, password=None)).send(
        notification()
    )
    assert (outcome.delivered, outcome.retryable) == (False, False)
    assert "STARTTLS" in outcome.reason
    unencrypted = await EmailNotifier(_spec(plain, starttls=False, username=None, password=None)).send(
        notification()
    )
    assert unencrypted.delivered
