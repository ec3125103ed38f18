"""Every registered detector kind, in every configuration it lists, passes every check."""

from __future__ import annotations

from typing import Any

import pytest

from detectors.checks import ALL_CHECKS, sample_series
from detectors.registry import KINDS, make_detector

CASES = [(kind, params) for kind, cls in sorted(KINDS.items())
         for params in cls._test_params()]  # type: ignore[attr-defined]
POINTS = sample_series(300)


@pytest.mark.parametrize("check", ALL_CHECKS, ids=lambda c: c.__name__)
@pytest.mark.parametrize(("kind", "params"), CASES, ids=[f"{k}-{i}" for i, (k, _) in enumerate(CASES)])
def test_conformance(kind: str, params: dict[str, Any], check: Any) -> None:
    def make() -> Any:
        p = dict(params)
        return make_detector(kind, p.pop("sensitivity", "medium"), **p)

    check(make, POINTS)
