"""HTTP API for live tuning and alert handling (aiohttp), protected by bearer tokens.

=======  =====================================  ===============================================
GET      /api/thresholds                        every rule with its effective tunable values
PUT      /api/thresholds/{kpi}/{rule}           body: fields to change, e.g. ``{"below": 80}``;
                                               ``?dry_run=7d``: apply nothing, answer the backtest of the
                                               change over the last 7 days (audited as a dry run);
                                               ``?backtest=7d``: the same backtest, then apply (audit keeps it)
GET      /api/thresholds/history?limit=N        audit trail: who, when (``at``), old, new
GET      /api/alerts                            pending / firing / resolved alerts, with acks
POST     /api/alerts/{fingerprint}/ack          body (optional): ``{"comment": "..."}``
POST     /api/alerts/{fingerprint}/feedback     ``{"verdict": "false_alarm", "reason": "", "incident"?: …}``
                                                201 recorded, 200 the same was recorded before
GET      /api/silences                          all silences
POST     /api/silences                          ``{"matchers": ["team=ops"], "duration": "2h", "comment": ""}``
DELETE   /api/silences/{id}
=======  =====================================  ===============================================

Who made a change is the caller the token belongs to (see :func:`parse_api_tokens`): one plain token is caller
``api-token``; ``name:token`` pairs give each operator or tool its own name. What the client says about itself
(``X-Kpimon-User`` header or ``?who=``) never replaces that; it is recorded as ``on_behalf_of`` beside it.
Bodies are strict JSON: ``NaN`` and ``Infinity`` are refused. Errors answer ``{"error": "..."}`` with 400 (bad
input), 401 (token), 404 (unknown rule/alert/silence) or 409; no answer ever contains a token.
"""

from __future__ import annotations

import hmac
import json
import math
import re
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
    proposed_overrides,
    record_dry_run,
    remove_silence,
    set_threshold,
)
from alerting.feedback import record_feedback
from alerting.store import Store
from catalog.durations import parse_duration

__all__ = ["MIN_TOKEN_CHARS", "make_api", "parse_api_tokens"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

STORE: web.AppKey[Store] = web.AppKey("store", Store)
CLOCK: web.AppKey[Callable[[], float]] = web.AppKey("clock")
CALLER: web.RequestKey[str] = web.RequestKey("caller", str)   # who the bearer token belongs to
#: (kpi, rule, overrides now, overrides with the change, seconds back) -> the backtest figures
#: (``streams.backtest.dry_run``); given by the shell, which can read the worker's kpi.values
DryRun = Callable[[str, str, dict[Any, Any], dict[Any, Any], float], Awaitable[dict[str, Any]]]
DRY_RUN: web.AppKey[DryRun | None] = web.AppKey("dry_run")
MAX_DRY_RUN_S = 90 * 86400.0

#: Shorter tokens are refused: 16 random URL-safe characters are ~96 bits.
MIN_TOKEN_CHARS = 16
_CALLER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


def parse_api_tokens(spec: str) -> dict[str, str]:
    """Token -> caller name from ``spec``: one plain token (caller ``api-token``) or ``name:token`` entries
    separated by newlines or commas (a token file: one per line, ``#`` comments and blank lines ignored).

    Raises ValueError with a message that never contains a token.

    Examples
    --------
    >>> parse_api_tokens("ann:0123456789abcdef, ci:fedcba9876543210")
    {'0123456789abcdef': 'ann', 'fedcba9876543210': 'ci'}
    >>> parse_api_tokens("0123456789abcdef")
    {'0123456789abcdef': 'api-token'}
    """
    entries = [e.strip() for line in spec.splitlines() for e in line.split(",")]
    entries = [e for e in entries if e and not e.startswith("#")]
    if not entries:
        raise ValueError("no API token given")
    if len(entries) == 1 and ":" not in entries[0]:
        entries = [f"api-token:{entries[0]}"]
    tokens: dict[str, str] = {}
    for n, entry in enumerate(entries, 1):
        name, sep, token = (part.strip() for part in entry.partition(":"))
        if not sep:
            raise ValueError(f"API token entry {n}: with several tokens give each as name:token")
        if not _CALLER_NAME.match(name):
            raise ValueError(f"API token entry {n}: bad caller name (letters, digits, . _ @ -; up to 64)")
        if len(token) < MIN_TOKEN_CHARS:
            raise ValueError(f"API token of {name!r} is too short: use at least {MIN_TOKEN_CHARS} characters, e.g. "
                             "python -c 'import secrets; print(secrets.token_urlsafe(32))'")
        if name in tokens.values():
            raise ValueError(f"API token entry {n}: caller {name!r} is given twice")
        if token in tokens:
            raise ValueError(f"API token entry {n}: {name!r} has the same token as {tokens[token]!r}")
        tokens[token] = name
    return tokens


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _caller(tokens: dict[str, str], header: str) -> str | None:
    """The caller whose token ``header`` carries. compare_digest against every token, without stopping at a
    match: the time taken does not tell how many leading bytes were right, nor which token matched."""
    given = header.encode()
    found = None
    for token, name in tokens.items():
        if hmac.compare_digest(given, f"Bearer {token}".encode()):
            found = name
    return found


def _auth_middleware(tokens: dict[str, str]) -> Middleware:
    @web.middleware
    async def auth(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith("/api/"):
            return await handler(request)     # e.g. /metrics and /healthz when mounted in the worker
        caller = _caller(tokens, request.headers.get("Authorization", ""))
        if caller is None:
            resp = _error(401, "missing or wrong bearer token (Authorization: Bearer <token>)")
            resp.headers["WWW-Authenticate"] = 'Bearer realm="kpimon"'
            return resp
        request[CALLER] = caller
        try:
            return await handler(request)
        except AdminError as exc:
            return _error(exc.status, str(exc))

    return auth


def _no_constant(name: str) -> Any:
    raise AdminError(f"{name} is not a number here: give finite numbers only")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise AdminError(f"{text} is out of range: give finite numbers only")
    return value


async def _json_body(request: web.Request, *, optional: bool = False) -> Any:
    """The body as strict JSON: Python's json would take NaN, Infinity and 1e999 (= inf) as numbers."""
    if optional and not request.can_read_body:
        return {}
    try:
        return json.loads(await request.text(), parse_constant=_no_constant, parse_float=_finite_float)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise AdminError(f"the body must be JSON: {exc}") from None


def _who(request: web.Request) -> str:
    """The authenticated caller (set by the auth middleware from the token)."""
    return request[CALLER]


def _on_behalf_of(request: web.Request) -> str:
    """Who the client says it acts for (``X-Kpimon-User`` or ``?who=``): a note beside the caller, no more."""
    claim = (request.headers.get("X-Kpimon-User") or request.query.get("who") or "").strip()[:100]
    return "" if claim == _who(request) else claim


def _limit(request: web.Request) -> int:
    raw = request.query.get("limit", "100")
    if not raw.isdigit() or not 0 < int(raw) <= 10_000:
        raise AdminError(f"limit must be an integer in 1..10000, got {raw!r}")
    return int(raw)


async def get_thresholds(request: web.Request) -> web.Response:
    return web.json_response(await list_thresholds(request.app[STORE]))


def _span(request: web.Request, name: str) -> float | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    try:
        seconds = parse_duration(raw)
    except ValueError as exc:
        raise AdminError(f"{name}: {exc} (e.g. 7d)") from None
    if not 0 < seconds <= MAX_DRY_RUN_S:
        raise AdminError(f"{name}: give a span of up to 90d, e.g. 7d")
    return seconds


async def put_threshold(request: web.Request) -> web.Response:
    fields = await _json_body(request)
    if not isinstance(fields, dict):
        raise AdminError('the body must be a JSON object of fields, e.g. {"below": 80}')
    kpi, rule, store = request.match_info["kpi"], request.match_info["rule"], request.app[STORE]
    dry, then_apply = _span(request, "dry_run"), _span(request, "backtest")
    if dry is not None and then_apply is not None:
        raise AdminError("give dry_run (apply nothing) or backtest (then apply), not both")
    figures = None
    if dry is not None or then_apply is not None:
        backtester = request.app[DRY_RUN]
        if backtester is None:
            raise AdminError("this API has no backtest (it needs the worker's kpi.values); run "
                             "`kpimon threshold set … --dry-run 7d -c CATALOG`", status=501)
        current, proposed = await proposed_overrides(store, kpi, rule, fields)
        try:
            figures = await backtester(kpi, rule, current, proposed, dry or then_apply or 0.0)
        except (ConnectionError, LookupError, ValueError) as exc:
            raise AdminError(f"cannot backtest: {exc}", status=503) from None
    if dry is not None:
        assert figures is not None
        entry = await record_dry_run(store, kpi, rule, fields, figures, who=_who(request), now=request.app[CLOCK](),
                                     comment=request.query.get("comment", ""), on_behalf_of=_on_behalf_of(request))
        return web.json_response({"applied": False, "backtest": figures, "audit": entry})
    audit = await set_threshold(
        store,
        kpi,
        rule,
        fields,
        who=_who(request),
        now=request.app[CLOCK](),
        comment=request.query.get("comment", ""),
        on_behalf_of=_on_behalf_of(request),
        backtest=figures,
    )
    return web.json_response({"changed": audit} | ({"backtest": figures} if figures is not None else {}))


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
        on_behalf_of=_on_behalf_of(request),
    )
    return web.json_response(ack.to_dict())


async def post_feedback(request: web.Request) -> web.Response:
    body = await _json_body(request)
    if not isinstance(body, dict) or not isinstance(body.get("verdict"), str):
        raise AdminError('give {"verdict": "true_alarm" | "false_alarm" | "expected", "reason": "..."}')
    reason, incident = body.get("reason", ""), body.get("incident")
    if not isinstance(reason, str):
        raise AdminError(f"reason must be a string, got {reason!r}")
    if incident is not None and (isinstance(incident, bool) or not isinstance(incident, int | float)):
        raise AdminError(f"incident must be the alert's starts_at (epoch seconds), got {incident!r}")
    record, wrote = await record_feedback(
        request.app[STORE],
        request.match_info["fingerprint"],
        body["verdict"],
        reason=reason,
        who=_who(request),
        now=request.app[CLOCK](),
        incident=None if incident is None else float(incident),
        on_behalf_of=_on_behalf_of(request),
    )
    return web.json_response({"feedback": record, "recorded": wrote}, status=201 if wrote else 200)


async def get_silences(request: web.Request) -> web.Response:
    return web.json_response([s.to_dict() for s in await request.app[STORE].list_silences()])


async def post_silence(request: web.Request) -> web.Response:
    silence = await add_silence(
        request.app[STORE],
        await _json_body(request),
        who=_who(request),
        now=request.app[CLOCK](),
        on_behalf_of=_on_behalf_of(request),
    )
    return web.json_response(silence.to_dict(), status=201)


async def delete_silence(request: web.Request) -> web.Response:
    await remove_silence(
        request.app[STORE],
        request.match_info["id"],
        who=_who(request),
        now=request.app[CLOCK](),
        on_behalf_of=_on_behalf_of(request),
    )
    return web.json_response({"deleted": request.match_info["id"]})


def make_api(store: Store, tokens: str, *, clock: Callable[[], float] = time.time,
             dry_run: DryRun | None = None) -> web.Application:
    """The API application over ``store``; every request needs ``Authorization: Bearer <token>`` with one of
    ``tokens`` (a :func:`parse_api_tokens` spec; raises ValueError when it is refused). ``dry_run`` answers
    ``?dry_run=`` / ``?backtest=`` (501 without it)."""
    app = web.Application(middlewares=[_auth_middleware(parse_api_tokens(tokens))])
    app[STORE] = store
    app[CLOCK] = clock
    app[DRY_RUN] = dry_run
    app.router.add_get("/api/thresholds", get_thresholds)
    app.router.add_get("/api/thresholds/history", get_history)
    app.router.add_put("/api/thresholds/{kpi}/{rule}", put_threshold)
    app.router.add_get("/api/alerts", get_alerts)
    app.router.add_post("/api/alerts/{fingerprint}/ack", post_ack)
    app.router.add_post("/api/alerts/{fingerprint}/feedback", post_feedback)
    app.router.add_get("/api/silences", get_silences)
    app.router.add_post("/api/silences", post_silence)
    app.router.add_delete("/api/silences/{id}", delete_silence)
    return app
