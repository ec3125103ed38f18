"""Shared wrapper that puts a River anomaly model behind the :class:`~detectors.base.Detector` protocol.

River estimators are plain Python objects that pickle well but are not JSON,
so the state of these kinds is ``{"kind", "version", "params", "pickle"}``
with ``pickle`` the base64 of the pickled model.  **Only restore states you
wrote yourself**: unpickling runs code.  The default ``seasonal`` kind has a
compact plain-JSON state instead.

The expected value and band of every River kind come from a running mean and
standard deviation of the values it has seen (``mean +/- band_z * sd``), or
from the forecast for ``predictive``; the decision is the River model's
score against the kind's threshold.
"""

from __future__ import annotations

import base64
import copy
import math
import pickle
from typing import Any, ClassVar

from river import stats

from detectors.base import SENSITIVITIES, DetectorError, Verdict, check_point

__all__ = ["RiverDetector", "positive_int"]


def positive_int(name: str, value: Any) -> int:
    """``value`` if it is a positive int, else DetectorError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise DetectorError(f"{name} must be a positive integer, got {value!r}")
    return value


class RiverDetector:
    """Base class: subclasses set ``kind`` and ``thresholds`` and build the River model.

    Subclasses implement :meth:`_build` (a fresh model from ``self.params``)
    and :meth:`_raw_score` / :meth:`_raw_learn`, and may override
    :meth:`_expected`.  ``_pure_score`` says whether the River model's own
    ``score_one`` is free of side effects; when it is not (River's
    ``PredictiveAnomalyDetection`` updates its error statistics while scoring),
    :meth:`score_one` scores a copy so our protocol still holds.
    """

    kind: ClassVar[str] = ""
    thresholds: ClassVar[dict[str, float]] = {}
    band_z: ClassVar[float] = 3.0
    _pure_score: ClassVar[bool] = True
    learns_labels = False  # unsupervised River models take no labels (see learn_label)

    def __init__(self, sensitivity: str = "medium", *, warmup: int = 30, **params: Any) -> None:
        if sensitivity not in SENSITIVITIES:
            raise DetectorError(f"sensitivity must be one of {SENSITIVITIES}, got {sensitivity!r}")
        positive_int("warmup", warmup)
        self.params: dict[str, Any] = {"sensitivity": sensitivity, "warmup": warmup, **params}
        self.threshold = self.thresholds[sensitivity]
        self.n = 0
        self.var = stats.Var()  # running mean and variance for the exported band
        try:
            self.model: Any = self._build()
        except (TypeError, ValueError) as exc:  # River's own validation, with our exception type
            raise DetectorError(f"bad parameters for detector kind {self.kind!r}: {exc}") from exc

    # -- for subclasses -------------------------------------------------------------------

    def _build(self) -> Any:
        raise NotImplementedError

    def _raw_score(self, model: Any, value: float) -> float:
        raise NotImplementedError

    def _raw_learn(self, value: float) -> None:
        raise NotImplementedError

    def _expected(self, model: Any) -> float:
        return float(self.var.mean.get())

    # -- protocol -------------------------------------------------------------------------

    def score_one(self, ts: float, value: float) -> Verdict:
        """Judge one point without learning from it."""
        ts, value = check_point(ts, value)
        model = self.model if self._pure_score else copy.deepcopy(self.model)
        return self._verdict(model, ts, value)

    def learn_one(self, ts: float, value: float) -> None:
        """Learn from one point."""
        ts, value = check_point(ts, value)
        if not self._pure_score:  # keep update == score_one then learn_one
            self._raw_score(self.model, value)
        self._learn(value)

    def learn_label(self, ts: float, value: float, *, normal: bool) -> None:
        """A person's verdict: River's unsupervised models take no labels, so nothing changes (input checked)."""
        check_point(ts, value)

    def update(self, ts: float, value: float) -> Verdict:
        """Score one point, then learn from it; return the verdict."""
        ts, value = check_point(ts, value)
        verdict = self._verdict(self.model, ts, value)
        self._learn(value)
        return verdict

    def _learn(self, value: float) -> None:
        self._raw_learn(value)
        self.var.update(value)
        self.n += 1

    def _verdict(self, model: Any, ts: float, value: float) -> Verdict:
        raw = self._raw_score(model, value)  # always, so impure models see every point
        if self.n < self.params["warmup"]:
            return Verdict(ts, value, 0.0, None, None, None, False, False, True)
        score = raw if 0.0 <= raw <= 1.0 else (0.0 if not raw > 0.0 else 1.0)  # NaN -> 0
        expected = self._expected(model)
        half = self.band_z * math.sqrt(max(float(self.var.get()), 0.0))
        return Verdict(ts, value, score, expected, expected - half, expected + half,
                       score >= self.threshold, False, False)

    # -- state ----------------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        """JSON state: parameters plus base64 of the pickled River model."""
        blob = pickle.dumps((self.n, self.var, self.model), protocol=pickle.HIGHEST_PROTOCOL)
        return {"kind": self.kind, "version": 1, "params": dict(self.params),
                "pickle": base64.b64encode(blob).decode("ascii")}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> RiverDetector:
        """Rebuild from :meth:`to_state` output (trusted input only: this unpickles)."""
        try:
            det = cls(**state["params"])
            det.n, det.var, det.model = pickle.loads(base64.b64decode(state["pickle"]))
        except Exception as exc:  # unpickling garbage can raise almost anything (EOFError, ImportError...)
            raise DetectorError(f"not a valid {cls.kind} detector state: {exc!r}") from exc
        return det
