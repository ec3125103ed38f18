"""Alerting: rules, alert lifecycle and notification channels (pure logic; no Faust or Kafka)."""

from .notifiers import (
    NOTIFIERS,
    AlertInfo,
    ChannelSpec,
    Notification,
    Notifier,
    Outcome,
    build_notifier,
    parse_channel,
    redact,
    redact_url,
    redact_urls,
)

__all__ = [
    "NOTIFIERS",
    "AlertInfo",
    "ChannelSpec",
    "Notification",
    "Notifier",
    "Outcome",
    "build_notifier",
    "parse_channel",
    "redact",
    "redact_url",
    "redact_urls",
]
