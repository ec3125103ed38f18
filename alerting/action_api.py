"""``/act/<token>``: the page behind a message's ack / silence / false-alarm link (see :mod:`alerting.actions`).

``GET`` says what the link will do and offers one button; only ``POST`` acts, so chat clients and mail
scanners that fetch links for a preview change nothing. The token is the credential (signed, one incident,
expires); no bearer token is needed. Every action is audited with ``who = "message link"``. A false alarm
acknowledges the alert and is recorded as ``{"kind": "feedback", "verdict": "false_alarm"}`` in the audit log
for the periodic review.

=======  ===============  ===========================================================================
GET      /act/{token}     a confirmation page (200), 403 for a forged or expired link
POST     /act/{token}     do it: 200 done, 403 bad link, 404 alert gone, 409 not firing / a later incident
=======  ===============  ===========================================================================
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable

from aiohttp import web

from alerting.actions import SILENCE_S, ActionLinks, ActionRequest
from alerting.admin import AdminError, acknowledge, add_silence
from alerting.lifecycle import AlertState
from alerting.store import Store

__all__ = ["add_action_routes"]

WHO = "message link"
_STORE: web.AppKey[Store] = web.AppKey("action_store", Store)
_LINKS: web.AppKey[ActionLinks] = web.AppKey("action_links", ActionLinks)
_CLOCK: web.AppKey[Callable[[], float]] = web.AppKey("action_clock")

_WHAT = {
    "ack": ("Acknowledge", "确认", "stops reminders and escalation of this incident"),
    "silence": ("Silence 2 h", "静默 2 小时", "mutes this series of this rule for two hours"),
    "false_alarm": ("False alarm", "误报", "acknowledges it and records it as a false alarm for the review"),
}


def _page(status: int, heading: str, body: str = "") -> web.Response:
    doc = (
        '<!DOCTYPE html><html><head><meta charset="utf-8"><meta name="robots" content="noindex"></head>'
        f'<body style="font-family:sans-serif"><h2>{html.escape(heading)}</h2>{body}</body></html>'
    )
    return web.Response(status=status, text=doc, content_type="text/html")


def _describe(alert: AlertState) -> str:
    series = ", ".join(f"{k}={v}" for k, v in sorted(alert.series.items())) or "total"
    return f"{alert.kpi} · {alert.rule} · {series}"


async def _request(request: web.Request) -> tuple[ActionRequest, AlertState] | web.Response:
    app = request.app
    found = app[_LINKS].verify(request.match_info["token"], now=app[_CLOCK]())
    if found is None:
        return _page(403, "This link is not valid or has expired / 链接无效或已过期")
    alert = await app[_STORE].get_alert(found.fingerprint)
    if alert is None:
        return _page(404, "This alert is no longer active / 该告警已不存在")
    if alert.state != "firing" or alert.starts_at != found.incident:
        return _page(409, "This alert has resolved or fired again since / 该告警已恢复或已再次触发")
    return found, alert


async def get_action(request: web.Request) -> web.Response:
    got = await _request(request)
    if isinstance(got, web.Response):
        return got
    found, alert = got
    en, zh, what = _WHAT[found.action]
    form = (
        f"<p>{html.escape(_describe(alert))}</p><p>{html.escape(what)}</p>"
        f'<form method="post"><button type="submit">{html.escape(f"{en} / {zh}")}</button></form>'
    )
    return _page(200, f"{en} / {zh}?", form)


async def post_action(request: web.Request) -> web.Response:
    got = await _request(request)
    if isinstance(got, web.Response):
        return got
    found, alert = got
    store, now = request.app[_STORE], request.app[_CLOCK]()
    try:
        if found.action == "silence":
            matchers = [f"alertname={alert.rule}", f"kpi={alert.kpi}", *(f"{k}={v}" for k, v in alert.series.items())]
            await add_silence(
                store, {"matchers": matchers, "duration": SILENCE_S, "comment": "from a message link"}, who=WHO, now=now
            )
        else:
            comment = "false alarm" if found.action == "false_alarm" else "acknowledged from a message link"
            await acknowledge(store, alert.fingerprint, who=WHO, now=now, comment=comment)
        if found.action == "false_alarm":
            await store.append_audit({
                "kind": "feedback", "verdict": "false_alarm", "fingerprint": alert.fingerprint, "kpi": alert.kpi,
                "rule": alert.rule, "labels": dict(alert.labels), "incident": alert.starts_at, "who": WHO, "at": now,
            })  # fmt: skip
    except AdminError as exc:
        return _page(exc.status, str(exc))
    en, zh, _ = _WHAT[found.action]
    return _page(200, f"Done: {en} / 已{zh}", f"<p>{html.escape(_describe(alert))}</p>")


def add_action_routes(
    app: web.Application, store: Store, links: ActionLinks, *, clock: Callable[[], float] = time.time
) -> None:
    """Mount ``/act/{token}`` on ``app`` (the worker's HTTP port)."""
    app[_STORE], app[_LINKS], app[_CLOCK] = store, links, clock
    app.router.add_get("/act/{token}", get_action)
    app.router.add_post("/act/{token}", post_action)
