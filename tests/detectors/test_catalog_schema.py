"""The catalog's detector schema (``catalog.detectors``) and the detectors themselves agree.

The catalog cannot import ``detectors`` (it is the bottom layer), so it declares each kind's parameters itself;
these tests keep the two declarations equal: kinds, sensitivities, parameter names and defaults, and the bounds
(a value the catalog accepts at a bound builds a working detector; one just outside is refused by both).
"""

from __future__ import annotations

import inspect
import typing
from typing import Any

import annotated_types as at
import pytest
from pydantic.fields import FieldInfo

from catalog import DetectorSpec
from catalog.detectors import KINDS as CATALOG_KINDS
from catalog.detectors import PARAMS, detector_problems
from catalog.detectors import SENSITIVITIES as CATALOG_SENSITIVITIES
from detectors.base import DetectorError
from detectors.checks import sample_series
from detectors.registry import KINDS, SENSITIVITIES, make_detector

POINTS = sample_series(60)
EPS = 1e-9


def _keywords(kind: str) -> dict[str, Any]:
    sig = inspect.signature(KINDS[kind])
    return {n: p.default for n, p in sig.parameters.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}


def _catalog_ok(kind: str, params: dict[str, Any]) -> bool:
    return not detector_problems(kind, params, ())


def _detector_ok(kind: str, params: dict[str, Any]) -> bool:
    try:
        det = make_detector(kind, "medium", **params)
    except DetectorError:
        return False
    for ts, value in POINTS:  # a detector built from a valid catalog must also run
        det.update(ts, value)
    return True


def _num(bound: object) -> float:
    assert isinstance(bound, int | float), bound
    return float(bound)


def _edges(field: FieldInfo) -> tuple[list[Any], list[Any]]:
    """Values just inside and just outside each bound of ``field`` (and each choice of a Literal)."""
    whole = int in typing.get_args(field.annotation) or field.annotation is int
    step = 1 if whole else EPS
    inside: list[Any] = []
    outside: list[Any] = []
    for bound in field.metadata:
        if isinstance(bound, at.Ge):
            inside.append(_num(bound.ge))
            outside.append(_num(bound.ge) - step)
        elif isinstance(bound, at.Gt):
            inside.append(_num(bound.gt) + step)
            outside.append(_num(bound.gt))
        elif isinstance(bound, at.Le):
            inside.append(_num(bound.le))
            outside.append(_num(bound.le) + step)
        elif isinstance(bound, at.Lt):
            inside.append(_num(bound.lt) - step)
            outside.append(_num(bound.lt))
    if whole:
        inside, outside = [int(v) for v in inside], [int(v) for v in outside]
    if typing.get_origin(field.annotation) is typing.Literal:
        inside += list(typing.get_args(field.annotation))
        outside.append("no-such-choice")
    return inside, outside


def test_the_same_kinds_and_sensitivities() -> None:
    assert set(CATALOG_KINDS) == set(KINDS)
    assert CATALOG_SENSITIVITIES == SENSITIVITIES
    assert DetectorSpec().kind == inspect.signature(make_detector).parameters["kind"].default


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_the_same_parameter_names_and_defaults(kind: str) -> None:
    schema = {name: f.default for name, f in PARAMS[kind].model_fields.items()}
    assert schema == _keywords(kind)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_listed_test_configuration_is_a_valid_catalog_entry(kind: str) -> None:
    for params in KINDS[kind]._test_params():  # type: ignore[attr-defined]
        params = {k: v for k, v in params.items() if k != "sensitivity"}
        assert detector_problems(kind, params, ()) == [], params


CASES = [(kind, name) for kind in sorted(PARAMS) for name in PARAMS[kind].model_fields]


@pytest.mark.parametrize(("kind", "name"), CASES, ids=[f"{k}.{n}" for k, n in CASES])
def test_bounds_agree(kind: str, name: str) -> None:
    inside, outside = _edges(PARAMS[kind].model_fields[name])
    for value in inside:
        assert _catalog_ok(kind, {name: value}) and _detector_ok(kind, {name: value}), (name, value)
    for value in outside:
        assert not _catalog_ok(kind, {name: value}), (name, value)
        assert not _detector_ok(kind, {name: value}), f"the catalog refuses {name}={value!r}, the detector does not"


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_unknown_parameters_are_refused_by_both(kind: str) -> None:
    assert not _catalog_ok(kind, {"colour": "red"}) and not _detector_ok(kind, {"colour": "red"})


def test_a_predictive_seasonality_needs_gamma_in_both() -> None:
    for params, ok in (({"seasonality": 12}, False), ({"seasonality": 12, "gamma": 0.3}, True)):
        assert _catalog_ok("predictive", params) is ok and _detector_ok("predictive", params) is ok
