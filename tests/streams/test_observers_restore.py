"""Restoring detector checkpoints: another model version starts cold, with one log line per KPI."""

from __future__ import annotations

import logging

import orjson
import pytest

from detectors.registry import make_detector
from streams.observers import DetectorSpecLite, Observers


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
