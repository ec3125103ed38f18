"""Notification channels: one module per vendor behind :data:`registry.NOTIFIERS`.

Every notifier implements :class:`Notifier` and returns an :class:`Outcome`; it never raises for a failed
delivery and never puts a secret (webhook URL, token, signing secret, SMTP password) in a reason or a log line.
"""

from catalog.channels import (
    ChannelSpec,
    DingTalkSpec,
    EmailSpec,
    FeishuSpec,
    SlackSpec,
    TeamsSpec,
    WebhookSpec,
    WeComSpec,
    parse_channel,
)

from .base import AlertInfo, Notification, Notifier, Outcome, redact, redact_url, redact_urls
from .registry import NOTIFIERS, build_notifier

__all__ = [
    "NOTIFIERS",
    "AlertInfo",
    "ChannelSpec",
    "DingTalkSpec",
    "EmailSpec",
    "FeishuSpec",
    "Notification",
    "Notifier",
    "Outcome",
    "SlackSpec",
    "TeamsSpec",
    "WeComSpec",
    "WebhookSpec",
    "build_notifier",
    "parse_channel",
    "redact",
    "redact_url",
    "redact_urls",
]
