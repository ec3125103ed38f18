"""The numbers a seasonal detector learns: one declaration of the slots of
:class:`~detectors.seasonal.detector.SeasonalDetector`, which the baseline and channel mixins read and write
and the state codec saves and restores."""

from __future__ import annotations

from array import array
from typing import Any, ClassVar

from catalog.calendar import Calendar
from detectors.drift import LevelShift

__all__ = ["Fields"]


class Fields:
    """The slots and their types; ``SeasonalDetector.__init__`` sets them."""

    __slots__ = ("params", "threshold", "_zband", "_cusum", "n", "t_first", "t_last", "dt", "level", "slow",
                 "dev", "sdev", "recent", "shift", "tail", "peaks", "hi", "lo", "daily", "weekly", "dayf", "hours",
                 "tod", "tod_n", "hours_mean", "lag", "week", "day_sum", "day_n", "day", "quiet_until",
                 "alarm_score", "calendar", "hol", "_cal_day", "_cal_info")
    kind: ClassVar[str]
    params: dict[str, Any]
    threshold: float
    _zband: float
    _cusum: LevelShift
    n: int
    t_first: float
    t_last: float
    dt: float
    level: float
    slow: float
    dev: float
    sdev: float
    recent: float
    shift: float
    tail: float
    peaks: list[float]
    hi: float
    lo: float
    daily: array[float]
    weekly: array[float]
    dayf: array[float]
    hours: array[float]
    tod: array[float]
    tod_n: array[float]
    hours_mean: array[float]
    lag: array[float]
    week: float
    day_sum: float
    day_n: float
    day: int
    quiet_until: float
    alarm_score: float
    calendar: Calendar | None  # shared, given at construction or restore; never in the state
    hol: float  # the day factor of a holiday (0: unknown); in the state only when learned
    _cal_day: int  # memo of the last day looked up in the calendar, and what it is (see Baseline._day_info)
    _cal_info: tuple[int, float]
