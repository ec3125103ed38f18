"""Checks every registered channel passes, like alertmanager's ``notify/test`` helpers.

* Every ``NOTIFIERS`` entry has a spec type, a ``kind`` equal to its key and a test module
  ``test_notify_<kind>.py`` (a new channel = module + registry line + test file).
* ``AssertNotifyLeaksNoSecret``: with secrets in the URL, signing secret, headers and SMTP password, forced
  failures (vendor error codes, 5xx, timeouts, refused connections, echoed request bodies) leave no secret in
  any log record (DEBUG, httpx/httpcore included), Outcome.reason, repr or spec dump.
"""

from __future__ import annotations

import logging
import secrets as pysecrets
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, get_args

import pytest
from pydantic import TypeAdapter, ValidationError

from alerting.notifiers import Notifier, Outcome, parse_channel
from alerting.notifiers.registry import NOTIFIERS, build_notifier
from catalog.channels import ChannelSpec, EmailSpec
from tests.fixtures.im import IMServer, Reply, unused_port
from tests.fixtures.smtp_server import SMTPTestServer

from ._samples import notification, spec_for

_SECRET_SPECS = {"dingtalk": "SEC", "feishu": ""}
_FAILURES = ("vendor_error", "server_error", "timeout", "refused", "echo")


def _spec_kinds() -> set[str]:
    union = get_args(ChannelSpec)[0]
    return {cls.model_fields["type"].default for cls in get_args(union)}


def test_registry_matches_channel_specs() -> None:
    assert (
        set(NOTIFIERS)
        == _spec_kinds()
        == {"email", "slack", "teams", "dingtalk", "feishu", "wecom", "webhook"}
    )


@pytest.mark.parametrize("kind", sorted(NOTIFIERS))
def test_every_channel_has_a_test_module(kind: str) -> None:
    assert (Path(__file__).parent / f"test_notify_{kind}.py").is_file(), f"add test_notify_{kind}.py"
    assert getattr(NOTIFIERS[kind], "kind", None) == kind


def test_spec_validation_errors_do_not_echo_the_url() -> None:
    url = f"ftp://hooks.example/{pysecrets.token_hex(16)}"
    with pytest.raises(ValidationError) as info:
        parse_channel({"type": "slack", "url": url})
    assert url not in str(info.value) and "url must start with" in str(info.value)


# ------------------------------------------------------------------ leak checks
async def _http_case(kind: str, failure: str, im_server: Callable[..., IMServer]) -> tuple[Any, list[str]]:
    secret = _SECRET_SPECS.get(kind)
    headers = {"Authorization": f"Bearer {pysecrets.token_hex(12)}"} if kind == "webhook" else None
    server = im_server(
        kind, secret=None if secret is None else secret + pysecrets.token_hex(16), required_headers=headers
    )
    overrides: dict[str, Any] = {}
    if failure == "vendor_error":
        # A bad signing secret / wrong header where the vendor has one, else a wrong token in the URL.
        if server.secret:
            overrides["secret"] = server.secret[:-4] + "xxxx"
        else:
            overrides["url"] = server.url.replace(server.token, server.token[::-1])
    elif failure == "server_error":
        server.reply(Reply(500, text="boom"))
    elif failure == "timeout":
        server.reply(Reply(delay=2.0))
        overrides["timeout_seconds"] = 0.2
    elif failure == "refused":
        overrides["url"] = server.url.replace(f":{server.port}/", f":{unused_port()}/")
    elif failure == "echo":
        # A (misbehaving) server that echoes the request URL and secrets into its error body.
        server.reply(Reply(400, text=f"bad request to {server.url} with {' '.join(server.secrets)}"))
    spec = spec_for(server, **overrides)
    every_secret = [*server.secrets, server.url, *overrides.values()]
    return spec, [s for s in every_secret if isinstance(s, str) and len(s) >= 8]


def _email_case(failure: str, server: SMTPTestServer) -> tuple[Any, list[str]]:
    fields: dict[str, Any] = {
        "host": server.host, "port": server.port, "username": server.username, "password": server.password,
        "from": "kpimon@example.com", "to": ["ops@example.com"], "ca_file": server.ca_file, "timeout_seconds": 1.0,
    }  # fmt: skip
    if failure == "vendor_error":
        fields["password"] = server.password + "-wrong"
    elif failure == "server_error":
        server.fail_next("DATA", "451 4.3.0 Try again later")
    elif failure == "timeout":
        fields["ca_file"] = None  # certificate failure instead: SMTP has no slow-reply script
    elif failure == "refused":
        fields["port"] = unused_port()
    elif failure == "echo":
        server.fail_next("MAIL", f"550 5.7.1 rejected {server.password}")
    return EmailSpec.model_validate(fields), [server.password, fields["password"]]


def _log_text(records: list[logging.LogRecord]) -> str:
    parts = []
    for record in records:
        # The fake SMTP server logs its own protocol traffic (base64 AUTH included); it is the vendor side.
        if record.name.startswith("mail.log"):
            continue
        parts.append(record.getMessage())
        if record.exc_info:
            parts.append("".join(traceback.format_exception(*record.exc_info)))
    return "\n".join(parts)


@pytest.mark.parametrize("failure", _FAILURES)
@pytest.mark.parametrize("kind", sorted(NOTIFIERS))
async def test_notify_leaks_no_secret(
    kind: str,
    failure: str,
    im_server: Callable[..., IMServer],
    smtp_server: SMTPTestServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "alerting", "asyncio"):
        caplog.set_level(logging.DEBUG, logger=name)
    if kind == "email":
        spec, secrets = _email_case(failure, smtp_server)
    else:
        spec, secrets = await _http_case(kind, failure, im_server)
    notifier: Notifier = build_notifier(spec)
    send: Callable[[Any], Awaitable[Outcome]] = notifier.send
    outcome = await send(notification())  # must not raise

    assert not outcome.delivered, outcome
    seen = "\n".join([outcome.reason, repr(outcome), repr(notifier), repr(spec), str(spec),
                      TypeAdapter(ChannelSpec).dump_json(spec).decode(), _log_text(caplog.records)])  # fmt: skip
    leaked = [s for s in secrets if s in seen]
    assert leaked == [], f"{kind}/{failure} leaked a secret; reason={outcome.reason!r}"
    if kind != "email":
        # The httpx request line is still logged, with the URL reduced to scheme://host:port/<redacted>.
        assert failure == "refused" or failure == "timeout" or "HTTP Request: POST http://127.0.0.1" in seen


@pytest.mark.parametrize("kind", sorted(NOTIFIERS))
def test_built_notifier_satisfies_protocol(kind: str, tmp_path: Path) -> None:
    data: dict[str, Any] = {"type": kind, "url": "https://hooks.example/x"}
    if kind == "email":
        data = {"type": "email", "host": "smtp.example", "from": "a@example.com", "to": ["b@example.com"]}
    notifier = build_notifier(parse_channel(data))
    assert isinstance(notifier, Notifier) and notifier.kind == kind
