"""Restoring detector checkpoints with the real Observers class: another model version starts cold, a changed
detector spec starts fresh (or, for a changed sensitivity only, keeps the learned state), one log line per KPI;
checkpoints of the release before (no spec) still restore; nothing crashes the restore."""

from __future__ import annotations

import logging

import orjson
import pytest

from detectors.registry import make_detector
from streams.observers import DetectorSpecLite, Observers
from streams.records import KpiValue


def test_states_of_another_version_start_cold_with_one_line_per_kpi(caplog: pytest.LogCaptureFixture) -> None:
    warm = make_detector("seasonal", "medium", seasonality="none")
    for i in range(40):
        warm.update(60.0 * i, 100.0 + i % 3)
    old = warm.to_state() | {"version": 2}  # what a worker of the previous release wrote
    records = {"gmv|region=east": orjson.dumps(warm.to_state()),
               **{f"gmv|region=r{i}": orjson.dumps(old) for i in range(50)},
               "orders|": b"{not json"}
    spec = DetectorSpecLite("seasonal", "medium", {"seasonality": "none"})
    obs = Observers(detector_specs={"gmv": spec, "orders": spec})
    with caplog.at_level(logging.WARNING, logger="kpimon.observers"):
        obs.restore(3, records)
    bank = obs.detectors[3]
    assert list(bank) == [("gmv", "region=east")], "only the current-version state is restored"
    assert bank[("gmv", "region=east")].to_state() == warm.to_state()
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2, lines
    assert any("50 series of gmv" in line and "version 2 is not supported" in line for line in lines)
    assert any("1 series of orders" in line for line in lines)


# ---- checkpoints carry their detector spec -------------------------------------------------------------------

MIN = 60_000
SPEC = DetectorSpecLite("seasonal", "medium", {"seasonality": "none"})


def _values(kpi: str, start: int, count: int) -> list[KpiValue]:
    return [KpiValue(kpi, series, (start + i) * MIN, (start + i + 1) * MIN, 100.0 + (i % 3) + 5 * k, 0)
            for i in range(count) for k, series in enumerate(("", "region=east"))]


def _warm(spec: DetectorSpecLite = SPEC, kpis: tuple[str, ...] = ("gmv",)) -> tuple[Observers, dict[str, bytes]]:
    """A worker's observers after 60 windows of each KPI, and the checkpoints they wrote (as the changelog holds
    them: the last record per key)."""
    obs = Observers(detector_specs=dict.fromkeys(kpis, spec))
    records: dict[str, bytes] = {}
    for kpi in kpis:
        obs.detect(0, _values(kpi, 0, 60))
    records.update(obs.take_checkpoints(0))
    return obs, records


def _restart(specs: dict[str, DetectorSpecLite], records: dict[str, bytes],
             caplog: pytest.LogCaptureFixture) -> tuple[Observers, list[str]]:
    caplog.clear()
    obs = Observers(detector_specs=specs)
    with caplog.at_level(logging.WARNING, logger="kpimon.observers"):
        obs.restore(0, records)
    return obs, [r.getMessage() for r in caplog.records]


def test_an_unchanged_spec_restores_every_series_exactly(caplog: pytest.LogCaptureFixture) -> None:
    before, records = _warm()
    assert set(records) == {"gmv|", "gmv|region=east"}
    assert orjson.loads(records["gmv|"])["spec"] == {"kind": "seasonal", "sensitivity": "medium",
                                                     "params": {"seasonality": "none"}}
    after, lines = _restart({"gmv": SPEC}, records, caplog)
    assert lines == []
    assert {k: d.to_state() for k, d in after.detectors[0].items()} == {
        k: d.to_state() for k, d in before.detectors[0].items()}
    verdicts = after.detect(0, _values("gmv", 60, 1))
    assert verdicts and not any(v.warming_up for _, v in verdicts), "restored warm"


def test_a_changed_sensitivity_keeps_the_learned_state_and_applies_the_new_one(
        caplog: pytest.LogCaptureFixture) -> None:
    before, records = _warm()
    high = DetectorSpecLite("seasonal", "high", {"seasonality": "none"})
    after, lines = _restart({"gmv": high}, records, caplog)
    assert len(lines) == 1, lines
    assert "gmv" in lines[0] and "sensitivity medium -> high" in lines[0] and "2 series keep" in lines[0]
    for key, det in after.detectors[0].items():
        old = before.detectors[0][key]
        assert det.threshold == make_detector("seasonal", "high").threshold != old.threshold
        assert det.to_state() | {"params": {}} == old.to_state() | {"params": {}}, "learned state kept"
    after.detect(0, _values("gmv", 60, 1))
    rewritten = dict(after.take_checkpoints(0))
    assert orjson.loads(rewritten["gmv|"])["spec"]["sensitivity"] == "high"
    assert orjson.loads(rewritten["gmv|"])["state"]["params"]["sensitivity"] == "high"


@pytest.mark.parametrize("spec", [DetectorSpecLite("gaussian", "medium", {}),
                                  DetectorSpecLite("seasonal", "medium", {"seasonality": "daily"}),
                                  DetectorSpecLite("seasonal", "high", {"seasonality": "none", "holdoff_h": 1.0})],
                         ids=["kind", "params", "params and sensitivity"])
def test_a_changed_kind_or_params_starts_every_series_fresh_with_one_line(
        spec: DetectorSpecLite, caplog: pytest.LogCaptureFixture) -> None:
    _, records = _warm(kpis=("gmv", "orders"))
    after, lines = _restart({"gmv": spec, "orders": SPEC}, records, caplog)
    assert set(after.detectors[0]) == {("orders", ""), ("orders", "region=east")}, "orders unchanged, restored"
    assert len(lines) == 1 and "gmv" in lines[0] and "2 series start fresh" in lines[0], lines
    verdicts = after.detect(0, _values("gmv", 60, 1))
    assert all(v.warming_up for _, v in verdicts), "a fresh detector of the new spec"
    assert {type(after.detectors[0][("gmv", "")]).__name__} == {type(make_detector(spec.kind)).__name__}
    rewritten = dict(after.take_checkpoints(0))
    assert orjson.loads(rewritten["gmv|"])["spec"]["kind"] == spec.kind


def _legacy(records: dict[str, bytes]) -> dict[str, bytes]:
    """The same checkpoints as the release before wrote them: the bare detector state."""
    return {k: orjson.dumps(orjson.loads(v)["state"]) for k, v in records.items()}


def test_checkpoints_of_the_release_before_restore_under_an_unchanged_spec(caplog: pytest.LogCaptureFixture) -> None:
    before, records = _warm()
    after, lines = _restart({"gmv": SPEC}, _legacy(records), caplog)
    assert lines == []
    assert {k: d.to_state() for k, d in after.detectors[0].items()} == {
        k: d.to_state() for k, d in before.detectors[0].items()}
    high = DetectorSpecLite("seasonal", "high", {"seasonality": "none"})
    after, lines = _restart({"gmv": high}, _legacy(records), caplog)
    assert len(after.detectors[0]) == 2 and len(lines) == 1 and "sensitivity medium -> high" in lines[0], lines
    daily = DetectorSpecLite("seasonal", "medium", {"seasonality": "daily"})
    after, lines = _restart({"gmv": daily}, _legacy(records), caplog)
    assert after.detectors[0] == {} and len(lines) == 1 and "2 series start fresh" in lines[0], lines


@pytest.mark.parametrize("raw", [b"[1, 2]", b'{"spec": 3, "state": {}}', b'{"spec": {"kind": "seasonal"}, "state": 1}',
                                 b'{"spec": {"kind": "seasonal", "sensitivity": "medium", "params": {}}, "state": []}',
                                 b'{"kind": "seasonal"}', b'"x"', b"null"])
def test_an_odd_checkpoint_never_crashes_the_restore(raw: bytes, caplog: pytest.LogCaptureFixture) -> None:
    _, records = _warm()
    after, lines = _restart({"gmv": SPEC}, records | {"gmv|region=odd": raw}, caplog)
    assert set(after.detectors[0]) == {("gmv", ""), ("gmv", "region=east")}
    assert len(lines) <= 1


@pytest.mark.parametrize("legacy", [False, True], ids=["checkpoint with spec", "checkpoint of the release before"])
def test_seasonal_to_calibrated_keeps_the_learned_model_with_one_line(
        legacy: bool, caplog: pytest.LogCaptureFixture) -> None:
    """The default kind became ``calibrated`` (the seasonal model plus an alarm budget): a series learned as
    ``seasonal`` keeps its model when its KPI now asks for ``calibrated`` with the same parameters (an upgrade must
    not send every detector back to its warm-up); other parameters start fresh."""
    before, records = _warm()
    calibrated = DetectorSpecLite("calibrated", "medium", {"seasonality": "none"})
    after, lines = _restart({"gmv": calibrated}, _legacy(records) if legacy else records, caplog)
    assert len(lines) == 1 and "2 series keep their learned model under the new kind" in lines[0], lines
    for key, det in after.detectors[0].items():
        assert type(det).__name__ == "CalibratedDetector"
        state = det.to_state()
        assert {k: v for k, v in state.items() if k not in ("kind", "cal")} == {
            k: v for k, v in before.detectors[0][key].to_state().items() if k != "kind"}
    verdicts = after.detect(0, _values("gmv", 60, 1))
    assert verdicts and not any(v.warming_up for _, v in verdicts), "warm under the new kind"
    other = DetectorSpecLite("calibrated", "medium", {"seasonality": "daily"})
    after, lines = _restart({"gmv": other}, records, caplog)
    assert after.detectors[0] == {} and "2 series start fresh" in lines[0], lines


# ---- the business calendar -----------------------------------------------------------------------------------

def test_the_catalog_calendar_reaches_new_and_restored_detectors_but_not_the_checkpoint() -> None:
    from catalog.calendar import CalendarSpec

    cal = CalendarSpec(builtin="cn").resolve()
    spec = DetectorSpecLite("calibrated", "medium", {})
    obs = Observers(detector_specs={"gmv": spec}, calendar=cal)
    obs.detect(0, _values("gmv", 0, 5))
    det = obs.detectors[0][("gmv", "")]
    assert det.seasonal.calendar is cal  # type: ignore[attr-defined]
    records = dict(obs.take_checkpoints(0))
    without = Observers(detector_specs={"gmv": spec})
    without.detect(0, _values("gmv", 0, 5))
    assert records == dict(without.take_checkpoints(0))  # nothing of the calendar in the checkpoint
    again = Observers(detector_specs={"gmv": spec}, calendar=cal)
    again.restore(0, records)
    assert again.detectors[0][("gmv", "")].seasonal.calendar is cal  # type: ignore[attr-defined]
    plain = Observers(detector_specs={"gmv": spec})
    plain.restore(0, records)
    assert plain.detectors[0][("gmv", "")].seasonal.calendar is None  # type: ignore[attr-defined]
