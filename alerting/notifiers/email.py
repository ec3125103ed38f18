"""Email over SMTP: multipart/alternative (plain text + HTML), STARTTLS or implicit TLS, AUTH.

Uses the standard library's :mod:`smtplib` in a worker thread (``asyncio.to_thread``) to avoid another
dependency. Every socket operation is bounded by ``timeout_seconds``. SMTP replies map to outcomes the way
RFC 5321 §4.2.1 defines them: 4yz is a transient failure (retry), 5yz permanent (do not).
The ``Message-ID`` is derived from the notification id, so a retried message keeps its id and mail systems
can deduplicate it; later notifications of the same group (updates, the resolution, an escalation) carry
``In-Reply-To``/``References`` to the group's first e-mail, so they thread under it.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import re
import smtplib
import ssl
import time
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import formatdate
from typing import ClassVar

from catalog.channels import EmailSpec

from . import render
from .base import DigestMessage, Notification, Outcome, redact

__all__ = ["EmailNotifier", "build_digest_message", "build_message", "message_id"]

_ID_UNSAFE = re.compile(r"[^A-Za-z0-9._+=-]")


def message_id(notification_id: str, from_addr: str) -> str:
    """``<id@domain>`` from the notification id; unsafe characters replaced and a hash added for uniqueness.

    >>> message_id("n-1", "kpimon@example.com")
    '<n-1@example.com>'
    """
    local = _ID_UNSAFE.sub("_", notification_id)
    if local != notification_id or not local:
        local = f"{local}.{hashlib.sha256(notification_id.encode()).hexdigest()[:12]}"
    domain = from_addr.rsplit("@", 1)[-1].strip(">") or "kpimon.invalid"
    return f"<{local}@{domain}>"


def build_message(n: Notification, spec: EmailSpec) -> EmailMessage:
    """The MIME message: subject = headline, plain-text part first, HTML alternative second."""
    msg = EmailMessage()
    msg["Subject"] = render.title(n)
    msg["From"] = spec.from_
    msg["To"] = ", ".join(spec.to)
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = message_id(n.id, spec.from_)
    if n.thread and n.thread != n.id:
        # RFC 5322 §3.6.4: a reply names its parent; mail clients thread the group's updates and its
        # resolution under the first (firing) e-mail.
        root = message_id(n.thread, spec.from_)
        msg["In-Reply-To"] = root
        msg["References"] = root
    msg["X-Kpimon-Group-Key"] = _ID_UNSAFE.sub("_", n.group_key)[:200]
    msg.set_content(render.plain_text(n))
    msg.add_alternative(render.html_body(n), subtype="html")
    return msg


def build_digest_message(m: DigestMessage, spec: EmailSpec) -> EmailMessage:
    """A review digest: plain text, and HTML with its charts inline (``multipart/related``, ``cid:`` images)."""
    msg = EmailMessage()
    msg["Subject"] = m.title
    msg["From"] = spec.from_
    msg["To"] = ", ".join(spec.to)
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = message_id(m.id, spec.from_)
    msg.set_content(m.text)
    msg.add_alternative(m.html, subtype="html")
    html_part = msg.get_body(preferencelist=("html",))
    assert html_part is not None  # added just above
    for cid, png in m.images:
        html_part.add_related(png, maintype="image", subtype="png", cid=f"<{cid}>", filename=f"{cid}.png")
    return msg


def _smtp_outcome(code: int, message: bytes | str, secrets: list[str]) -> Outcome:
    text = message.decode("utf-8", "replace") if isinstance(message, bytes) else message
    # RFC 5321 §4.2.1: 4yz transient, 5yz permanent; anything else (e.g. -1 "no reply") is treated as transient.
    retryable = not 500 <= code < 600
    return Outcome(False, retryable, f"SMTP {code}: {redact(text, secrets)[:200]}")


class EmailNotifier:
    """Sends one email per notification to every address in ``spec.to``."""

    kind: ClassVar[str] = "email"

    def __init__(self, spec: EmailSpec, *, clock: Callable[[], float] = time.time) -> None:
        self._spec = spec
        self._clock = clock
        password = spec.password.get_secret_value() if spec.password else ""
        self._password = password
        auth_blob = f"\0{spec.username or ''}\0{password}".encode()
        self._secrets = [s for s in (password, base64.b64encode(auth_blob).decode()) if s]

    def __repr__(self) -> str:
        return f"EmailNotifier(host={self._spec.host!r}, port={self._spec.port}, password=<redacted>)"

    async def send(self, notification: Notification) -> Outcome:
        """Send the notification in the channel's language; never raises for delivery failures."""
        n = notification
        if self._spec.language is not None and n.language != self._spec.language:
            n = dataclasses.replace(n, language=self._spec.language)
        return await self._send_mime(build_message(n, self._spec))

    async def send_digest(self, message: DigestMessage) -> Outcome:
        """Send a review digest (already in the team's language) to every address in ``spec.to``."""
        return await self._send_mime(build_digest_message(message, self._spec))

    async def _send_mime(self, msg: EmailMessage) -> Outcome:
        try:
            refused = await asyncio.to_thread(self._deliver, msg)
        except Exception as exc:  # noqa: BLE001 - every failure becomes an Outcome, classified below
            return self._classify(exc)
        if refused:
            # Some recipients accepted it: retrying would duplicate for them, so report delivered.
            return Outcome(True, False, f"delivered; refused by {len(refused)} recipient(s)")
        return Outcome(True, False, f"sent to {len(self._spec.to)} recipient(s)")

    def _tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if self._spec.ca_file:
            context.load_verify_locations(cafile=self._spec.ca_file)
        if not self._spec.verify_tls:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def _deliver(self, msg: EmailMessage) -> dict[str, tuple[int, bytes]]:
        spec, timeout = self._spec, self._spec.timeout_seconds
        smtp: smtplib.SMTP
        if spec.ssl:
            smtp = smtplib.SMTP_SSL(spec.host, spec.port, timeout=timeout, context=self._tls_context())
        else:
            smtp = smtplib.SMTP(spec.host, spec.port, timeout=timeout)
        with smtp:
            if spec.starttls and not spec.ssl:
                smtp.starttls(context=self._tls_context())
            if spec.username:
                smtp.login(spec.username, self._password)
            return smtp.send_message(msg)

    def _classify(self, exc: BaseException) -> Outcome:
        if isinstance(exc, smtplib.SMTPRecipientsRefused):
            codes = [code for code, _ in exc.recipients.values()]
            retryable = all(400 <= c < 500 for c in codes)
            return Outcome(False, retryable, f"all recipients refused (SMTP {sorted(set(codes))})")
        if isinstance(exc, smtplib.SMTPResponseException):
            return _smtp_outcome(exc.smtp_code, exc.smtp_error, self._secrets)
        if isinstance(exc, smtplib.SMTPNotSupportedError):
            return Outcome(False, False, "SMTP server lacks a required extension (STARTTLS or AUTH)")
        if isinstance(exc, ssl.SSLCertVerificationError):
            return Outcome(False, False, "TLS certificate verification failed")
        if isinstance(exc, ssl.SSLError):
            return Outcome(False, False, f"TLS error ({type(exc).__name__})")
        if isinstance(exc, smtplib.SMTPServerDisconnected | TimeoutError | OSError):
            return Outcome(False, True, f"connection error ({type(exc).__name__})")
        return Outcome(False, False, f"email failed ({type(exc).__name__})")
