"""``redact_url``/``redact_urls``: what the CLI prints of a URL carrying credentials."""

from __future__ import annotations

import pytest

from alerting.notifiers.base import redact_url, redact_urls

SECRET = "hunter2-s3cret"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"redis://:{SECRET}@redis:6379/0", "redis://:<redacted>@redis:6379/0"),
        (f"rediss://default:{SECRET}@10.0.0.5:6380/2", "rediss://default:<redacted>@10.0.0.5:6380/2"),
        (f"smtp://ann:{SECRET}@mail.example:587?tls=1", "smtp://ann:<redacted>@mail.example:587?<redacted>"),
        (f"https://hooks.slack.com/services/T0/B0/{SECRET}", "https://hooks.slack.com/<redacted>"),
        (f"https://oapi.dingtalk.com/robot/send?access_token={SECRET}", "https://oapi.dingtalk.com/<redacted>"),
        (f"http://{SECRET}@grafana:3000/", "http://<redacted>@grafana:3000/"),
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("https://grafana.example.com", "https://grafana.example.com"),
        ("http://[::1", "<redacted>"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_redact_urls_in_a_message() -> None:
    text = f"cannot reach Redis at redis://u:{SECRET}@h:1/0: Error 111; hook https://x.example/hook/{SECRET}."
    out = redact_urls(text)
    assert SECRET not in out
    # the trailing "." went with the URL's path: text after a URL may be lost, never a secret kept
    assert out == "cannot reach Redis at redis://u:<redacted>@h:1/0: Error 111; hook https://x.example/<redacted>"
