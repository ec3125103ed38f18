"""The one list of notification channels: ``type`` in a channel spec -> notifier class.

Adding a channel = its spec in ``catalog/channels.py`` (what the catalog may say) + a module in this package + a
line here + ``tests/alerting/notifiers/test_<type>.py`` (tests enforce that specs, notifiers and test modules
match), like alertmanager's ``config/notifiers.go`` and ``config/receiver/receiver.go``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from catalog.channels import ChannelSpec

from .base import Notifier
from .dingtalk import DingTalkNotifier
from .email import EmailNotifier
from .feishu import FeishuNotifier
from .slack import SlackNotifier
from .teams import TeamsNotifier
from .webhook import WebhookNotifier
from .wecom import WeComNotifier

__all__ = ["NOTIFIERS", "build_notifier"]

NOTIFIERS: dict[str, type] = {
    "email": EmailNotifier,
    "slack": SlackNotifier,
    "teams": TeamsNotifier,
    "dingtalk": DingTalkNotifier,
    "feishu": FeishuNotifier,
    "wecom": WeComNotifier,
    "webhook": WebhookNotifier,
}


def build_notifier(spec: ChannelSpec, *, clock: Callable[[], float] = time.time) -> Notifier:
    """Instantiate the notifier for ``spec.type``; ``clock`` (epoch seconds) feeds signing timestamps.

    Raises
    ------
    KeyError
        If ``spec.type`` has no registered notifier (cannot happen for a validated :data:`ChannelSpec`).
    """
    cls = NOTIFIERS[spec.type]
    notifier: Notifier = cls(spec, clock=clock)
    return notifier
