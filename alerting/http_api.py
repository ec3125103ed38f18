"""HTTP API for live tuning and alert handling (aiohttp), protected by one bearer token.

=======  =====================================  ===============================================
GET      /api/thresholds                        every rule with its effective tunable values
PUT      /api/thresholds/{kpi}/{rule}           body: fields to change, e.g. ``{"below": 80}``
GET      /api/thresholds/history?limit=N        audit trail: who, when (``at``), old, new
GET      /api/alerts                            pending / firing / resolved alerts, with acks
POST     /api/alerts/{fingerprint}/ack          body (optional): ``{"comment": "..."}``
GET      /api/silences                          all silences
POST     /api/silences                          ``{"matchers": ["team=ops"], "duration": "2h", "comment": ""}``
DELETE   /api/silences/{id}
=======  =====================================  ===============================================

Who made a change is taken from the ``X-Kpimon-User`` header (default ``api``). Errors answer
``{"error": "..."}`` with 400 (bad input), 401 (token), 404 (unknown rule/alert/silence) or 409.
"""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware

from alerting.admin import (
    AdminError,
    acknowledge,
    add_silence,
    list_thresholds,
    remove_silence,
    set_threshold,
)
from alerting.store import Store

__all__ = ["make_api"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

STORE: web.AppKey[Store] = web.AppKey("store", Store)
CLOCK: web.AppKey[Callable[[], float]] = web.AppKey("clock")


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _auth_middleware(token: str) -> Middleware:
    expected = f"Bearer {token}".encode()

    @web.middleware
    async def auth(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith("/api/"):
            return await handler(request)     # e.g. /metrics and /healthz when mounted in the worker
        given = request.headers.get("Authorization", "").encode()
        # compare_digest: the comparison time does not tell how many leading bytes were right.
        if not hmac.compare_digest(given, expected):
            resp = _error(401, "missing or wrong bearer token (Authorization: Bearer <token>)")
            resp.headers["WWW-Authenticate"] = 'Bearer realm="kpimon"'
            return resp
        try:
            return await handler(request)
        except AdminError as exc:
            return _error(exc.status, str(exc))

    return auth


async def _json_body(request: web.Request, *, optional: bool = False) -> Any:
    if optional and not request.can_read_body:
        return {}
    try:
        return await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise AdminError(f"the body must be JSON: {exc}") from None


def _who(request: web.Request) -> str:
    return request.headers.get("X-Kpimon-User", "api").strip() or "api"


def _limit(request: web.Request) -> int:
    raw = request.query.get("limit", "100")
    if not raw.isdigit() or not 0 < int(raw) <= 10_000:
        raise AdminError(f"limit must be an integer in 1..10000, got {raw!r}")
    return int(raw)


async def get_thresholds(request: web.Request) -> web.Response:
    return web.json_response(await list_thresholds(request.app[STORE]))


async def put_threshold(request: web.Request) -> web.Response:
    fields = await _json_body(request)
    if not isinstance(fields, dict):
        raise AdminError('the body must be a JSON object of fields, e.g. {"below": 80}')
    audit = await set_threshold(
        request.app[STORE],
        request.match_info["kpi"],
        request.match_info["rule"],
        fields,
        who=_who(request),
        now=request.app[CLOCK](),
        comment=request.query.get("comment", ""),
    )
    return web.json_response({"changed": audit})


async def get_history(request: web.Request) -> web.Response:
    return web.json_response(await request.app[STORE].list_audit(_limit(request), kind="threshold"))


async def get_alerts(request: web.Request) -> web.Response:
    store = request.app[STORE]
    acks = {a.fingerprint: a for a in await store.list_acks()}
    out = []
    for alert in sorted(await store.list_alerts(), key=lambda a: (a.kpi, a.rule, a.fingerprint)):
        data = alert.to_dict()
        ack = acks.get(alert.fingerprint)
        data["acked"] = ack.to_dict() if ack is not None and ack.incident == alert.starts_at else None
        out.append(data)
    return web.json_response(out)


async def post_ack(request: web.Request) -> web.Response:
    body = await _json_body(request, optional=True)
    comment = str(body.get("comment", "")) if isinstance(body, dict) else ""
    ack = await acknowledge(
        request.app[STORE],
        request.match_info["fingerprint"],
        who=_who(request),
        now=request.app[CLOCK](),
        comment=comment,
    )
    return web.json_response(ack.to_dict())


async def get_silences(request: web.Request) -> web.Response:
    return web.json_response([s.to_dict() for s in await request.app[STORE].list_silences()])


async def post_silence(request: web.Request) -> web.Response:
    silence = await add_silence(
        request.app[STORE], await _json_body(request), who=_who(request), now=request.app[CLOCK]()
    )
    return web.json_response(silence.to_dict(), status=201)


async def delete_silence(request: web.Request) -> web.Response:
    await remove_silence(
        request.app[STORE], request.match_info["id"], who=_who(request), now=request.app[CLOCK]()
    )
    return web.json_response({"deleted": request.match_info["id"]})


def make_api(store: Store, token: str, *, clock: Callable[[], float] = time.time) -> web.Application:
    """The API application over ``store``; every request needs ``Authorization: Bearer <token>``."""
    if not token or len(token) < 8:
        raise ValueError("the API token must be at least 8 characters (set KPIMON_API_TOKEN)")
    app = web.Application(middlewares=[_auth_middleware(token)])
    app[STORE] = store
    app[CLOCK] = clock
    app.router.add_get("/api/thresholds", get_thresholds)
    app.router.add_get("/api/thresholds/history", get_history)
    app.router.add_put("/api/thresholds/{kpi}/{rule}", put_threshold)
    app.router.add_get("/api/alerts", get_alerts)
    app.router.add_post("/api/alerts/{fingerprint}/ack", post_ack)
    app.router.add_get("/api/silences", get_silences)
    app.router.add_post("/api/silences", post_silence)
    app.router.add_delete("/api/silences/{id}", delete_silence)
    return app
