"""The detector part of the catalog: which ``detector.kind`` values exist and the parameters each one takes.

Why the catalog holds this and not ``detectors``: ``catalog`` is the bottom layer and imports nothing of kpimon's,
so :func:`catalog.parse_catalog` can validate a whole catalog in any interpreter, whatever else was (or was not)
imported; there is no registration step to forget. The cost is that a detector's parameters are declared twice:
as the keyword arguments of its class in ``detectors`` (the library, usable without a catalog, e.g. by
``kpimon nab``) and as a model here (what a catalog may say). ``tests/detectors/test_catalog_schema.py`` keeps
the two equal: the same kinds as ``detectors.registry.KINDS``, the same parameter names and defaults as each
constructor, and every value this schema accepts at its bounds accepted by the detector (and every value just
outside them refused by both). A new detector is therefore a module in ``detectors``, a line in its registry and
a params model plus a line in :data:`PARAMS` here; the test fails until all three agree.

The models are strict (no ``"0.5"`` for a float, no ``true`` for a number): the worker hands the catalog's
``params`` mapping to the detector unchanged, so what passes here must be what the detector expects.

Examples
--------
>>> detector_problems("seasonal", {"level_rate": 2}, ("kpis", 0, "detector"))
[(('kpis', 0, 'detector', 'params', 'level_rate'), 'Input should be less than or equal to 1')]
>>> detector_problems("prophet", {}, ("kpis", 0, "detector"))[0][1]
"unknown detector kind 'prophet'; known: calibrated, gaussian, hst, predictive, seasonal"
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

__all__ = ["KINDS", "PARAMS", "SENSITIVITIES", "Sensitivity", "detector_problems"]

Loc = tuple[str | int, ...]
Sensitivity = Literal["low", "medium", "high"]
SENSITIVITIES: tuple[Sensitivity, ...] = ("low", "medium", "high")


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class SeasonalParams(_Params):
    """``seasonal``: the seasonal robust baseline (``detectors.seasonal.SeasonalDetector``)."""

    seasonality: Literal["weekly", "daily", "none"] = "weekly"
    level_rate: float = Field(default=0.1, gt=0, le=1)
    season_rate: float = Field(default=0.3, gt=0, le=1)
    dev_rate: float = Field(default=0.005, gt=0, le=1)
    clip: float = Field(default=3.0, gt=0)
    warmup: int = Field(default=30, ge=1)
    drift_limit: float = Field(default=24.0, gt=0)
    memory_days: float = Field(default=6.0, gt=0)
    holdoff_h: float = Field(default=4.0, ge=0)
    utc_offset_h: float = Field(default=0.0, gt=-24, lt=24)


class GaussianParams(_Params):
    """``gaussian``: River's Gaussian scorer (``detectors.gaussian.GaussianDetector``)."""

    window_size: int | None = Field(default=1000, ge=0)
    warmup: int = Field(default=30, ge=1)


class HstParams(_Params):
    """``hst``: River's half-space trees (``detectors.hst.HalfSpaceTreesDetector``)."""

    n_trees: int = Field(default=10, ge=1)
    height: int = Field(default=8, ge=1)
    window_size: int = Field(default=250, ge=1)
    seed: int | None = 42
    warmup: int | None = Field(default=None, ge=1)


class PredictiveParams(_Params):
    """``predictive``: River's Holt-Winters forecast error (``detectors.predictive.PredictiveDetector``)."""

    alpha: float = 0.3
    beta: float = 0.05
    gamma: float | None = None
    seasonality: int = Field(default=0, ge=0)
    n_std: float | None = None
    warmup: int = Field(default=30, ge=1)

    @model_validator(mode="after")
    def _seasonal(self) -> PredictiveParams:
        if self.seasonality and self.gamma is None:
            raise ValueError("gamma must be set if seasonality is set")
        return self


class CalibratedParams(SeasonalParams):
    """``calibrated``: seasonal with a per-series alarm budget (``detectors.calibrated.CalibratedDetector``);
    the seasonal parameters by their own names, plus these."""

    budget: float = Field(default=0.1, ge=0)
    budget_days: float = Field(default=1.0, gt=0)
    likelihood: bool = False
    short_rate: float = Field(default=0.1, gt=0, le=1)
    memory: int = Field(default=2000, ge=1)
    sd_min: float = Field(default=0.05, gt=0)
    lh_warmup: int = Field(default=300, ge=1)


#: kind -> the parameters a catalog may give it.
PARAMS: dict[str, type[_Params]] = {
    "seasonal": SeasonalParams,
    "gaussian": GaussianParams,
    "hst": HstParams,
    "predictive": PredictiveParams,
    "calibrated": CalibratedParams,
}
KINDS = frozenset(PARAMS)


def detector_problems(kind: str, params: Mapping[str, Any], at: Loc) -> list[tuple[Loc, str]]:
    """What is wrong with a detector of ``kind`` with ``params`` (its spec at ``at``), as ``(loc, message)``."""
    model = PARAMS.get(kind)
    if model is None:
        return [((*at, "kind"), f"unknown detector kind {kind!r}; known: {', '.join(sorted(KINDS))}")]
    try:
        model.model_validate(dict(params))
    except ValidationError as exc:
        out: list[tuple[Loc, str]] = []
        for err in exc.errors(include_input=False):
            if err["type"] == "extra_forbidden":
                msg = f"unknown parameter of detector kind {kind!r}; known: {', '.join(model.model_fields)}"
            else:
                msg = str(err["msg"]).removeprefix("Value error, ")
            out.append(((*at, "params", *err["loc"]), msg))
        return out
    return []
