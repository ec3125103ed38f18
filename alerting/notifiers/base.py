"""The notifier contract: what a notification carries and what sending it returns.

Every channel module (``email``, ``slack``, ...) implements :class:`Notifier`. Notifiers never raise on
delivery failure: they return an :class:`Outcome` whose ``retryable`` flag tells the outbox whether trying
again can help (as alertmanager's ``Notify`` returns ``(recoverable, err)``). ``Outcome.reason`` is logged and
stored, so it must never contain a secret; :func:`redact` is the one helper to enforce that, and
:func:`redact_urls` removes the credentials of every URL in a text (Redis, broker, SMTP, webhook URLs in errors).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable
from urllib.parse import urlsplit

__all__ = ["AlertInfo", "DigestMessage", "Notification", "Notifier", "Outcome", "redact", "redact_url", "redact_urls", "REDACTED"]

REDACTED = "<redacted>"


@dataclass(frozen=True, slots=True)
class AlertInfo:
    """One alert as notifiers see it: already evaluated, ready to render.

    ``labels`` holds the series' dimension labels (e.g. ``{"region": "east"}``) plus the rule's own labels.
    Times are epoch seconds. ``severity`` is ``info|warning|critical``; ``status`` is ``firing|resolved``.

    The rest says what the renderer needs to write the message in any language without parsing ``summary``
    (which is English, for logs and webhooks): ``kind`` is the rule type, ``condition`` one of
    ``below|above|outside|drop_previous|drop_last_week|rise_previous|rise_last_week|anomaly|drift|absent``
    with its ``limits`` (thresholds in the KPI's unit, change rules in percent); ``value_kind``
    (``count|money|ratio|value``) picks the number format and ``value_min``/``value_max`` the possible range
    bands are clipped to. ``kpi_titles`` and ``summaries`` (the rule's own summary, already filled in) are per
    language; ``actions`` maps ``ack|silence|true_alarm|false_alarm|expected`` to signed links.
    """

    rule: str
    kpi: str
    kpi_title: str
    severity: str
    status: str
    labels: Mapping[str, str]
    value: float | None
    expected: float | None
    lower: float | None
    upper: float | None
    unit: str
    summary: str
    window_start: float
    window_end: float
    starts_at: float
    ends_at: float | None
    fingerprint: str
    dashboard_url: str | None = None
    kind: str = ""
    condition: str = ""
    limits: tuple[float, ...] = ()
    value_kind: str = "value"
    value_min: float | None = None
    value_max: float | None = None
    owner: str = ""
    kpi_titles: Mapping[str, str] = field(default_factory=dict)
    summaries: Mapping[str, str] = field(default_factory=dict)
    actions: Mapping[str, str] = field(default_factory=dict)
    # a correction notice: {"start", "end", "was", "now", "raised_at", "retracted"} (see render.correction_text)
    correction: Mapping[str, Any] | None = None
    # an anomaly described as a new level ("drift: new level 0 since 10:40"): since when
    drift_since: float | None = None


@dataclass(frozen=True, slots=True)
class Notification:
    """A group of alerts for one receiver (channel).

    ``id`` is unique and used as the idempotency key where the format allows it (``Idempotency-Key`` header for
    webhooks, ``Message-ID`` for email). ``status`` is ``resolved`` only when every alert is resolved, and
    ``correction`` for a correction notice (a revised window changed the value an alert was raised on; each
    alert carries its ``correction`` and its current status, ``resolved`` when the correction retracted it).
    ``kind`` picks the headline template (``notify``, ``escalation``, ``correction``; new kinds are a template entry
    in :mod:`alerting.notifiers.templates`); ``at`` is when it was made (durations are measured to it),
    ``timezone`` the IANA zone every time is shown in, ``thread`` the id of the group's first notification
    on this channel (e-mail replies thread under it).
    """

    id: str
    group_key: str
    receiver: str
    status: str
    alerts: tuple[AlertInfo, ...]
    language: str = "en"
    external_url: str | None = None
    kind: str = "notify"
    at: float | None = None
    timezone: str = "UTC"
    thread: str | None = None


@dataclass(frozen=True, slots=True)
class DigestMessage:
    """A rendered digest for the notifiers: ``id`` (idempotency), title, plain text, markdown, HTML and the
    charts the HTML refers to as ``cid:<name>`` (PNG bytes)."""

    id: str
    title: str
    text: str
    markdown: str
    html: str
    images: tuple[tuple[str, bytes], ...] = ()


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of one delivery attempt. ``reason`` never contains a secret."""

    delivered: bool
    retryable: bool
    reason: str


@runtime_checkable
class Notifier(Protocol):
    """Sends a notification to one channel; never raises for delivery failures."""

    kind: ClassVar[str]

    async def send(self, notification: Notification) -> Outcome:
        """Deliver ``notification`` once and report what happened."""
        ...


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replace every occurrence of each non-empty secret in ``text`` with ``<redacted>``.

    Longer secrets are replaced first so a secret containing another one (a URL containing its token) is
    removed whole.

    Examples
    --------
    >>> redact("POST https://oapi.example/robot/send?access_token=abc123 failed", ["abc123"])
    'POST https://oapi.example/robot/send?access_token=<redacted> failed'
    >>> redact("nothing here", ["", "x" * 3])
    'nothing here'
    """
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")


def redact_url(url: str) -> str:
    """``url`` without its secrets: the password (or a user without one: a token), query values, and for
    http(s) the whole path, since IM webhooks carry their token there (``hooks.slack.com/services/T/B/XXX``).

    Examples
    --------
    >>> redact_url("redis://:s3cret@redis:6379/0")
    'redis://:<redacted>@redis:6379/0'
    >>> redact_url("smtp://ann:pw@mail.example:587?tls=1")
    'smtp://ann:<redacted>@mail.example:587?<redacted>'
    >>> redact_url("https://hooks.slack.com/services/T0/B0/XYZ")
    'https://hooks.slack.com/<redacted>'
    >>> redact_url("http://ghp_token@grafana:3000/")
    'http://<redacted>@grafana:3000/'
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return REDACTED
    userinfo, at, hostport = parts.netloc.rpartition("@")
    if at:
        user, colon, _ = userinfo.partition(":")
        hostport = (f"{user}:{REDACTED}" if colon else REDACTED) + "@" + hostport
    path = parts.path
    if parts.scheme.lower() in ("http", "https") and (path not in ("", "/") or parts.query or parts.fragment):
        return f"{parts.scheme}://{hostport}/{REDACTED}"
    query = f"?{REDACTED}" if parts.query else ""
    fragment = f"#{REDACTED}" if parts.fragment else ""
    return f"{parts.scheme}://{hostport}{path}{query}{fragment}"


def redact_urls(text: str) -> str:
    """``text`` with every URL in it passed through :func:`redact_url`.

    >>> redact_urls("cannot reach Redis at redis://default:hunter2@10.0.0.5:6379/0: Connection refused")
    'cannot reach Redis at redis://default:<redacted>@10.0.0.5:6379/0: Connection refused'
    """
    return _URL.sub(lambda m: redact_url(m.group(0)), text)
