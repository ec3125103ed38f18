"""The scoring channels: what makes a deviation news (point, recent mean, hours, range of values seen)
and the running statistics each learns -- tail quantile, fading peaks, time-of-day alarms (the
package docstring describes them)."""

from __future__ import annotations

import math

from detectors.seasonal.baseline import _weekday
from detectors.seasonal.fields import Fields
from detectors.seasonal.tuning import (
    _HM_S,
    _MEAN_RATE,
    _MEAN_SD,
    _PEAK_MARGIN,
    _RANGE_MEMORY,
    _RANGE_MIN_N,
    _SC_REF_S,
    _SC_SLACK,
    _SIGMA_PER_DEV,
    _SQRT2,
    _TAIL_DOWN,
    _TAIL_UP,
    _TAIL_Z,
)

__all__ = ["Channels", "score_from_z", "z_for_score"]


def score_from_z(z: float) -> float:
    """Surprise score of a standardised residual ``z`` (two-sided Gaussian tail).

    Examples
    --------
    >>> round(score_from_z(0.0), 3), round(score_from_z(5.0), 3), score_from_z(50.0)
    (0.0, 0.624, 1.0)
    """
    if z > 37.0:  # erfc underflows near 38.5; the score is long since clipped at 1
        return 1.0
    s = -math.log10(math.erfc(z / _SQRT2)) / 10.0
    return 1.0 if s > 1.0 else (s if s > 0.0 else 0.0)  # also turns -0.0 into 0.0


def z_for_score(score: float) -> float:
    """Inverse of :func:`score_from_z`, by bisection (used once per detector).

    Examples
    --------
    >>> round(z_for_score(score_from_z(5.0)), 6)
    5.0
    """
    lo, hi = 0.0, 37.0
    for _ in range(60):
        mid = (lo + hi) / 2.0
        lo, hi = (mid, hi) if score_from_z(mid) < score else (lo, mid)
    return hi


class Channels(Fields):
    """The channel half of the model: scales, references and the statistics behind them."""

    __slots__ = ()

    def _range_ready(self, ts: float, weekend: bool) -> bool:
        """Whether the range of values seen is a fair reference for a point at ``ts``.

        With a weekly profile, weekend points wait for a full week (the first
        weekend is quieter than anything seen), weekday points for one full weekday
        (a series that starts on a Saturday has seen only the quiet days).
        """
        if self.n < _RANGE_MIN_N:  # the range of a few points says little about what is rare
            return False
        if not self.weekly or ts - self.t_first >= 7.0 * 86400.0:
            return True
        if weekend:
            return False
        shift = 3600.0 * self.params["utc_offset_h"]
        day = (self.t_first + shift) // 86400.0
        dow = _weekday(int(day))
        first_weekday = self.t_first if dow < 5 else (day + 7 - dow) * 86400.0 - shift
        return ts - first_weekday >= 86400.0

    def _width(self) -> float:
        """Width of the range of values seen, never zero."""
        return self.hi - self.lo + 1e-3 * max(abs(self.hi), abs(self.lo)) + 1e-9

    def _sigmas(self, sigma: float, peak: float, peak_mean: float) -> tuple[float, float]:
        """Scale of a point and of the recent mean, each at least its fading peak (plus margin).

        A deviation no larger than one seen lately is not news: recurring spikes
        and square-wave edges become normal.
        """
        k = _PEAK_MARGIN / self._zband
        p = peak * k
        m = peak_mean * k
        sm = sigma * _MEAN_SD
        return (sigma if sigma > p else p), (sm if sm > m else m)

    def _hm_rate(self) -> float:
        """Weight of a point in the hours channel's mean (``_HM_S`` seconds of data)."""
        a = self.dt / _HM_S
        return a if a < 1.0 else 1.0

    def _hm_scales(self, sigma: float) -> tuple[float, float]:
        """Scale of the hours channel above and below: its own spread, at least its fading peaks.

        The spread is learned (mean |hours mean|), not assumed from the point
        sigma: real residuals wander together for hours, and a series that
        wanders is held to its own wander.
        """
        hm = self.hours_mean
        k = _PEAK_MARGIN / self._zband
        s = _SIGMA_PER_DEV * hm[1]
        floor = 1e-3 * sigma
        if s < floor:
            s = floor
        return max(s, hm[2] * k), max(s, hm[3] * k)

    def _learn_lag(self, u: float, ready: bool) -> None:
        """Step the lag channel's CUSUMs on ``u`` (the point against the reference, in sigmas) and move the
        reference towards the fast level (``_SC_REF_S`` behind it).

        Until the channel counts (``ready``) the CUSUMs stay at zero: the runs of a young profile are no
        reference."""
        sc = self.lag
        if sc[2] == 0.0:
            sc[3] = self.level
        sc[2] += 1.0
        a = self.dt / _SC_REF_S
        sc[3] += (a if a < 1.0 else 1.0) * (self.level - sc[3])
        if not ready:
            sc[0] = sc[1] = 0.0
            return
        up, down = sc[0] + u - _SC_SLACK, sc[1] - u - _SC_SLACK
        sc[0], sc[1] = (up if up > 0.0 else 0.0), (down if down > 0.0 else 0.0)

    def _learn_range(self, value: float) -> None:
        """Fade the range towards its middle (in time, not points), then widen it to the value.

        A level shift accepted by the CUSUM needs no special case here: the new
        values widen the range as they come, and a gradual ramp never scores,
        since each point only just extends the range.
        """
        if self.n == 1:
            self.hi = self.lo = value
            return
        d = math.exp(-self.dt / (86400.0 * _RANGE_MEMORY * self.params["memory_days"]))
        mid = 0.5 * (self.hi + self.lo)
        hi, lo = mid + d * (self.hi - mid), mid + d * (self.lo - mid)
        self.hi = value if value > hi else hi
        self.lo = value if value < lo else lo

    def _learn_surprise(self, r: float, rc: float, sigma: float, hour: int, news: float) -> None:
        """Tail quantile, recent mean and fading peaks: what decides whether a deviation is news."""
        # peaks fade in time, not points; the mean channel's 4x faster: a sustained shift
        # is forgotten sooner than a spike
        d = math.exp(-self.dt / (86400.0 * self.params["memory_days"]))
        dm = d * d * d * d
        # |z| against the un-widened sigma, so the quantile tracks the true tail
        raw_z = abs(r) / sigma * _widening(self.tail)
        self.tail *= math.exp(_TAIL_UP if raw_z > self.tail else -_TAIL_DOWN)
        self.recent += _MEAN_RATE * (rc - self.recent)
        pk, m = self.peaks, self.recent
        pk[0], pk[1] = max(pk[0] * d, r), max(pk[1] * d, -r)
        pk[2], pk[3] = max(pk[2] * dm, m), max(pk[3] * dm, -m)
        hm = self.hours_mean
        hm[0] += self._hm_rate() * (rc - hm[0])
        hm[4] += 1.0  # float32 counts exactly to 16.7 million points
        h = hm[0]
        hm[1] += max(self.params["dev_rate"], 1.0 / hm[4]) * (abs(h) - hm[1])
        hm[2], hm[3] = max(hm[2] * d, h), max(hm[3] * d, -h)
        # an hour is visited 1/24 of the time: fading 24x faster per visit fades it per day
        t = self.tod
        if t[hour]:
            f24 = d ** 24
            seen = t[hour] * f24
            self.tod_n[hour] *= f24
        else:
            seen = 0.0
        if news:
            self.tod_n[hour] += 1.0
        t[hour] = news if news > seen else seen


def _widening(tail: float) -> float:
    """Factor on sigma for a running 99.5% quantile ``tail`` of ``|z|``.

    Only a quantile above a normal's widens sigma (never narrows it).
    """
    t = tail / _TAIL_Z
    return t if t > 1.0 else 1.0
