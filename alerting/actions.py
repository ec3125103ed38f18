"""Signed one-click links in messages: acknowledge, silence for 2 h, and feedback: true alarm, false alarm,
expected (see :mod:`alerting.feedback`).

An IM button or an e-mail link is a plain GET without credentials, so each link carries its own proof: the
action, the alert's fingerprint, the incident (its ``starts_at``) and an expiry, signed with HMAC-SHA256 under a
secret only the workers know. ``GET /act/<token>`` shows what the link will do and a button; ``POST`` does it
(so a link preview fetched by a chat client or a mail scanner never acknowledges anything). A link works for
one incident only and for :data:`LINK_TTL_S` after the message was made.

Examples
--------
>>> links = ActionLinks("https://kpimon.example/", "s" * 32)
>>> url = links.urls("f00d", 100.0, now=200.0)["ack"]
>>> url.startswith("https://kpimon.example/act/")
True
>>> links.verify(url.rsplit("/", 1)[1], now=300.0)
ActionRequest(action='ack', fingerprint='f00d', incident=100.0, expires_at=605000.0)
>>> links.verify(url.rsplit("/", 1)[1][:-1] + "0", now=300.0) is None
True
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass

__all__ = ["ACTIONS", "FEEDBACK_ACTIONS", "LINK_TTL_S", "ActionLinks", "ActionRequest"]

ACTIONS = ("ack", "silence", "true_alarm", "false_alarm", "expected")
FEEDBACK_ACTIONS = ("true_alarm", "false_alarm", "expected")  # the links whose action is a feedback verdict
LINK_TTL_S = 7 * 86400.0
SILENCE_S = 2 * 3600.0  # what the "silence" link mutes: this series of this rule, for two hours


@dataclass(frozen=True, slots=True)
class ActionRequest:
    """What a valid link asks for."""

    action: str
    fingerprint: str
    incident: float
    expires_at: float


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class ActionLinks:
    """Makes and checks the links; ``base_url`` is the worker's API as people reach it (``KPIMON_PUBLIC_URL``)."""

    base_url: str
    secret: str

    def __repr__(self) -> str:
        return f"ActionLinks(base_url={self.base_url!r}, secret=<redacted>)"

    def _mac(self, body: str) -> str:
        return hmac.new(self.secret.encode(), body.encode(), hashlib.sha256).hexdigest()[:32]

    def token(self, action: str, fingerprint: str, incident: float, expires_at: float) -> str:
        """The signed token for one action on one incident."""
        body = _b64(json.dumps([action, fingerprint, incident, expires_at], separators=(",", ":")).encode())
        return f"{body}.{self._mac(body)}"

    def urls(self, fingerprint: str, incident: float, *, now: float) -> dict[str, str]:
        """Action -> link, valid for :data:`LINK_TTL_S` from ``now``."""
        base = self.base_url.rstrip("/")
        expires = now + LINK_TTL_S
        return {a: f"{base}/act/{self.token(a, fingerprint, incident, expires)}" for a in ACTIONS}

    def verify(self, token: str, *, now: float) -> ActionRequest | None:
        """The request a token stands for, or ``None`` if it is forged, malformed or expired."""
        body, _, mac = token.partition(".")
        if not body or not hmac.compare_digest(self._mac(body), mac):
            return None
        try:
            action, fingerprint, incident, expires = json.loads(_unb64(body))
        except (ValueError, TypeError):
            return None
        if action not in ACTIONS or not isinstance(fingerprint, str) or now > float(expires):
            return None
        return ActionRequest(action, fingerprint, float(incident), float(expires))
