"""Local receivers for `kpimon demo`: an SMTP server and a DingTalk-style webhook, so alerts are visible.

Every delivered notification is also appended to ``log_path`` (``alerts.jsonl`` in the demo's log folder) as one
JSON line: ``time`` (ISO-8601 UTC, when it arrived), ``channel``, ``state`` (firing / resolved, from the
headline), the full ``subject`` and ``body`` — exactly what a person would have received.

>>> state_of("【已恢复】警告 · 支付订单数: ..."), state_of("[FIRING:2] critical · Orders"), state_of("hello")
('resolved', 'firing', 'unknown')
"""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes
from email.header import decode_header, make_header
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

__all__ = ["Delivered", "Sinks", "state_of"]

_STATES = (("resolved", ("[RESOLVED", "【已恢复")), ("firing", ("[FIRING", "【告警中")))


def state_of(subject: str) -> str:
    """``firing`` / ``resolved`` from a notification's headline (``unknown`` if it says neither)."""
    return next((state for state, heads in _STATES if subject.startswith(heads)), "unknown")


@dataclass(frozen=True, slots=True)
class Delivered:
    channel: str
    text: str                    # the headline (the subject)
    body: str = ""
    time: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    @property
    def state(self) -> str:
        return state_of(self.text)

    def to_json(self) -> str:
        return json.dumps({"time": self.time, "channel": self.channel, "state": self.state,
                           "subject": self.text, "body": self.body}, ensure_ascii=False)


def _plain_body(msg: Message) -> str:
    """The text/plain part of a mail (the whole payload if it is not multipart)."""
    for part in msg.walk():
        if part.get_content_type() == "text/plain":
            raw = part.get_payload(decode=True)
            if isinstance(raw, bytes):
                return raw.decode(part.get_content_charset() or "utf-8", errors="replace")
    return ""


@dataclass
class Sinks:
    smtp_port: int
    http_port: int
    log_path: Path | None = None         # alerts.jsonl: every delivery, one JSON line each
    received: deque[Delivered] = field(default_factory=lambda: deque(maxlen=50))
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _smtp: Any = None
    _http: ThreadingHTTPServer | None = None

    def start(self) -> Sinks:
        from aiosmtpd.controller import Controller

        sinks = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                msg = message_from_bytes(envelope.content)
                subject = str(make_header(decode_header(msg.get("Subject", ""))))
                sinks.add(Delivered("email", subject, _plain_body(msg)))
                return "250 OK"

        self._smtp = Controller(Handler(), hostname="127.0.0.1", port=self.smtp_port)
        self._smtp.start()

        class Hook(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", "0") or 0))
                try:
                    doc = json.loads(body)
                    md = doc.get("markdown") or {}
                    full = str(md.get("text") or (doc.get("text") or {}).get("content", ""))
                    text = str(md.get("title") or full)
                except (ValueError, AttributeError):
                    full = text = body[:2000].decode(errors="replace")
                sinks.add(Delivered("dingtalk", text.splitlines()[0] if text else "(empty)", full))
                reply = b'{"errcode":0,"errmsg":"ok"}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", self.http_port), Hook)
        threading.Thread(target=self._http.serve_forever, daemon=True).start()
        return self

    def add(self, delivered: Delivered) -> None:
        """Keep ``delivered`` for the table and append it to :attr:`log_path` (both receivers' threads call this)."""
        with self._lock:
            self.received.append(delivered)
            if self.log_path is not None:
                with self.log_path.open("a", encoding="utf-8") as out:
                    out.write(delivered.to_json() + "\n")

    def stop(self) -> None:
        if self._smtp is not None:
            self._smtp.stop()
        if self._http is not None:
            self._http.shutdown()
