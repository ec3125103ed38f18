"""Level-shift detection: a lasting shift becomes the new normal.

A two-sided CUSUM (Page's test, the statistic behind River's
``drift.PageHinkley``) on *standardised, clipped* residuals.  We keep our own
few-line version instead of wrapping River's because the default detector's
state must be compact plain JSON, and because clipping each step at ``clip``
standard deviations means one huge spike can never pass for a shift: only a run
of consistently one-sided residuals can.

While an excursion is running it also sums the raw residuals, so when the
alarm fires the size of the shift is known (the classic CUSUM change-point
estimate) and the baseline can jump straight to the new level.
"""

from __future__ import annotations

from typing import Any

__all__ = ["LevelShift"]


class LevelShift:
    """Two-sided CUSUM on standardised residuals.

    Parameters
    ----------
    slack : float
        Allowance ``k`` per point, in standard deviations: residuals smaller
        than this never accumulate.
    limit : float
        Alarm level ``h``.  With ``clip`` = 4 and ``slack`` = 1 a shift needs at
        least ``limit / 3`` points in a row to be accepted.
    clip : float
        Each point contributes at most ``clip`` standard deviations.

    Examples
    --------
    >>> cusum = LevelShift(slack=1.0, limit=12.0, clip=4.0)
    >>> [cusum.step(z=10.0, residual=50.0) for _ in range(5)]
    [None, None, None, None, 50.0]
    """

    __slots__ = ("slack", "limit", "clip", "up", "down", "up_sum", "up_n", "down_sum", "down_n")

    def __init__(self, slack: float = 1.0, limit: float = 24.0, clip: float = 4.0) -> None:
        self.slack = slack
        self.limit = limit
        self.clip = clip
        self.reset()

    def reset(self) -> None:
        """Forget any running excursion."""
        self.up = self.down = 0.0
        self.up_sum = self.down_sum = 0.0
        self.up_n = self.down_n = 0

    def step(self, z: float, residual: float) -> float | None:
        """Feed one signed standardised residual ``z`` (and its raw size).

        Returns the estimated shift (mean raw residual over the excursion)
        when a lasting shift is detected, after which the statistic restarts;
        otherwise ``None``.
        """
        c = self.clip
        zc = c if z > c else (-c if z < -c else z)
        self.up = self.up + zc - self.slack
        if self.up > 0.0:
            self.up_sum += residual
            self.up_n += 1
        else:
            self.up = self.up_sum = 0.0
            self.up_n = 0
        self.down = self.down - zc - self.slack
        if self.down > 0.0:
            self.down_sum += residual
            self.down_n += 1
        else:
            self.down = self.down_sum = 0.0
            self.down_n = 0
        if self.up > self.limit or self.down > self.limit:
            shift = self.up_sum / self.up_n if self.up > self.limit else self.down_sum / self.down_n
            self.reset()
            return shift
        return None

    def would_fire(self, z: float) -> bool:
        """Whether :meth:`step` with ``z`` would report a shift (no side effects)."""
        c = self.clip
        zc = c if z > c else (-c if z < -c else z)
        return max(self.up + zc, self.down - zc) - self.slack > self.limit

    def to_list(self) -> list[Any]:
        """Running statistics as a JSON list (parameters are saved by the owner)."""
        return [self.up, self.up_sum, self.up_n, self.down, self.down_sum, self.down_n]

    def load_list(self, data: list[Any]) -> None:
        """Restore what :meth:`to_list` returned."""
        self.up, self.up_sum, self.up_n, self.down, self.down_sum, self.down_n = (
            float(data[0]), float(data[1]), int(data[2]), float(data[3]), float(data[4]), int(data[5]))
