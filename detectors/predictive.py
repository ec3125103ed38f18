"""``predictive``: River's :class:`river.anomaly.PredictiveAnomalyDetection` around Holt-Winters.

A :class:`river.time_series.HoltWinters` forecaster predicts the next value;
the score grows with the squared forecast error relative to its running mean
plus ``n_std`` standard deviations, reaching 1 beyond that.  With
``seasonality`` (in points, e.g. 24 for hourly data with a daily cycle) the
forecaster is seasonal.

River's ``score_one`` here updates the error statistics (a side effect), so
:meth:`score_one` scores a copy; ``update`` does not need to.
"""

from __future__ import annotations

from typing import Any, ClassVar

from river import anomaly, time_series

from detectors.river_base import RiverDetector

__all__ = ["PredictiveDetector"]


class PredictiveDetector(RiverDetector):
    """Forecast-error detector (kind ``"predictive"``).

    Parameters
    ----------
    sensitivity : {"low", "medium", "high"}
        Alarm when the squared forecast error passes its running mean plus
        ``n_std`` standard deviations (score 1.0).
    alpha, beta, gamma, seasonality
        Holt-Winters smoothing; ``gamma`` and ``seasonality`` only together.
    n_std : float, optional
        Error threshold in standard deviations of the squared error; by
        default 4, 3 or 2 for low, medium, high sensitivity.
    warmup : int
        Points before the first verdict counts.

    Examples
    --------
    >>> det = PredictiveDetector()
    >>> for i in range(60):
    ...     _ = det.update(60.0 * i, 100.0 + i % 2)
    >>> det.update(3600.0, 100.0).is_anomaly, det.update(3660.0, 400.0).is_anomaly
    (False, True)
    """

    kind: ClassVar[str] = "predictive"
    # River's score reaches 1.0 exactly when the error passes n_std: sensitivity picks n_std instead
    thresholds: ClassVar[dict[str, float]] = {"low": 1.0, "medium": 1.0, "high": 1.0}
    n_stds: ClassVar[dict[str, float]] = {"low": 4.0, "medium": 3.0, "high": 2.0}
    _pure_score: ClassVar[bool] = False

    def __init__(self, sensitivity: str = "medium", *, alpha: float = 0.3, beta: float = 0.05,
                 gamma: float | None = None, seasonality: int = 0, n_std: float | None = None,
                 warmup: int = 30) -> None:
        super().__init__(sensitivity, warmup=warmup, alpha=alpha, beta=beta, gamma=gamma,
                         seasonality=seasonality,
                         n_std=self.n_stds.get(sensitivity, 3.0) if n_std is None else n_std)

    @classmethod
    def _test_params(cls) -> list[dict[str, Any]]:
        return [{}, {"gamma": 0.3, "seasonality": 12, "sensitivity": "low"}]

    def _build(self) -> Any:
        p = self.params
        forecaster = time_series.HoltWinters(alpha=p["alpha"], beta=p["beta"], gamma=p["gamma"],
                                             seasonality=p["seasonality"])  # type: ignore[no-untyped-call]  # River leaves it untyped
        return anomaly.PredictiveAnomalyDetection(forecaster, horizon=1, n_std=p["n_std"])

    def _raw_score(self, model: Any, value: float) -> float:
        try:
            score = float(model.score_one(None, value))
            # River says 1.0 when the error and its threshold are both 0 (a constant series)
            return 0.0 if model.predictive_model.forecast(1)[0] == value else score
        except (IndexError, ZeroDivisionError):  # Holt-Winters cannot forecast before it is initialised
            return 0.0

    def _raw_learn(self, value: float) -> None:
        self.model.learn_one(None, value)

    def _expected(self, model: Any) -> float:
        try:
            return float(model.predictive_model.forecast(1)[0])
        except (IndexError, ZeroDivisionError):
            return super()._expected(model)
