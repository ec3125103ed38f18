"""``gaussian``: River's :class:`river.anomaly.GaussianScorer` behind our protocol.

Score ``2 * |CDF(value) - 0.5|`` of a Gaussian fitted to all values seen (or
to the last ``window_size``).  Cheap and simple; blind to seasonality, and a
level shift stays anomalous until the window forgets the old level.
"""

from __future__ import annotations

from typing import Any, ClassVar

from river import anomaly

from detectors.river_base import RiverDetector

__all__ = ["GaussianDetector"]


class GaussianDetector(RiverDetector):
    """Gaussian tail score (kind ``"gaussian"``).

    Parameters
    ----------
    sensitivity : {"low", "medium", "high"}
        Thresholds at about 8.3, 5.3 and 4.4 standard deviations (as CDF
        scores); NAB found the saturated 1.0 best, real series are heavy-tailed.
    window_size : int or None
        Fit over the last ``window_size`` values instead of all of them.
    warmup : int
        Points before the first verdict counts.

    Examples
    --------
    >>> det = GaussianDetector(window_size=500)
    >>> for i in range(100):
    ...     _ = det.update(60.0 * i, 10.0 + (i % 5))
    >>> det.update(6000.0, 12.0).is_anomaly, det.update(6060.0, 40.0).is_anomaly
    (False, True)
    """

    kind: ClassVar[str] = "gaussian"
    # 2|CDF - 0.5| at about 8.3 (where floats saturate at 1), 5.3 and 4.4 standard deviations
    thresholds: ClassVar[dict[str, float]] = {"low": 1.0, "medium": 0.9999999, "high": 0.99999}

    def __init__(self, sensitivity: str = "medium", *, window_size: int | None = 1000,
                 warmup: int = 30) -> None:
        super().__init__(sensitivity, warmup=warmup, window_size=window_size)

    @classmethod
    def _test_params(cls) -> list[dict[str, Any]]:
        return [{}, {"window_size": None, "sensitivity": "high"}]

    def _build(self) -> Any:
        # grace_period=1: our own warm-up decides when verdicts count
        return anomaly.GaussianScorer(window_size=self.params["window_size"], grace_period=1)  # type: ignore[no-untyped-call]  # River leaves it untyped

    def _raw_score(self, model: Any, value: float) -> float:
        g = model.gaussian
        if g.sigma == 0.0:  # River says 1.0 for any value of a constant series, even the constant
            return 0.0 if value == g.mu else 1.0
        return float(model.score_one(None, value))

    def _raw_learn(self, value: float) -> None:
        self.model.learn_one(None, value)
