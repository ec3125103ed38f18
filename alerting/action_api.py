"""``/act/<token>``: the page behind a message's ack / silence / feedback link (see :mod:`alerting.actions`).

``GET`` says what the link will do and offers one button; only ``POST`` acts, so chat clients and mail
scanners that fetch links for a preview change nothing. The token is the credential (signed, one incident,
expires); no bearer token is needed. Every action is audited with ``who = "message link"``.

The feedback links (true alarm, false alarm, expected) record the verdict on the link's incident through
:func:`alerting.feedback.record_feedback` (lands once; audited as ``{"kind": "feedback", ...}`` for the
review), also after the alert resolved. "Expected" asks for the reason in the form. A false alarm or an
expected deviation also acknowledges the alert while it fires (nobody needs to act on it).

=======  ===============  =================================================================================
GET      /act/{token}     a confirmation page (200), 403 for a forged or expired link
POST     /act/{token}     do it: 200 done, 400 no reason given for "expected", 403 bad link, 404 alert gone,
                          409 not firing / a later incident (ack and silence only)
=======  ===============  =================================================================================
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable

from aiohttp import web

from alerting.actions import FEEDBACK_ACTIONS, SILENCE_S, ActionLinks, ActionRequest
from alerting.admin import AdminError, acknowledge, add_silence
from alerting.feedback import record_feedback
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
    "true_alarm": ("True alarm", "有效告警", "records that this alert was right, for the review"),
    "false_alarm": ("False alarm", "误报", "acknowledges it, records it as a false alarm for the review and, "
                    "for an anomaly alert, teaches the detector that the value was normal"),
    "expected": ("Expected deviation", "符合预期", "acknowledges it and records the deviation as expected, with the reason"),
}
_ACK_TOO = frozenset({"false_alarm", "expected"})  # nothing to act on: stop reminders and escalation too
_REASON_FIELD = (
    '<p><label>Reason / 原因 (e.g. "promotion" / 例如“促销”): '
    '<input name="reason" required maxlength="500" size="40"></label></p>'
)


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
    store = app[_STORE]
    alert = await store.get_alert(found.fingerprint)
    if found.action in FEEDBACK_ACTIONS:  # feedback is welcome after the alert resolved too
        if alert is not None and alert.starts_at == found.incident:
            return found, alert
        old = await store.get_feedback(found.fingerprint, found.incident)
        if old is not None:
            return found, AlertState(found.fingerprint, old["kpi"], old["rule"], old["series"], old["labels"], "",
                                     "resolved", starts_at=found.incident)
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
    reason = _REASON_FIELD if found.action == "expected" else ""
    form = (
        f"<p>{html.escape(_describe(alert))}</p><p>{html.escape(what)}</p>"
        f'<form method="post">{reason}<button type="submit">{html.escape(f"{en} / {zh}")}</button></form>'
    )
    return _page(200, f"{en} / {zh}?", form)


async def _acked(store: Store, alert: AlertState) -> bool:
    return any(a.fingerprint == alert.fingerprint and a.incident == alert.starts_at for a in await store.list_acks())


async def _feedback(request: web.Request, found: ActionRequest, alert: AlertState, now: float) -> bool:
    """Record the link's verdict (and acknowledge a firing false alarm / expected alert); ``True`` if new."""
    store = request.app[_STORE]
    form = await request.post()
    reason = str(form.get("reason", ""))
    _, wrote = await record_feedback(store, alert.fingerprint, found.action, reason=reason, who=WHO, now=now,
                                     incident=found.incident)
    if found.action in _ACK_TOO and alert.state == "firing" and not await _acked(store, alert):
        comment = "false alarm" if found.action == "false_alarm" else f"expected: {reason.strip()}"
        await acknowledge(store, alert.fingerprint, who=WHO, now=now, comment=comment)
    return wrote


async def post_action(request: web.Request) -> web.Response:
    got = await _request(request)
    if isinstance(got, web.Response):
        return got
    found, alert = got
    store, now = request.app[_STORE], request.app[_CLOCK]()
    en, zh, _ = _WHAT[found.action]
    done = f"Done: {en} / 已{zh}"
    try:
        if found.action in FEEDBACK_ACTIONS:
            new = await _feedback(request, found, alert, now)
            done = f"Recorded: {en} / 已记录：{zh}" if new else f"Already recorded: {en} / 已记录过：{zh}"
        elif found.action == "silence":
            matchers = [f"alertname={alert.rule}", f"kpi={alert.kpi}", *(f"{k}={v}" for k, v in alert.series.items())]
            await add_silence(
                store, {"matchers": matchers, "duration": SILENCE_S, "comment": "from a message link"}, who=WHO, now=now
            )
        else:
            await acknowledge(store, alert.fingerprint, who=WHO, now=now, comment="acknowledged from a message link")
    except AdminError as exc:
        return _page(exc.status, str(exc))
    return _page(200, done, f"<p>{html.escape(_describe(alert))}</p>")


def add_action_routes(
    app: web.Application, store: Store, links: ActionLinks, *, clock: Callable[[], float] = time.time
) -> None:
    """Mount ``/act/{token}`` on ``app`` (the worker's HTTP port)."""
    app[_STORE], app[_LINKS], app[_CLOCK] = store, links, clock
    app.router.add_get("/act/{token}", get_action)
    app.router.add_post("/act/{token}", post_action)
