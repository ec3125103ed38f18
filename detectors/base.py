"""The one protocol every detector follows, and the verdict it returns.

Exceptions::

    ValueError
    └── DetectorError      bad input (NaN, inf, None, non-numbers) or bad configuration

Every detector reads a series one point at a time.  ``score_one`` judges a
point without touching the model (no side effects), ``learn_one`` updates the
model and returns ``None`` (in River's spirit: mutators are visibly stateful),
and ``update`` does both and returns the verdict.  ``to_state`` returns a
JSON-serialisable dict that :func:`detectors.registry.restore_detector` turns
back into a detector whose future verdicts are identical.

People's verdicts reach the model through ``learn_label(ts, value, normal=...)``:
a point it has already seen (usually one it alarmed on) was, a person says,
``normal`` (a false alarm) or not (a true alarm).  It is a mutator like
``learn_one`` (returns ``None``), deterministic, and what it teaches is part of
``to_state``.  A kind that can use a label says so with ``learns_labels =
True`` and then must make the same deviation at the same time of day on the
next day score lower after ``normal=True`` (checked by
:func:`detectors.checks.check_label_teaches`); a kind that cannot (the River
wrappers) has ``learns_labels = False`` and leaves its state unchanged.  Bad
input raises :class:`DetectorError` like every other method.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

__all__ = ["Detector", "DetectorError", "Verdict", "check_point", "SENSITIVITIES"]

SENSITIVITIES = ("low", "medium", "high")


class DetectorError(ValueError):
    """Bad input value or bad detector configuration; the message says which."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a detector thinks of one point.

    Attributes
    ----------
    ts : float
        Epoch seconds of the point.
    value : float
        The observed value.
    score : float
        Anomaly score in [0, 1]; higher is more anomalous.
    expected, lower, upper : float or None
        Expected value and band; ``None`` while warming up.
    is_anomaly : bool
        ``score >= threshold`` at the configured sensitivity; always False while warming up.
    drift : bool
        True exactly once when a lasting level shift is accepted as the new normal.
    warming_up : bool
        True until the detector has enough history to judge.
    """

    ts: float
    value: float
    score: float
    expected: float | None
    lower: float | None
    upper: float | None
    is_anomaly: bool
    drift: bool
    warming_up: bool


@runtime_checkable
class Detector(Protocol):
    """A per-series online anomaly detector.

    ``threshold`` is the score at which the configured sensitivity alarms:
    ``is_anomaly == (score >= threshold)`` outside warm-up.
    """

    threshold: float
    learns_labels: bool  # whether learn_label changes anything (see the module docstring)

    def score_one(self, ts: float, value: float) -> Verdict:
        """Judge one point without learning from it (no side effects)."""

    def learn_one(self, ts: float, value: float) -> None:
        """Learn from one point."""

    def update(self, ts: float, value: float) -> Verdict:
        """Score, then learn; return the verdict."""

    def learn_label(self, ts: float, value: float, *, normal: bool) -> None:
        """A person's verdict on a point already seen: ``normal=True`` for a false alarm (similar deviations at
        that time are normal), ``False`` for a true one. No verdict is returned; bad input raises."""

    def to_state(self) -> dict[str, Any]:
        """JSON-serialisable state carrying its ``kind``; restores exactly."""


def check_point(ts: Any, value: Any) -> tuple[float, float]:
    """Validate one input point and return it as two floats.

    NaN, infinities, ``None`` and non-numbers raise :class:`DetectorError`
    rather than being skipped: a missing KPI value is the caller's decision
    (e.g. zero for a count), never the model's guess.

    Examples
    --------
    >>> check_point(1.0, 2)
    (1.0, 2.0)
    >>> try:
    ...     check_point(1.0, float("nan"))
    ... except DetectorError as exc:
    ...     print(exc)
    value must be a finite number, got nan
    """
    return _finite(ts, "ts"), _finite(value, "value")


def _finite(x: Any, name: str) -> float:
    if type(x) is float:  # fast path: the streams worker always passes floats
        if math.isfinite(x):
            return x
        raise DetectorError(f"{name} must be a finite number, got {x!r}")
    if isinstance(x, bool) or not isinstance(x, numbers.Real):
        # bool is an int subclass; a True KPI value is almost surely a bug upstream
        raise DetectorError(f"{name} must be a finite number, got {x!r}")
    f = float(x)
    if not math.isfinite(f):
        raise DetectorError(f"{name} must be a finite number, got {x!r}")
    return f
