"""The input of the alerting core: one closed KPI window value for one series."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["Sample"]


@dataclass(frozen=True, slots=True)
class Sample:
    """One closed window of one series, with the detector's verdict when there is one.

    ``labels`` is ``{}`` for the total series and e.g. ``{"region": "east"}`` for a dimension series.
    ``value`` is ``None`` when the window held no data (absence). Times are epoch seconds. ``revision`` is 0
    for a window's first final value and counts up with each correction (late events within grace); alert
    state is judged on a series' newest window, and a revision of an older one only corrects history.

    Examples
    --------
    >>> Sample("paid_orders", {}, 0.0, 60.0, 12.0).value
    12.0
    """

    kpi: str
    labels: Mapping[str, str]
    window_start: float
    window_end: float
    value: float | None
    expected: float | None = None
    lower: float | None = None
    upper: float | None = None
    score: float | None = None
    is_anomaly: bool = False
    drift: bool = False
    revision: int = 0
