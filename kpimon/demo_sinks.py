"""Local receivers for `kpimon demo`: an SMTP server and a DingTalk-style webhook, so alerts are visible."""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass, field
from email import message_from_bytes
from email.header import decode_header, make_header
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["Delivered", "Sinks"]


@dataclass(frozen=True, slots=True)
class Delivered:
    channel: str
    text: str


@dataclass
class Sinks:
    smtp_port: int
    http_port: int
    received: deque[Delivered] = field(default_factory=lambda: deque(maxlen=50))
    _smtp: Any = None
    _http: ThreadingHTTPServer | None = None

    def start(self) -> Sinks:
        from aiosmtpd.controller import Controller

        sinks = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                msg = message_from_bytes(envelope.content)
                sinks.received.append(Delivered("email", str(make_header(decode_header(msg.get("Subject", ""))))))
                return "250 OK"

        self._smtp = Controller(Handler(), hostname="127.0.0.1", port=self.smtp_port)
        self._smtp.start()

        class Hook(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", "0") or 0))
                try:
                    doc = json.loads(body)
                    text = (doc.get("markdown") or {}).get("title") or (doc.get("text") or {}).get("content", "")
                except ValueError:
                    text = body[:80].decode(errors="replace")
                sinks.received.append(Delivered("dingtalk", str(text).splitlines()[0] if text else "(empty)"))
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

    def stop(self) -> None:
        if self._smtp is not None:
            self._smtp.stop()
        if self._http is not None:
            self._http.shutdown()
