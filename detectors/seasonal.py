"""The default detector: a robust, seasonality-aware online baseline.

Model (additive, learned online, no look-ahead)::

    expected(t) = level + daily[hour-of-day(t)] (+ weekend[hour-of-day(t)] on Sat/Sun)

* ``level`` follows the de-seasonalised value with rate ``level_rate`` per point
  (Holt-Winters style: the level takes the slow wander, the profile the shape).
* ``daily`` holds 24 knots (one per hour); the profile between knots is linear,
  so 1-minute and 1-hour series alike get a smooth expected curve.  Weekdays
  train ``daily``; weekend days train ``weekend``, a 24-knot correction, so a
  business series that is quiet on Sundays is expected to be quiet on Sundays.
  Profile learning rates are per *day* of data (``season_rate``), so the
  profile's memory is the same whatever the sampling interval.
* ``dev`` is the exponentially weighted mean absolute residual; the robust
  standard deviation is ``1.2533 * dev``.

Robustness: every update uses the residual clipped at ``clip`` standard
deviations (a Huber step), so an anomaly moves the baseline by a small, bounded
amount and cannot poison it.

What counts as news (all cheap running statistics, all in the JSON state):

* *heavy tails*: a running 99.5% quantile of ``|z|`` widens sigma for series
  whose tails are heavier than a normal's (it starts 10% below a normal's, so the
  first couple of 3-sigma points of a short clean history do not widen sigma);
* *seen before*: the largest deviation above and below, fading over
  ``memory_days``; a deviation must beat it by 25% to alarm, so recurring
  spikes, nightly batch jobs and square-wave edges become normal;
* *small lasting shifts*: a second channel scores the recent mean residual
  (weight 0.3 per point) against its own, smaller standard deviation.  Its
  scale is the larger of that deviation and its own fading peak, so after a
  quiet spell a single large spike can fire it too;
* *never seen*: a third channel compares the value itself with the range of
  values seen (``hi``/``lo``, fading towards their middle over 20 x
  ``memory_days``).  The score is 8 x (distance outside the range, less half a
  sigma) / (range width), so 0.6 means "7.5% of the range (plus half a sigma)
  beyond anything seen lately"; the half sigma keeps record-breaking noise
  quiet.  Slow climbs to new territory show here although the fast level
  follows them.  A young range is narrow: the channel starts after 30 points
  (so a drop to zero after a short clean history is news even when a few
  early outliers widened sigma) and asks for up to one more sigma until 2000
  points.  With a weekly profile,
  weekend points wait for a full week (the first weekend is quieter than
  anything seen) and weekday points for one full weekday.

Drift: a CUSUM on standardised residuals (:class:`detectors.drift.LevelShift`)
notices a lasting shift; the baseline jumps to the new level and the verdict
carries ``drift=True`` once, instead of flagging every point forever.

Score: the largest of the three channels.  The first two give the two-sided
Gaussian tail probability ``p`` of their standardised deviation as a surprise
``score = min(1, -log10(p) / 10)``: 0.5 means "one in 100,000", 1.0 "one in
10**10 or rarer"; the range channel is scaled as above.  ``is_anomaly`` is
exactly ``score >= threshold`` (see :data:`THRESHOLDS`) and ``[lower, upper]``
is the range of values that would not alarm (widened to contain ``expected`` in
the rare case a channel alarms whatever the value).

Cold start: during warm-up the level and ``dev`` are running means; the first
residual (the value itself, against a level of 0) does not count in ``dev``,
later ones are scaled by sqrt((n-1)/n) (they are against the mean of the points
before) and, after 10 points, clipped like later residuals, so a short clean
history starts with its real sigma.  No verdict counts until ``warmup`` points (default 30) have been
seen *and*, unless ``seasonality="none"``, the series spans one day; until then
``warming_up`` is True, ``score`` is 0 and the band is None.  The profile
sharpens over the first days; the weekend shape needs two or three weekends.

State: plain JSON of about 1.7 KB (parameters, 48 profile knots, a dozen numbers),
``"version": 2``; version-1 states (before the range channel) are refused with a
:class:`DetectorError` that says so.
"""

from __future__ import annotations

import math
from typing import Any

from detectors.base import SENSITIVITIES, DetectorError, Verdict, check_point
from detectors.drift import LevelShift

__all__ = ["SeasonalDetector", "THRESHOLDS"]

#: Score threshold per sensitivity.  score = -log10(p) / 10, so 0.6 is p = 1e-6.
THRESHOLDS: dict[str, float] = {"low": 0.7, "medium": 0.6, "high": 0.5}

_Season = tuple[float, int, float, bool]  # offset, knot, fraction to the next knot, weekend
_SIGMA_PER_DEV = math.sqrt(math.pi / 2.0)  # mean absolute deviation -> std of a normal
_SQRT2 = math.sqrt(2.0)
_SEASONALITIES = ("weekly", "daily", "none")
_PEAK_MARGIN = 1.25  # a deviation must beat the fading peak by 25% to be news
_MEAN_RATE = 0.3  # weight of a point in the recent mean, the channel for small lasting shifts
_MEAN_SD = math.sqrt(_MEAN_RATE / (2.0 - _MEAN_RATE))  # its sd, relative to a point's
_WARM_S = 86400.0  # seasonal models judge nothing before they have seen one day
_TAIL_Z = 2.807  # 99.5% two-sided quantile of a normal
_TAIL_UP, _TAIL_DOWN = 0.05, 0.05 * 0.005 / 0.995  # log-steps whose balance point is that quantile
_WARM_CLIP_N = 10  # during warm-up, residuals are clipped at `clip` sigmas after this many points
_TAIL_START = math.exp(-0.1)  # the quantile starts low: two early 2.8-sigma points widen nothing
_RANGE_MEMORY = 20.0  # the range of values seen fades over this many times memory_days
_RANGE_GAIN = 8.0  # range score per range width outside the range: 0.6 is 7.5% of the width
_RANGE_SLACK = 0.5  # plus this many (un-widened) sigmas, so white noise rarely scores
_RANGE_YOUNG, _RANGE_GROWN = 1.0, 2000.0  # one more sigma at first, fading out over 2000 points
_RANGE_MIN_N = 30  # points before the range is a reference at all (a young one gets extra slack)
_VERSION = 2  # of the JSON state


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


class SeasonalDetector:
    """Seasonal robust baseline with drift handling (kind ``"seasonal"``).

    Parameters
    ----------
    sensitivity : {"low", "medium", "high"}
        Picks the score threshold from :data:`THRESHOLDS`.
    seasonality : {"weekly", "daily", "none"}
        Profiles to learn: hour-of-day plus a weekend correction, hour-of-day
        only, or none (a plain robust level).
    level_rate : float
        Weight of a new point in the level (0 < rate <= 1).
    season_rate : float
        How far a profile knot moves towards the data per day of data.
    dev_rate : float
        Weight of a new point in the mean absolute residual.
    clip : float
        Residuals are clipped at this many standard deviations before learning.
    warmup : int
        Points before the first verdict counts.
    drift_limit : float
        CUSUM alarm level; larger needs a longer shift before it becomes normal
        (at least ``drift_limit / 3`` points in a row).
    memory_days : float
        How long a past deviation keeps similar ones from alarming (e-folding
        time; the recent-mean channel forgets 4x faster).
    utc_offset_h : float
        Local time offset, so "hour of day" and "weekend" are local.

    Examples
    --------
    >>> det = SeasonalDetector(seasonality="none")
    >>> for i in range(60):
    ...     _ = det.update(60.0 * i, 100.0 + (i % 3))
    >>> v = det.update(3600.0, 100.0)
    >>> v.is_anomaly, v.warming_up, v.lower < v.expected < v.upper
    (False, False, True)
    >>> det.update(3660.0, 500.0).is_anomaly
    True
    """

    kind = "seasonal"
    __slots__ = ("params", "threshold", "_zband", "_cusum", "n", "t_first", "t_last", "dt", "level", "dev",
                 "recent", "shift", "tail", "peaks", "hi", "lo", "daily", "weekend")

    def __init__(self, sensitivity: str = "medium", *, seasonality: str = "weekly",
                 level_rate: float = 0.1, season_rate: float = 0.3, dev_rate: float = 0.005,
                 clip: float = 3.0, warmup: int = 30, drift_limit: float = 24.0,
                 memory_days: float = 6.0, utc_offset_h: float = 0.0) -> None:
        self.params: dict[str, Any] = {
            "sensitivity": sensitivity, "seasonality": seasonality, "level_rate": level_rate,
            "season_rate": season_rate, "dev_rate": dev_rate, "clip": clip, "warmup": warmup,
            "drift_limit": drift_limit, "memory_days": memory_days, "utc_offset_h": utc_offset_h}
        _validate(self.params)
        self.threshold = THRESHOLDS[sensitivity]
        self._zband = z_for_score(self.threshold)
        self._cusum = LevelShift(slack=1.0, limit=float(drift_limit), clip=4.0)
        self.n = 0
        self.t_first = self.t_last = 0.0
        self.dt = 0.0  # typical sampling interval in seconds, 0 until known
        self.level = 0.0
        self.dev = 0.0
        self.recent = 0.0  # fast average of (capped) residuals: small shifts show here first
        self.shift = 0.0  # the same, uncapped: the size of a shift in progress
        self.tail = _TAIL_Z * _TAIL_START  # running 99.5% quantile of |z|: calibrates heavy tails
        # Fading largest deviations: point above, point below, recent mean above, below
        self.peaks = [0.0] * 4
        self.hi = self.lo = 0.0  # fading range of the values seen: far outside it is news
        self.daily = [0.0] * 24 if seasonality != "none" else []
        self.weekend = [0.0] * 24 if seasonality == "weekly" else []

    @classmethod
    def _test_params(cls) -> list[dict[str, Any]]:
        """Configurations the conformance suite runs (see :mod:`detectors.checks`)."""
        return [{}, {"seasonality": "none", "sensitivity": "high"}, {"seasonality": "daily"}]

    # -- protocol -------------------------------------------------------------------------

    def score_one(self, ts: float, value: float) -> Verdict:
        """Judge one point without learning from it."""
        ts, value = check_point(ts, value)
        verdict, r, _, sigma, _ = self._judge(ts, value)
        if verdict.warming_up or not self._cusum.would_fire(r / sigma):
            return verdict
        return _with_drift(verdict)

    def learn_one(self, ts: float, value: float) -> None:
        """Learn from one point."""
        ts, value = check_point(ts, value)
        verdict, r, rc, sigma, season = self._judge(ts, value)
        self._learn(ts, value, r, rc, sigma, season, verdict.warming_up)

    def update(self, ts: float, value: float) -> Verdict:
        """Score one point, then learn from it; return the verdict."""
        ts, value = check_point(ts, value)
        verdict, r, rc, sigma, season = self._judge(ts, value)
        if self._learn(ts, value, r, rc, sigma, season, verdict.warming_up):
            return _with_drift(verdict)
        return verdict

    # -- model ----------------------------------------------------------------------------

    def _season_at(self, ts: float) -> _Season:
        """Seasonal offset at ``ts`` and where it came from: (offset, knot, fraction, weekend)."""
        if not self.daily:
            return 0.0, 0, 0.0, False
        local = ts + 3600.0 * self.params["utc_offset_h"]
        hour = (local % 86400.0) / 3600.0
        i = int(hour)
        f = hour - i
        j = i + 1 if i < 23 else 0
        d = self.daily
        offset = d[i] + f * (d[j] - d[i])
        # 1970-01-01 was a Thursday: (day + 3) % 7 counts from Monday = 0
        weekend = bool(self.weekend) and (int(local // 86400.0) + 3) % 7 >= 5
        if weekend:
            w = self.weekend
            offset += w[i] + f * (w[j] - w[i])
        return offset, i, f, weekend

    def _judge(self, ts: float, value: float) -> tuple[Verdict, float, float, float, _Season]:
        """Verdict plus what learning needs: residual, its capped value, sigma, seasonal position."""
        season = self._season_at(ts)
        expected = self.level + season[0]
        r = value - expected
        sigma = _SIGMA_PER_DEV * self.dev
        floor = 1e-3 * abs(self.level) + 1e-9  # a perfectly flat series must not make 0.1% a disaster
        if sigma < floor:
            sigma = floor
        if self.n < self.params["warmup"] or (self.daily and ts - self.t_first < _WARM_S):
            return Verdict(ts, value, 0.0, None, None, None, False, False, True), r, r, sigma, season
        sigma_raw = sigma  # the range channel's slack: noise, not tails (spiky series keep their spikes)
        sigma *= _widening(self.tail)  # heavier tails than a normal: widen sigma to match them
        pk = self.peaks
        up_p, up_m = self._sigmas(sigma, pk[0], pk[2])
        lo_p, lo_m = self._sigmas(sigma, pk[1], pk[3])
        zb = self._zband
        # the mean channel sees a point at most at the edge of the point band, so a spike moves
        # it a bounded amount (but its own scale can be smaller than 0.3 x the point scale)
        rc = zb * up_p if r > zb * up_p else (-zb * lo_p if r < -zb * lo_p else r)
        m = self.recent + _MEAN_RATE * (rc - self.recent)
        z = max(r / up_p, m / up_m) if r > 0.0 else max(-r / lo_p, -m / lo_m)
        score = score_from_z(z)
        width = self._width()
        if self._range_ready(ts, season[3]):
            slack = (_RANGE_SLACK + _RANGE_YOUNG * max(0.0, 1.0 - self.n / _RANGE_GROWN)) * sigma_raw
            beyond = (value - self.hi if value > self.hi else self.lo - value) - slack
            outside = _RANGE_GAIN * beyond / width
            if outside > score:
                score = outside if outside < 1.0 else 1.0
            margin = self.threshold / _RANGE_GAIN * width + slack
        else:
            margin = math.inf
        # the values that would not alarm: all three channels inside their bands
        upper = min(zb * up_p, (zb * up_m - (1.0 - _MEAN_RATE) * self.recent) / _MEAN_RATE,
                    self.hi + margin - expected)
        lower = max(-zb * lo_p, (-zb * lo_m - (1.0 - _MEAN_RATE) * self.recent) / _MEAN_RATE,
                    self.lo - margin - expected)
        verdict = Verdict(ts, value, score, expected, expected + min(lower, 0.0), expected + max(upper, 0.0),
                          score >= self.threshold, False, False)
        return verdict, r, rc, sigma, season

    def _range_ready(self, ts: float, weekend: bool) -> bool:
        """Whether the range of values seen is a fair reference for a point at ``ts``.

        With a weekly profile, weekend points wait for a full week (the first
        weekend is quieter than anything seen), weekday points for one full weekday
        (a series that starts on a Saturday has seen only the quiet days).
        """
        if self.n < _RANGE_MIN_N:  # the range of a few points says little about what is rare
            return False
        if not self.weekend or ts - self.t_first >= 7.0 * 86400.0:
            return True
        if weekend:
            return False
        shift = 3600.0 * self.params["utc_offset_h"]
        day = (self.t_first + shift) // 86400.0
        dow = (int(day) + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
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

    def _learn(self, ts: float, value: float, r: float, rc: float, sigma: float, season: _Season,
               warming_up: bool) -> bool:
        """Move the baseline towards the point; return True when a level shift was accepted."""
        p = self.params
        self._learn_interval(ts)
        self.n += 1
        self._learn_range(value)
        if warming_up:  # running means first, so the start does not crawl up from zero
            self.level += max(p["level_rate"], 1.0 / self.n) * r
            if self.n > 1:  # the first residual is the value itself (against level 0): no spread
                # r is against the mean of the n - 1 points before: its spread is sqrt(n / (n - 1))
                # times a point's, which would leave a young sigma too wide (and 5-sigma drops quiet)
                k = self.n - 1
                e = abs(r) * math.sqrt(k / self.n)
                if k > _WARM_CLIP_N:  # clipped here too: one early outlier must not set sigma for days
                    e = min(e, p["clip"] * _SIGMA_PER_DEV * self.dev)
                self.dev += max(p["dev_rate"], 1.0 / k) * (e - self.dev)
            return False
        c = p["clip"] * sigma
        rh = c if r > c else (-c if r < -c else r)  # Huber step: an outlier moves us a bounded amount
        a = p["level_rate"]
        self.level += a * rh
        if self.daily and self.dt > 0.0:
            self._learn_season(season, (1.0 - a) * rh)
        self.dev += p["dev_rate"] * (min(abs(r), c) - self.dev)
        self._learn_surprise(r, rc, sigma)
        self.shift += _MEAN_RATE * (r - self.shift)
        if self._cusum.step(r / sigma, r) is None:
            return False
        self.level += self.shift  # jump to the new normal instead of crawling there
        self.recent = self.shift = 0.0
        return True

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

    def _learn_surprise(self, r: float, rc: float, sigma: float) -> None:
        """Tail quantile, recent mean and fading peaks: what decides whether a deviation is news."""
        # peaks fade in time, not points; the mean channel's 4x faster: a sustained shift
        # is forgotten sooner than a spike, so a nightly batch job stays normal all week
        d = math.exp(-self.dt / (86400.0 * self.params["memory_days"]))
        dm = d * d * d * d
        # |z| against the un-widened sigma, so the quantile tracks the true tail
        raw_z = abs(r) / sigma * _widening(self.tail)
        self.tail *= math.exp(_TAIL_UP if raw_z > self.tail else -_TAIL_DOWN)
        self.recent += _MEAN_RATE * (rc - self.recent)
        pk, m = self.peaks, self.recent
        pk[0], pk[1] = max(pk[0] * d, r), max(pk[1] * d, -r)
        pk[2], pk[3] = max(pk[2] * dm, m), max(pk[3] * dm, -m)

    def _learn_season(self, season: _Season, residual: float) -> None:
        _, i, f, weekend = season
        # per-point rate so that a knot moves `season_rate` per day whatever the interval
        g = min(0.5, self.params["season_rate"] * self.dt / 3600.0) * residual
        knots = self.weekend if weekend else self.daily
        knots[i] += g * (1.0 - f)
        knots[i + 1 if i < 23 else 0] += g * f

    def _learn_interval(self, ts: float) -> None:
        if self.n == 0:
            self.t_first = ts
        gap = ts - self.t_last
        if self.n > 0 and gap > 0.0:  # repeated or backwards timestamps say nothing about the interval
            self.dt = gap if self.dt == 0.0 else self.dt + 0.05 * (min(gap, 4.0 * self.dt) - self.dt)
        self.t_last = ts

    # -- state ----------------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        """Plain-JSON state (about 1.7 KB): parameters plus the learned numbers."""
        return {"kind": self.kind, "version": _VERSION, "params": dict(self.params), "n": self.n,
                "t_first": self.t_first, "t_last": self.t_last, "dt": self.dt, "level": self.level, "dev": self.dev,
                "recent": self.recent, "shift": self.shift, "tail": self.tail, "peaks": list(self.peaks), "range": [self.hi, self.lo],
                "cusum": self._cusum.to_list(),
                "daily": list(self.daily), "weekend": list(self.weekend)}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> SeasonalDetector:
        """Rebuild a detector from :meth:`to_state` output (refuses other state versions)."""
        if isinstance(state, dict) and state.get("version", _VERSION) != _VERSION:
            raise DetectorError(f"not a valid seasonal detector state: version {state['version']!r} is not "
                                f"supported (this is version {_VERSION}; the model changed, start a fresh detector)")
        try:
            det = cls(**state["params"])
            det.n = int(state["n"])
            det.t_first, det.t_last, det.dt = float(state["t_first"]), float(state["t_last"]), float(state["dt"])
            det.level, det.dev = float(state["level"]), float(state["dev"])
            det.recent, det.shift = float(state["recent"]), float(state["shift"])
            det.tail = float(state["tail"])
            det.peaks = [float(x) for x in state["peaks"]]
            if len(det.peaks) != 4:
                raise ValueError("peaks must hold 4 numbers")
            det.hi, det.lo = (float(x) for x in state["range"])
            det._cusum.load_list(state["cusum"])
            det.daily = [float(x) for x in state["daily"]]
            det.weekend = [float(x) for x in state["weekend"]]
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise DetectorError(f"not a valid seasonal detector state: {exc!r}") from exc
        return det


def _widening(tail: float) -> float:
    """Factor on sigma for a running 99.5% quantile ``tail`` of ``|z|``.

    Only a quantile above a normal's widens sigma (never narrows it).
    """
    t = tail / _TAIL_Z
    return t if t > 1.0 else 1.0


def _with_drift(v: Verdict) -> Verdict:
    return Verdict(v.ts, v.value, v.score, v.expected, v.lower, v.upper, v.is_anomaly, True, v.warming_up)


def _validate(p: dict[str, Any]) -> None:
    """Raise DetectorError naming the first bad parameter."""
    if p["sensitivity"] not in SENSITIVITIES:
        raise DetectorError(f"sensitivity must be one of {SENSITIVITIES}, got {p['sensitivity']!r}")
    if p["seasonality"] not in _SEASONALITIES:
        raise DetectorError(f"seasonality must be one of {_SEASONALITIES}, got {p['seasonality']!r}")
    for name in ("level_rate", "season_rate", "dev_rate"):
        if not isinstance(p[name], (int, float)) or not 0.0 < p[name] <= 1.0:
            raise DetectorError(f"{name} must be in (0, 1], got {p[name]!r}")
    for name in ("clip", "drift_limit", "memory_days"):
        if not isinstance(p[name], (int, float)) or not 0.0 < p[name] < math.inf:
            raise DetectorError(f"{name} must be a positive number, got {p[name]!r}")
    if isinstance(p["warmup"], bool) or not isinstance(p["warmup"], int) or p["warmup"] < 1:
        raise DetectorError(f"warmup must be a positive integer, got {p['warmup']!r}")
    if not isinstance(p["utc_offset_h"], (int, float)) or not -24.0 < p["utc_offset_h"] < 24.0:
        raise DetectorError(f"utc_offset_h must be within (-24, 24), got {p['utc_offset_h']!r}")
