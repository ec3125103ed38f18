"""The registry: names, errors, and restoring by kind."""

from __future__ import annotations

import json

import pytest

import detectors
from detectors.base import Detector, DetectorError
from detectors.registry import DEFAULT_KIND, KINDS, SENSITIVITIES, make_detector, restore_detector


def test_default_kind_is_calibrated() -> None:
    det = make_detector()
    assert det.to_state()["kind"] == "calibrated" == DEFAULT_KIND
    assert isinstance(det, Detector)


def test_expected_kinds_are_registered() -> None:
    assert {"calibrated", "seasonal", "hst", "gaussian", "predictive"} <= set(KINDS)
    assert SENSITIVITIES == ("low", "medium", "high")


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_restores_by_its_kind(kind: str) -> None:
    det = make_detector(kind, "low")
    for i in range(40):
        det.update(60.0 * i, float(i % 5))
    clone = restore_detector(json.loads(json.dumps(det.to_state())))
    assert type(clone) is type(det)
    assert clone.update(2400.0, 3.0) == det.update(2400.0, 3.0)


@pytest.mark.parametrize(("call", "message"), [
    (lambda: make_detector("prophet"), "unknown detector kind"),
    (lambda: make_detector("seasonal", "loud"), "sensitivity"),
    (lambda: make_detector("seasonal", colour="red"), "bad parameters"),
    (lambda: make_detector("hst", n_trees="many"), "n_trees"),
    (lambda: restore_detector({"params": {}}), "kind"),
    (lambda: restore_detector({"kind": "seasonal", "params": {}}), "not a valid seasonal"),
    (lambda: restore_detector({"kind": "gaussian", "params": {}, "pickle": "%%%"}), "not a valid gaussian"),
])
def test_errors_are_detector_errors_with_a_reason(call: object, message: str) -> None:
    with pytest.raises(DetectorError, match=message):
        call()  # type: ignore[operator]


def test_public_names_are_exported() -> None:
    for name in detectors.__all__:
        assert hasattr(detectors, name), name
