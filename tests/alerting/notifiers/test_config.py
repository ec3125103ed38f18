"""Channel specs: discriminated by ``type``, secrets hidden in repr, dumps and validation errors."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from alerting.notifiers import DingTalkSpec, EmailSpec, WebhookSpec, parse_channel, redact


def test_discriminated_union_and_defaults() -> None:
    spec = parse_channel(
        {"type": "dingtalk", "url": "https://oapi.dingtalk.com/robot/send?access_token=t0ken"}
    )
    assert isinstance(spec, DingTalkSpec)
    assert (spec.language, spec.timeout_seconds, spec.secret, spec.at_mobiles) == (None, 5.0, None, [])


def test_secrets_are_hidden() -> None:
    spec = parse_channel(
        {
            "type": "webhook",
            "url": "https://h/hook?token=t0ken-123",
            "headers": {"Authorization": "Bearer b3arer"},
        }
    )
    assert isinstance(spec, WebhookSpec)
    shown = repr(spec) + str(spec) + spec.model_dump_json()
    assert "t0ken-123" not in shown and "b3arer" not in shown


def test_email_from_alias_and_password() -> None:
    spec = parse_channel(
        {
            "type": "email",
            "host": "smtp.example",
            "from": "a@example.com",
            "to": ["b@example.com"],
            "username": "u",
            "password": "p4ssw0rd-x",
        }  # fmt: skip
    )
    assert isinstance(spec, EmailSpec) and spec.from_ == "a@example.com"
    assert "p4ssw0rd-x" not in repr(spec)


def test_email_password_needs_username() -> None:
    with pytest.raises(ValidationError):
        parse_channel({"type": "email", "host": "h", "from": "a@x", "to": ["b@x"], "password": "p"})


def test_unknown_type_and_extra_fields_are_rejected() -> None:
    with pytest.raises(ValidationError):
        parse_channel({"type": "pager", "url": "https://x"})
    with pytest.raises(ValidationError):
        parse_channel({"type": "slack", "url": "https://x", "channel": "#ops"})


def test_redact_longest_first() -> None:
    url = "https://h/send?access_token=abc123"
    assert redact(f"POST {url} failed (abc123)", ["abc123", url]) == "POST <redacted> failed (<redacted>)"
