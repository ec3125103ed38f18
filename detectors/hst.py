"""``hst``: River's :class:`river.anomaly.HalfSpaceTrees` after a min-max scaler.

Half-space trees need features in [0, 1], hence the running
:class:`river.preprocessing.MinMaxScaler` in front.  The only feature is the
value itself, so this is a density detector over a sliding reference window;
it has no notion of time of day.
"""

from __future__ import annotations

from typing import Any, ClassVar

from river import anomaly, preprocessing

from detectors.river_base import RiverDetector, positive_int

__all__ = ["HalfSpaceTreesDetector"]


class HalfSpaceTreesDetector(RiverDetector):
    """Half-space trees (kind ``"hst"``).

    Parameters
    ----------
    sensitivity : {"low", "medium", "high"}
        Score thresholds 0.999, 0.998 and 0.995: on one feature River's scores
        bunch up near 1, so the useful thresholds are high.
    n_trees, height, window_size, seed
        Passed to :class:`river.anomaly.HalfSpaceTrees`.
    warmup : int
        Points before the first verdict counts (default: one reference window).

    Examples
    --------
    >>> det = HalfSpaceTreesDetector(window_size=50, warmup=50)
    >>> verdicts = [det.update(60.0 * i, float(i % 7)) for i in range(120)]
    >>> verdicts[0].warming_up, verdicts[-1].warming_up, 0.0 <= verdicts[-1].score <= 1.0
    (True, False, True)
    """

    kind: ClassVar[str] = "hst"
    thresholds: ClassVar[dict[str, float]] = {"low": 0.999, "medium": 0.998, "high": 0.995}

    def __init__(self, sensitivity: str = "medium", *, n_trees: int = 10, height: int = 8,
                 window_size: int = 250, seed: int = 42, warmup: int | None = None) -> None:
        for name, value in (("n_trees", n_trees), ("height", height), ("window_size", window_size)):
            positive_int(name, value)
        super().__init__(sensitivity, warmup=window_size if warmup is None else warmup,
                         n_trees=n_trees, height=height, window_size=window_size, seed=seed)

    @classmethod
    def _test_params(cls) -> list[dict[str, Any]]:
        return [{"window_size": 50, "n_trees": 5, "height": 6}]

    def _build(self) -> Any:
        p = self.params
        return preprocessing.MinMaxScaler() | anomaly.HalfSpaceTrees(
            n_trees=p["n_trees"], height=p["height"], window_size=p["window_size"], seed=p["seed"])

    def _raw_score(self, model: Any, value: float) -> float:
        if not model["MinMaxScaler"].min:  # nothing learned yet; scoring would add an empty entry to it
            return 0.0
        return float(model.score_one({"x": value}))

    def _raw_learn(self, value: float) -> None:
        self.model.learn_one({"x": value})
