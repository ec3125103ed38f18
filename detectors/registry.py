"""Catalog ``kind`` -> detector factory: the one list of detectors.

A new detector is a module with a class that takes ``(sensitivity, **params)``
and has ``kind``, ``from_state`` and ``_test_params``, plus one line in :data:`KINDS` and its parameters in
``catalog/detectors.py`` (what a catalog may say; a test checks the two agree); the conformance suite in
``tests/detectors`` then runs against it automatically.

Examples
--------
>>> det = make_detector("seasonal", "high")
>>> restored = restore_detector(det.to_state())
>>> restored.to_state() == det.to_state()
True
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, cast

from catalog.calendar import Calendar
from detectors.base import SENSITIVITIES, Detector, DetectorError
from detectors.calibrated import CalibratedDetector
from detectors.gaussian import GaussianDetector
from detectors.hst import HalfSpaceTreesDetector
from detectors.predictive import PredictiveDetector
from detectors.seasonal import SeasonalDetector

__all__ = ["DEFAULT_KIND", "KINDS", "SENSITIVITIES", "adopt_state", "make_detector", "restore_detector"]


class _Restorable(Protocol):
    def from_state(self, state: dict[str, Any]) -> Detector: ...


class _CalendarAware(Protocol):
    def with_calendar(self, calendar: Calendar | None) -> Detector: ...


def _given(det: Detector, calendar: Calendar | None) -> Detector:
    """``det`` judging days by ``calendar``, where its kind reads one (``seasonal``, ``calibrated``)."""
    if calendar is not None and hasattr(det, "with_calendar"):
        return cast(_CalendarAware, det).with_calendar(calendar)
    return det


#: kind -> detector class.  Each class also has ``from_state(state)`` and ``_test_params()``.
KINDS: dict[str, Callable[..., Detector]] = {
    "seasonal": SeasonalDetector,
    "gaussian": GaussianDetector,
    "hst": HalfSpaceTreesDetector,
    "predictive": PredictiveDetector,
    "calibrated": CalibratedDetector,
}


DEFAULT_KIND = "calibrated"  # chosen out of fold on NAB (README, Detectors); catalog.model.DetectorSpec agrees


def make_detector(kind: str = DEFAULT_KIND, sensitivity: str = "medium", *, calendar: Calendar | None = None,
                  **params: Any) -> Detector:
    """A fresh detector of ``kind``; unknown kinds or parameters raise DetectorError. ``calendar``: the shared
    business calendar, for the kinds that read one (not part of the state: give it again on restore)."""
    cls = _lookup(kind)
    try:
        det = cls(sensitivity, **params)
    except TypeError as exc:  # unknown keyword: say which kind refused it
        raise DetectorError(f"bad parameters for detector kind {kind!r}: {exc}") from exc
    return _given(det, calendar)


def restore_detector(state: dict[str, Any], calendar: Calendar | None = None) -> Detector:
    """Rebuild a detector from ``to_state()`` output (the state names its kind), with the business ``calendar``."""
    if not isinstance(state, dict) or "kind" not in state:
        raise DetectorError("detector state must be a dict with a 'kind' key")
    return _given(cast(_Restorable, _lookup(state["kind"])).from_state(state), calendar)


def _lookup(kind: Any) -> Callable[..., Detector]:
    try:
        return KINDS[kind]
    except (KeyError, TypeError):
        raise DetectorError(f"unknown detector kind {kind!r}; known: {sorted(KINDS)}") from None


def adopt_state(kind: str, state: dict[str, Any], sensitivity: str, *, calendar: Calendar | None = None,
                **params: Any) -> Detector | None:
    """A detector of ``kind`` that keeps a learned ``state`` of another kind, where ``kind`` wraps that model
    (``calibrated`` around ``seasonal``); None where no such adoption exists. DetectorError for a state that
    does not fit."""
    if kind == "calibrated" and isinstance(state, dict) and state.get("kind") == "seasonal":
        return CalibratedDetector.adopt(state, sensitivity, calendar, **params)
    return None
