"""Feedback on alerts (alerting.feedback) over both stores: lands once, a change replaces it, always audited."""

from __future__ import annotations

from dataclasses import replace

import pytest

from alerting.admin import AdminError
from alerting.feedback import record_feedback
from alerting.lifecycle import AlertState, advance, new_state
from alerting.store import Store

AUDIT_FIELDS = {"kind", "verdict", "reason", "fingerprint", "kpi", "rule", "labels", "incident", "raised", "value",
                "previous", "who", "at"}


def firing(starts: float = 1000.0) -> AlertState:
    state = advance(new_state("orders", "dip", {"region": "east"}, {"kpi": "orders", "region": "east"}, "warning"),
                    True, now=starts, for_s=0, keep_s=0)
    return replace(state, value=3.0, window_start=starts - 60, window_end=starts,
                   raised={"start": starts - 60, "end": starts, "value": 3.0, "at": starts})


async def test_same_feedback_twice_lands_once(store: Store) -> None:
    alert = firing()
    await store.put_alert(alert)
    record, wrote = await record_feedback(store, alert.fingerprint, "false", who="ann", now=2000.0)
    again, wrote_again = await record_feedback(store, alert.fingerprint, "false_alarm", who="bob", now=2100.0)
    assert wrote and not wrote_again
    assert again == record and record["who"] == "ann" and record["seq"] == 1
    [entry] = await store.list_audit(kind="feedback")
    assert set(entry) == AUDIT_FIELDS
    assert entry == {
        "kind": "feedback", "verdict": "false_alarm", "reason": "", "fingerprint": alert.fingerprint,
        "kpi": "orders", "rule": "dip", "labels": {"kpi": "orders", "region": "east"}, "incident": 1000.0,
        "raised": {"start": 940.0, "end": 1000.0, "value": 3.0}, "value": 3.0, "previous": None,
        "who": "ann", "at": 2000.0,
    }  # fmt: skip
    assert [r["seq"] for r in await store.feedback_since(0)] == [1]


async def test_a_changed_verdict_replaces_and_is_audited_as_a_change(store: Store) -> None:
    alert = firing()
    await store.put_alert(alert)
    await record_feedback(store, alert.fingerprint, "true", who="ann", now=2000.0)
    record, wrote = await record_feedback(store, alert.fingerprint, "expected", reason="promotion", who="bob",
                                          now=2100.0, on_behalf_of="carol")
    assert wrote and record["verdict"] == "expected" and record["reason"] == "promotion"
    stored = await store.get_feedback(alert.fingerprint, 1000.0)
    assert stored is not None and stored["verdict"] == "expected" and stored["seq"] == 2
    newest, oldest = await store.list_audit(kind="feedback")
    assert (oldest["verdict"], oldest["previous"]) == ("true_alarm", None)
    assert (newest["verdict"], newest["previous"], newest["reason"], newest["on_behalf_of"]) == (
        "expected", "true_alarm", "promotion", "carol")
    assert [(r["seq"], r["verdict"]) for r in await store.feedback_since(0)] == [(1, "true_alarm"), (2, "expected")]
    assert [r["seq"] for r in await store.feedback_since(1)] == [2]


async def test_feedback_outlives_the_alert_and_can_still_be_changed(store: Store) -> None:
    alert = firing()
    await store.put_alert(alert)
    await record_feedback(store, alert.fingerprint, "true", who="ann", now=2000.0)
    await store.delete_alert(alert.fingerprint)  # resolved and told
    with pytest.raises(AdminError) as missing:
        await record_feedback(store, alert.fingerprint, "false", who="ann", now=3000.0)
    assert missing.value.status == 404
    record, wrote = await record_feedback(store, alert.fingerprint, "false", who="ann", now=3000.0, incident=1000.0)
    assert wrote and record["kpi"] == "orders" and record["raised"]["value"] == 3.0
    with pytest.raises(AdminError) as other:
        await record_feedback(store, alert.fingerprint, "false", who="ann", now=3000.0, incident=999.0)
    assert other.value.status == 404


async def test_a_new_incident_gets_its_own_feedback(store: Store) -> None:
    await store.put_alert(firing(1000.0))
    await record_feedback(store, firing().fingerprint, "false", who="ann", now=1100.0)
    await store.put_alert(firing(5000.0))
    _, wrote = await record_feedback(store, firing().fingerprint, "false", who="ann", now=5100.0)
    assert wrote
    assert len(await store.list_audit(kind="feedback")) == 2


async def test_refusals_write_nothing(store: Store) -> None:
    alert = firing()
    await store.put_alert(alert)
    pending = new_state("orders", "other", {}, {"kpi": "orders"}, "warning")
    await store.put_alert(advance(pending, True, now=10.0, for_s=600, keep_s=0))
    cases = [
        (alert.fingerprint, "maybe", "ann", 400),
        (alert.fingerprint, "expected", "ann", 400),            # expected needs a reason
        (alert.fingerprint, "false", " ", 400),
        ("nope", "false", "ann", 404),
        (pending.fingerprint, "false", "ann", 409),             # never fired
    ]
    for fp, verdict, who, status in cases:
        with pytest.raises(AdminError) as exc:
            await record_feedback(store, fp, verdict, who=who, now=1.0)
        assert exc.value.status == status, (fp, verdict)
    assert await store.list_audit() == [] and await store.feedback_since(0) == []


async def test_put_feedback_is_compare_and_set(store: Store) -> None:
    record = {"fingerprint": "f", "incident": 1.0, "verdict": "true_alarm", "reason": ""}
    audit = {"kind": "feedback"}
    assert await store.put_feedback(record, audit, expect="x", identity="true_alarm\n") == -1
    assert await store.put_feedback(record, audit, expect="", identity="true_alarm\n") == 1
    assert await store.put_feedback(record, audit, expect="", identity="true_alarm\n") == 0
    assert await store.put_feedback(record, audit, expect="", identity="false_alarm\n") == -1
    assert len(await store.list_audit()) == 1


async def test_expected_leaves_a_calendar_note_that_a_changed_verdict_takes_back(store: Store) -> None:
    alert = firing()
    await store.put_alert(alert)
    version = await store.calendar_notes_version()
    await record_feedback(store, alert.fingerprint, "expected", reason="promotion", who="ann", now=2000.0)
    [note] = await store.list_calendar_notes()
    assert (note["ts"], note["kpi"], note["reason"], note["who"]) == (1000.0, "orders", "promotion", "ann")
    assert await store.calendar_notes_version() > version
    await record_feedback(store, alert.fingerprint, "expected", reason="promotion", who="bob", now=2100.0)
    assert [n["who"] for n in await store.list_calendar_notes()] == ["ann"]   # landed once
    await record_feedback(store, alert.fingerprint, "false", who="ann", now=2200.0)
    assert await store.list_calendar_notes() == []
