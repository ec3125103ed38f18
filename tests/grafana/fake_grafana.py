"""A local stand-in for Grafana's HTTP API (dashboards, folders, annotations), on a real socket (port 0).

Grafana itself cannot run in this environment, so this server follows the documented API
(https://grafana.com/docs/grafana/latest/developers/http_api/dashboard/, .../folder/, .../annotations/):
Bearer auth (401 otherwise), ``POST /api/dashboards/db`` with 412 ``name-exists`` when a uid exists and
``overwrite`` is false, 404 for unknown folders, and injectable failures (``fail_next``) and delays.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class FakeGrafana:
    token: str
    requests: list[Request] = field(default_factory=list)
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)
    folders: dict[str, str] = field(default_factory=dict)
    annotations: list[dict[str, Any]] = field(default_factory=list)
    fail_next: list[int] = field(default_factory=list)
    delay: float = 0.0
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_port}"

    def handle(self, req: Request) -> tuple[int, dict[str, Any]]:
        self.requests.append(req)
        if self.delay:
            time.sleep(self.delay)
        if self.fail_next:
            status = self.fail_next.pop(0)
            return status, {"message": f"injected {status}"}
        if req.headers.get("authorization") != f"Bearer {self.token}":
            return 401, {"message": "invalid API key"}
        route = {("POST", "/api/dashboards/db"): self._dashboard, ("POST", "/api/folders"): self._create_folder,
                 ("POST", "/api/annotations"): self._annotation}.get((req.method, req.path))
        if route:
            return route(req.body)
        if req.method == "GET" and req.path.startswith("/api/folders/"):
            uid = req.path.rsplit("/", 1)[1]
            if uid in self.folders:
                return 200, {"uid": uid, "title": self.folders[uid], "id": 1}
            return 404, {"message": "folder not found", "status": "not-found"}
        return 404, {"message": "Not found"}

    def _dashboard(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        board = body.get("dashboard")
        if not isinstance(board, dict) or not board.get("title"):
            return 400, {"message": "Dashboard title cannot be empty"}
        uid = str(board.get("uid") or "")
        folder = body.get("folderUid")
        if folder and folder not in self.folders:
            return 400, {"message": "folder not found"}
        if uid in self.dashboards and not body.get("overwrite"):
            return 412, {"message": "A dashboard with the same uid already exists", "status": "name-exists"}
        version = self.dashboards.get(uid, {}).get("version", 0) + 1
        self.dashboards[uid] = {"dashboard": board, "folderUid": folder, "version": version}
        return 200, {"id": len(self.dashboards), "uid": uid, "url": f"/d/{uid}/x", "status": "success",
                     "version": version, "slug": "x"}

    def _create_folder(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        uid = body.get("uid") or "generated"
        if uid in self.folders:
            return 409, {"message": "a folder with the same name already exists"}
        self.folders[uid] = body["title"]
        return 200, {"uid": uid, "title": body["title"], "id": len(self.folders)}

    def _annotation(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if not isinstance(body.get("time"), int) or not isinstance(body.get("text"), str):
            return 400, {"message": "bad request data"}
        self.annotations.append(body)
        return 200, {"message": "Annotation added", "id": len(self.annotations)}

    def start(self) -> FakeGrafana:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, payload = fake.handle(Request(self.command, self.path.split("?")[0], headers, body))
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out and left (the timeout test)

            do_GET = do_POST = _serve  # noqa: N815

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
