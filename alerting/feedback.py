"""Feedback on an alert: was it a true alarm, a false alarm, or expected (and why)?

One feedback per alert *incident* (its fingerprint and ``starts_at``): submitting the same verdict and reason
again changes nothing (the CLI, the API and a message link may all be used for one alert, and a link may be
clicked twice); a different verdict or reason replaces the record and is audited as a change (``previous``).
The record is kept apart from the alert state, so it outlives the alert's resolution: the periodic review reads it
later, and a verdict can still be changed by giving the incident.

Every write appends an audit entry ``{"kind": "feedback", "verdict", "reason", "fingerprint", "kpi", "rule",
"labels", "incident", "raised", "value", "previous", "who", "at"}`` (``raised``: the window the alert was raised
on, ``{"start", "end", "value"}``), the contract the review digest reads. The store also numbers each write
(``seq``), so the workers can hand feedback to the series' detectors once (see :meth:`Store.feedback_since`):
the record names the rule's type (``rule_type``), and a verdict on an ``anomaly`` rule's alert is taught to the
detector of its series (:meth:`detectors.base.Detector.learn_label` with the raised window's end and value).

``expected`` needs a reason (``"promotion"``): it says which occasion explains the deviation. It also leaves a
*calendar note* (:meth:`Store.put_calendar_note`: the raised window's end, the KPI, the reason), which the workers
merge into the detectors' business calendar as a promotion day named by the reason, so the rest of that day is
judged (and learned) as one; a later verdict other than ``expected`` takes the note back.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from alerting.admin import AdminError
from alerting.lifecycle import AlertState
from alerting.store import Store, feedback_key

__all__ = ["VERDICTS", "feedback_key", "parse_verdict", "record_feedback"]

VERDICTS = ("true_alarm", "false_alarm", "expected")
_ALIASES = {"true": "true_alarm", "false": "false_alarm", "true_alarm": "true_alarm",
            "false_alarm": "false_alarm", "expected": "expected"}
_MAX_REASON = 500
_RETRIES = 3  # a concurrent submission for the same incident: re-read and try again


def parse_verdict(text: str) -> str:
    """``true``/``false``/``expected`` (or the full names) -> the verdict; AdminError otherwise.

    >>> parse_verdict("false")
    'false_alarm'
    """
    verdict = _ALIASES.get(str(text).strip().lower())
    if verdict is None:
        raise AdminError(f"verdict must be one of true_alarm, false_alarm, expected (or true, false), got {text!r}")
    return verdict


def _identity(record: Mapping[str, Any] | None) -> str:
    """What makes two submissions the same: the verdict and the reason (not who or when)."""
    return "" if record is None else f"{record['verdict']}\n{record.get('reason', '')}"


_SUBJECT = ("fingerprint", "incident", "kpi", "rule", "rule_type", "series", "labels", "raised")


async def _from_alert(store: Store, alert: AlertState) -> dict[str, Any]:
    raised = alert.raised or {"start": alert.window_start, "end": alert.window_end, "value": alert.value}
    rule = (await store.get_rules()).get((alert.kpi, alert.rule), {})
    return {"fingerprint": alert.fingerprint, "incident": alert.starts_at, "kpi": alert.kpi, "rule": alert.rule,
            "rule_type": str(rule.get("type", "")),  # an anomaly rule's verdicts are its detector's to learn
            "series": dict(alert.series), "labels": dict(alert.labels),
            "raised": {"start": raised["start"], "end": raised["end"], "value": raised["value"]}}


async def _subject(store: Store, fingerprint: str, incident: float | None) -> dict[str, Any]:
    """What the feedback is about: the alert's current incident, or a given incident's earlier record."""
    alert = await store.get_alert(fingerprint)
    if alert is not None and alert.starts_at is not None and incident in (None, alert.starts_at):
        return await _from_alert(store, alert)
    if incident is not None:
        old = await store.get_feedback(fingerprint, incident)
        if old is not None:
            return {k: old.get(k, "") for k in _SUBJECT}
        raise AdminError(f"alert {fingerprint} has no incident starting at {incident!r} with feedback", 404)
    if alert is None:
        raise AdminError(f"no active alert with fingerprint {fingerprint!r} (list them: kpimon alerts list, or GET /api/alerts)", 404)
    raise AdminError(f"alert {fingerprint} is {alert.state} and never fired: nothing to give feedback on", 409)


async def _note(store: Store, record: Mapping[str, Any], old: Mapping[str, Any] | None) -> None:
    """Keep the incident's calendar note in step with its verdict: "expected" notes the occasion (the raised
    window's end, the KPI, the reason); a verdict that is no longer "expected" takes its note back."""
    key = feedback_key(record["fingerprint"], record["incident"])
    if record["verdict"] == "expected":
        await store.put_calendar_note(key, {
            "ts": record["raised"]["end"], "kpi": record["kpi"], "reason": record["reason"],
            "fingerprint": record["fingerprint"], "incident": record["incident"], "who": record["who"],
            "at": record["at"]})  # fmt: skip
    elif old is not None and old.get("verdict") == "expected":
        await store.put_calendar_note(key, None)


async def record_feedback(
    store: Store,
    fingerprint: str,
    verdict: str,
    *,
    reason: str = "",
    who: str,
    now: float,
    incident: float | None = None,
    on_behalf_of: str = "",
) -> tuple[dict[str, Any], bool]:
    """Record ``verdict`` on the alert's incident (the current one, or ``incident``).

    Returns (the stored record, whether this call wrote it): ``False`` when the same verdict and reason were
    already recorded. Raises :class:`AdminError` for a bad verdict, a missing reason on ``expected``, or an alert
    (incident) that is not known.
    """
    verdict = parse_verdict(verdict)
    reason = str(reason).strip()
    if not who.strip():
        raise AdminError("who gives the feedback? (--who)")
    if verdict == "expected" and not reason:
        raise AdminError('"expected" needs a reason, e.g. --reason promotion (what explains it)')
    if len(reason) > _MAX_REASON:
        raise AdminError(f"the reason is too long ({len(reason)} characters; at most {_MAX_REASON})")
    subject = await _subject(store, fingerprint, incident)
    for _ in range(_RETRIES):
        old = await store.get_feedback(fingerprint, subject["incident"])
        record = {**subject, "verdict": verdict, "reason": reason, "who": who, "at": now}
        if _identity(old) == _identity(record):
            assert old is not None
            return old, False
        audit = {
            "kind": "feedback", "verdict": verdict, "reason": reason, "fingerprint": fingerprint,
            "kpi": subject["kpi"], "rule": subject["rule"], "labels": subject["labels"],
            "incident": subject["incident"], "raised": subject["raised"], "value": subject["raised"]["value"],
            "previous": None if old is None else old["verdict"], "who": who, "at": now,
        }  # fmt: skip
        if on_behalf_of:
            audit["on_behalf_of"] = on_behalf_of
        seq = await store.put_feedback(record, audit, expect=_identity(old), identity=_identity(record))
        if seq > 0:
            await _note(store, record, old)
            return {**record, "seq": seq}, True
        if seq == 0:  # someone else just recorded exactly this
            return await store.get_feedback(fingerprint, subject["incident"]) or record, False
    raise AdminError(f"feedback on {fingerprint} is changing concurrently; try again", 409)
