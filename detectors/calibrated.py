"""The seasonal detector, calibrated by each series' own alarm history (kind ``"calibrated"``).

The seasonal model (:mod:`detectors.seasonal`) holds an alarm in one *direction* for ``holdoff_h`` hours; a series
that keeps alarming -- up, then down, then up again the same day -- is telling that its model is too confident for
it, and every alarm after the first is less likely to be news.  HTM's *anomaly likelihood* (Ahmad et al.,
"Unsupervised real-time anomaly detection for streaming data", Neurocomputing 2017) makes the same point about raw
scores: judge a score against the series' own history of scores, not against a fixed scale.  Two cheap,
per-series calibrations on top of the seasonal score, both in running statistics:

* **alarm budget** (on by default): ``alarms`` is a count of the series' alarms fading with e-folding time
  ``budget_days``; a score ``s`` at or above the threshold counts as ``s - budget * ln(1 + alarms)``.  A first
  alarm is untouched; a second one within the day needs about 0.07 more, a fourth about 0.14 more.  A clearly
  anomalous point (score 1, a drop to zero) still alarms however many came before.
* **likelihood of a run of surprise** (``likelihood=True``; off by default, see below): ``short`` is an exponential
  mean of the seasonal score (weight ``short_rate``), ``mean`` and ``var`` its slow mean and variance over about
  ``memory`` points; the Gaussian surprise of ``(short - mean) / max(sd, sd_min)`` on the seasonal scale
  (``-log10(p) / 10``) is a second score, judged after ``lh_warmup`` points, held for ``holdoff_h`` after any
  alarm, and the larger of the two scores is the verdict's.

Band, drift and warm-up are the seasonal model's; a budget-held point reports its reduced score (below the
threshold), so ``is_anomaly == (score >= threshold)`` still holds.

How the defaults were chosen (``kpimon nab --cv --kind calibrated``, README *NAB*): leave-one-category-out over a
handful of settings; the likelihood raised false alarms and found no window the seasonal score misses, so it is off.

Parameters: this kind's own, and the seasonal ones by their own names (``memory_days``, ``holdoff_h``, ...), so a
catalog entry's ``params`` keep their meaning when the kind changes.

State: the seasonal state (same keys, its ``kind`` replaced) plus ``"cal"``: this kind's parameters that differ from
the defaults, the fading alarm count, and with the likelihood on its four numbers and hold-off end.
"""

from __future__ import annotations

import inspect
import math
from typing import Any

from catalog.calendar import Calendar
from detectors.base import DetectorError, Verdict, check_point
from detectors.seasonal import SeasonalDetector, score_from_z

__all__ = ["CalibratedDetector"]

_HELD = 1e-3  # held likelihood scores report at most threshold - this (like the seasonal hold-off)
_SEASONAL_KEYS = ("version", "params", "n", "time", "scalars", "peaks", "range", "cusum", "day", "quiet_until",
                  "knots", "tod")


class CalibratedDetector:
    """Seasonal score with a per-series alarm budget, and optionally a likelihood of runs (kind ``"calibrated"``).

    Parameters
    ----------
    sensitivity : {"low", "medium", "high"}
        The seasonal thresholds (:data:`detectors.seasonal.THRESHOLDS`).
    budget : float
        Score an alarm costs per ``ln(1 + recent alarms)`` (0 turns the budget off).
    budget_days : float
        E-folding time of the alarm count, in days.
    likelihood : bool
        Add the likelihood of a run of surprise as a second score.
    short_rate, memory, sd_min, lh_warmup
        The likelihood's short-mean weight, memory in points, least sd and warm-up in points.
    **seasonal
        Parameters of the seasonal part, by the same names (see :class:`~detectors.seasonal.SeasonalDetector`):
        a catalog entry's ``params`` mean the same under either kind.

    Examples
    --------
    >>> det = CalibratedDetector(seasonality="none")
    >>> for i in range(60):
    ...     _ = det.update(60.0 * i, 100.0 + (i % 3))
    >>> det.update(3660.0, 500.0).is_anomaly
    True
    """

    kind = "calibrated"
    learns_labels = True
    __slots__ = ("params", "threshold", "seasonal", "alarms", "lh")

    def __init__(self, sensitivity: str = "medium", *, budget: float = 0.1, budget_days: float = 1.0,
                 likelihood: bool = False, short_rate: float = 0.1, memory: int = 2000, sd_min: float = 0.05,
                 lh_warmup: int = 300, **seasonal: Any) -> None:
        self.params: dict[str, Any] = {
            "sensitivity": sensitivity, "budget": budget, "budget_days": budget_days, "likelihood": likelihood,
            "short_rate": short_rate, "memory": memory, "sd_min": sd_min, "lh_warmup": lh_warmup}
        _validate(self.params)
        self.seasonal = SeasonalDetector(sensitivity, **seasonal)  # an unknown name is a TypeError, like ours
        self.threshold = self.seasonal.threshold
        self.alarms = 0.0  # the series' alarms, fading over budget_days
        # likelihood: short mean, its slow mean and variance, points seen, end of its hold-off
        self.lh = [0.0, 0.0, 0.0, 0.0, -math.inf]

    def with_calendar(self, calendar: Calendar | None) -> CalibratedDetector:
        """Judge days by a business calendar (the seasonal model's :meth:`~SeasonalDetector.with_calendar`)."""
        self.seasonal.with_calendar(calendar)
        return self

    @classmethod
    def _test_params(cls) -> list[dict[str, Any]]:
        """Configurations the conformance suite runs (see :mod:`detectors.checks`)."""
        return [{}, {"likelihood": True, "lh_warmup": 10, "sd_min": 0.001, "budget": 0.3, "seasonality": "none",
                     "sensitivity": "high"}]

    # -- protocol -------------------------------------------------------------------------

    def score_one(self, ts: float, value: float) -> Verdict:
        """Judge one point without learning from it."""
        ts, value = check_point(ts, value)
        return self._combine(ts, self.seasonal.score_one(ts, value))[0]

    def learn_one(self, ts: float, value: float) -> None:
        """Learn from one point."""
        self.update(ts, value)

    def learn_label(self, ts: float, value: float, *, normal: bool) -> None:
        """A person's verdict, taught to the seasonal model (:meth:`SeasonalDetector.learn_label`); the alarm
        budget keeps counting a false alarm (one more sign the model was too confident for this series)."""
        self.seasonal.learn_label(ts, value, normal=normal)

    def update(self, ts: float, value: float) -> Verdict:
        """Score one point, then learn from it; return the verdict."""
        ts, value = check_point(ts, value)
        inner = self.seasonal.update(ts, value)
        verdict, short = self._combine(ts, inner)
        if inner.warming_up:
            return verdict
        self.alarms *= math.exp(-self.seasonal.dt / (86400.0 * self.params["budget_days"]))
        if verdict.is_anomaly:
            self.alarms += 1.0
        if self.params["likelihood"]:
            self._learn_likelihood(ts, short, verdict.is_anomaly)
        return verdict

    def _combine(self, ts: float, inner: Verdict) -> tuple[Verdict, float]:
        """The verdict and the likelihood's new short mean (returned, not stored: score_one must not learn)."""
        if inner.warming_up:
            return inner, 0.0
        thr = self.threshold
        v = inner
        if inner.score >= thr and self.alarms > 0.0 and self.params["budget"]:
            s = inner.score - self.params["budget"] * math.log1p(self.alarms)
            if s < thr:  # over budget: this series alarmed lately, and this is not clearly worse
                v = Verdict(inner.ts, inner.value, s if s > 0.0 else 0.0, inner.expected, inner.lower, inner.upper,
                            False, inner.drift, False)
        if not self.params["likelihood"]:
            return v, 0.0
        short, mean, var, n, quiet = self.lh
        short += self.params["short_rate"] * (inner.score - short)
        if n < self.params["lh_warmup"]:
            return v, short
        z = (short - mean) / max(math.sqrt(var) if var > 0.0 else 0.0, self.params["sd_min"])
        lh = score_from_z(z) if z > 0.0 else 0.0
        if lh >= thr and ts < quiet:
            lh = thr - _HELD  # announced lately: a run of surprise after an alarm is the same incident
        if lh <= v.score:
            return v, short
        return Verdict(v.ts, v.value, lh, v.expected, v.lower, v.upper, lh >= thr, v.drift, False), short

    def _learn_likelihood(self, ts: float, short: float, alarmed: bool) -> None:
        st = self.lh
        st[0] = short
        st[3] += 1.0
        a = max(1.0 / st[3], 1.0 / self.params["memory"])  # a running mean at first
        d = short - st[1]
        st[1] += a * d
        st[2] += a * (d * d * (1.0 - a) - st[2])
        if alarmed:
            st[4] = ts + 3600.0 * self.seasonal.params["holdoff_h"]

    # -- state ----------------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        """Plain-JSON state: the seasonal state, its kind replaced, plus ``"cal"``."""
        state = self.seasonal.to_state()
        params = {k: v for k, v in self.params.items() if k != "sensitivity" and v != _DEFAULTS[k]}
        cal: list[Any] = [params, self.alarms]
        if self.params["likelihood"]:
            cal.append([x if math.isfinite(x) else None for x in self.lh])
        state["kind"], state["cal"] = self.kind, cal
        return state

    @classmethod
    def from_state(cls, state: dict[str, Any], calendar: Calendar | None = None) -> CalibratedDetector:
        """Rebuild a detector from :meth:`to_state` output, with the business ``calendar`` it was given."""
        try:
            params, alarms, *lh = state["cal"]
            inner = SeasonalDetector.from_state({k: state[k] for k in _SEASONAL_KEYS}
                                                | {"kind": "seasonal"}, calendar)
            det = cls(inner.params["sensitivity"], **params)
            det.seasonal = inner
            det.alarms = float(alarms)
            if det.params["likelihood"]:
                det.lh = [-math.inf if x is None else float(x) for x in lh[0]]
                if len(det.lh) != 5:
                    raise ValueError("the likelihood holds 5 numbers")
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            if isinstance(exc, DetectorError):
                raise
            raise DetectorError(f"not a valid calibrated detector state: {exc!r}") from exc
        return det

    @classmethod
    def adopt(cls, seasonal_state: dict[str, Any], sensitivity: str = "medium", calendar: Calendar | None = None,
              **params: Any) -> CalibratedDetector:
        """A calibrated detector around a learned ``seasonal`` state (the model it wraps), with no alarm history:
        switching a series from ``seasonal`` to ``calibrated`` keeps what it learned. The seasonal parameters in
        ``params`` must be those the state holds (else DetectorError: the model is another one)."""
        det = cls(sensitivity, **params)
        inner = SeasonalDetector.from_state(seasonal_state | {"params": {**seasonal_state.get("params", {}),
                                                                          "sensitivity": sensitivity}}, calendar)
        if inner.params != det.seasonal.params:
            raise DetectorError(f"the seasonal state was learned with other parameters: {inner.params} "
                                f"is not {det.seasonal.params}")
        det.seasonal = inner
        return det


_DEFAULTS: dict[str, Any] = {"budget": 0.1, "budget_days": 1.0, "likelihood": False, "short_rate": 0.1,
                             "memory": 2000, "sd_min": 0.05, "lh_warmup": 300}
# What inspect.signature (and so the catalog schema test) sees: our keywords, then the seasonal ones.
_OWN = inspect.signature(CalibratedDetector.__init__).parameters
_SEASONAL = inspect.signature(SeasonalDetector.__init__).parameters
CalibratedDetector.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
    [p for name, p in _OWN.items() if name not in ("self", "seasonal")]
    + [p for name, p in _SEASONAL.items() if name not in ("self", "sensitivity")])


def _validate(p: dict[str, Any]) -> None:
    """Raise DetectorError naming the first bad parameter."""
    rate = p["short_rate"]
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0.0 < rate <= 1.0:
        raise DetectorError(f"short_rate must be in (0, 1], got {rate!r}")
    for name in ("memory", "lh_warmup"):
        if isinstance(p[name], bool) or not isinstance(p[name], int) or p[name] < 1:
            raise DetectorError(f"{name} must be a positive integer, got {p[name]!r}")
    for name in ("sd_min", "budget_days"):
        x = p[name]
        if isinstance(x, bool) or not isinstance(x, int | float) or not 0.0 < x < math.inf:
            raise DetectorError(f"{name} must be a positive number, got {x!r}")
    b = p["budget"]
    if isinstance(b, bool) or not isinstance(b, int | float) or not 0.0 <= b < math.inf:
        raise DetectorError(f"budget must be a number >= 0, got {b!r}")
    if not isinstance(p["likelihood"], bool):
        raise DetectorError(f"likelihood must be true or false, got {p['likelihood']!r}")
