"""The default detector: a robust, seasonality-aware online baseline.

Model (additive, learned online, no look-ahead)::

    expected(t) = level + daily[time of day] + day_factor[day of week] * scale(t) + weekly[time of week]

* ``daily`` holds 96 knots (one per 15 minutes), linear between knots, so 1-minute
  and 1-hour series alike get a smooth expected curve and a shop that opens at
  9:00 gets a sharp morning edge.  It is learned against a **slow level**
  (e-folding time one day), so the shape of the day is measured against the
  day's level, not the last hour's; it is kept centred (it averages zero over the
  day, the levels carry the mean).  Learning rates are per *day* of data
  (``season_rate``), so memory is the same whatever the sampling interval; a
  young profile learns at least 0.5 / (days seen) per day, a running mean of the
  first days instead of a slow crawl from zero.
* ``day_factor`` (weekly seasonality) is each day of the week's mean level
  against the level of the last week or so, learned when the day ends (the first
  one sets it, later ones move it half way), scaled by ``(slow + daily) / week``
  so a Sunday at 60% is 60% at 3 a.m. and at 3 p.m.: a step at midnight into a
  quiet weekend is expected, not news.  A day of the week not seen yet borrows
  the mean of the seen days of its kind (weekday or weekend).  When a factor
  changes, the levels that carried the difference give it back, so a weekend
  does not drag Monday's expectation down.
* ``weekly`` is a smooth correction of 84 knots (one per 2 hours of the week,
  Monday 00:00 first) learning at half the daily rate per visit: Saturday evening
  can differ from Sunday evening.  The weekly parts start learning after two
  days of data, once the daily profile has settled.
* ``level`` is the **fast level**: it follows the de-seasonalised value with
  rate ``level_rate`` per point and takes the short-term wander the profile
  cannot know.
* ``dev`` is the exponentially weighted mean absolute residual; the robust
  standard deviation is ``1.2533 * dev``.  ``hours`` is each hour of the day's
  mean absolute residual in units of ``dev`` (weight 0.07 per hour of data at
  that hour); the mean of an hour and its nearer neighbour widens sigma when
  above 1 (never narrows it), so the busy afternoon of a count series, whose
  noise grows with the count, is not held to the quiet night's noise.

Robustness: every update uses the residual clipped at ``clip`` standard
deviations (a Huber step), so an anomaly moves the baseline by a small, bounded
amount and cannot poison it.

What counts as news (all cheap running statistics, all in the JSON state):

* *heavy tails*: a running 99.5% quantile of ``|z|`` widens sigma for series
  whose tails are heavier than a normal's (it starts 10% below a normal's, so the
  first couple of 3-sigma points of a short clean history do not widen sigma);
* *seen before*: the largest deviation above and below, fading over
  ``memory_days``; a deviation must beat it by 17% to alarm, so recurring
  spikes and square-wave edges become normal;
* *seen before at this time of day*: after about three alarms at an hour of the
  day (a fading count), deviations there no larger than 1.5 x the one seen are
  held, so a nightly batch job at 03:10 stops alarming after three or four
  nights while a spike at noon still alarms;
* *small lasting shifts*: a second channel scores the recent mean residual
  (weight 0.3 per point) against its own, smaller standard deviation.  Its
  scale is the larger of that deviation and its own fading peak, so after a
  quiet spell a single large spike can fire it too;
* *a few hours off*: the *hours channel* averages the (capped) residuals over
  about four hours of data and scores that mean against its **own learned
  spread** (1.2533 x its mean absolute value, at least its fading peak plus
  17%), not against the point sigma: real residuals wander together for hours,
  and each series is held to its own wander.  It sees what no single point
  shows -- spikes that come more often, a daily pattern that runs a little
  lower, a level that has stayed slightly off all afternoon -- and judges after
  half a day of its own data (after the warm-up);
* *never seen*: a third channel compares the value itself with the range of
  values seen (``hi``/``lo``, fading towards their middle over 20 x
  ``memory_days``).  The score is 8 x (distance outside the range, less half a
  sigma) / (range width), so 0.55 means "7% of the range (plus half a sigma)
  beyond anything seen lately"; the half sigma keeps record-breaking noise
  quiet.  Slow climbs to new territory show here although the fast level
  follows them.  A young range is narrow: the channel starts after 30 points
  (so a drop to zero after a short clean history is news even when a few
  early outliers widened sigma) and asks for up to one more sigma until 2000
  points.  With a weekly profile, weekend points wait for a full week (the
  first weekend is quieter than anything seen) and weekday points for one full
  weekday.

Announce once: after an alarm the detector holds further alarms in the same
direction back for ``holdoff_h`` hours (default 4) unless the score beats the
alarm's own by 0.2; held points report a score just below the threshold.  An
incident is one alarm, not one per point; a worse turn of the same incident
still alarms, and so does a drop after a spike (or a spike after a drop).

Drift: a CUSUM on standardised residuals (:class:`detectors.drift.LevelShift`)
notices a lasting shift; the baseline jumps to the new level and the verdict
carries ``drift=True`` once, instead of flagging every point forever.

Score: the largest of the four channels.  The first three give the two-sided
Gaussian tail probability ``p`` of their standardised deviation as a surprise
``score = min(1, -log10(p) / 10)``: 0.5 means "one in 100,000", 1.0 "one in
10**10 or rarer"; the range channel is scaled as above.  ``is_anomaly`` is
exactly ``score >= threshold`` (see :data:`THRESHOLDS`) and ``[lower, upper]``
is the range of values that would not alarm outside a hold-off (widened to
contain ``expected`` in the rare case a channel alarms whatever the value).

Cold start: during warm-up the level and ``dev`` are running means; the first
residual (the value itself, against a level of 0) does not count in ``dev``,
later ones are scaled by sqrt((n-1)/n) (they are against the mean of the points
before) and, after 10 points, clipped like later residuals, so a short clean
history starts with its real sigma.  No verdict counts until ``warmup`` points
(default 30) have been seen *and*, unless ``seasonality="none"``, the series
spans one day; until then ``warming_up`` is True, ``score`` is 0 and the band is
None.  The daily profile is learned during that day already.  The weekly rhythm
is learned from day three on: the first week's days borrow from the days of
their kind, so a weekday that differs from the others (a busy Monday) can alarm
on its first one or two occurrences.

State: plain JSON of about 1.7-2.0 KB (parameters that differ from the
defaults, a couple of dozen numbers, and the 211 profile, day-factor and hour
knots plus the hours channel's 5 numbers as base64 little-endian float32 --
they *are* float32 in memory too, so a restored detector is bit-identical --
plus 48 time-of-day alarm numbers once an hour has alarmed), ``"version": 4``
(version 3 had no hours channel); older states (a different model) are refused
with a :class:`DetectorError` that says so.
"""

from __future__ import annotations

import base64
import inspect
import math
import sys
from array import array
from typing import Any

from detectors.base import SENSITIVITIES, DetectorError, Verdict, check_point
from detectors.drift import LevelShift

__all__ = ["SeasonalDetector", "THRESHOLDS"]

#: Score threshold per sensitivity.  score = -log10(p) / 10, so 0.55 is p = 3e-6.
THRESHOLDS: dict[str, float] = {"low": 0.65, "medium": 0.55, "high": 0.45}

# offset, daily knot, fraction to the next, weekend?, weekly knot, fraction, hour of the day, its nearer neighbour
_Season = tuple[float, int, float, bool, int, float, int, int]
_SIGMA_PER_DEV = math.sqrt(math.pi / 2.0)  # mean absolute deviation -> std of a normal
_SQRT2 = math.sqrt(2.0)
_SEASONALITIES = ("weekly", "daily", "none")
_KNOTS = 96  # daily profile: one knot per 15 minutes
_WK_PER_DAY = 12  # weekly correction: one knot per 2 hours of the week
_WK_KNOTS = 7 * _WK_PER_DAY
_WK_SHARE = 0.5  # the weekly correction learns at half the daily rate per visit
_WK_START = 2.0  # days of data before the weekly parts learn (the daily profile settles first)
_YOUNG_RATE = 0.5  # a young profile learns at least 0.5 / days-seen per day (a running mean at first)
_SLOW_DAYS = 1.0  # e-folding time of the slow level the profile is learned against
_WEEK_DAYS = 7.0  # e-folding time of the week level that day factors are measured against
_DAY_RATE = 0.5  # a day factor moves half way to each new day's value (the first sets it)
_DAY_MIN = 3.0  # day factors scale with the profile only when the week level exceeds 3 sdev
_DAY_SCALE_MAX = 3.0
_HOUR_RATE = 0.07  # hourly noise scale: weight per hour of data at that hour
_HOUR_MAX = 9.0  # ... and the most it widens sigma
_PEAK_MARGIN = 1.17  # a deviation must beat the fading peak by 17% to be news
_MEAN_RATE = 0.3  # weight of a point in the recent mean, the channel for small lasting shifts
_MEAN_SD = math.sqrt(_MEAN_RATE / (2.0 - _MEAN_RATE))  # its sd, relative to a point's
_WARM_S = 86400.0  # seasonal models judge nothing before they have seen one day
_TAIL_Z = 2.807  # 99.5% two-sided quantile of a normal
_TAIL_UP, _TAIL_DOWN = 0.05, 0.05 * 0.005 / 0.995  # log-steps whose balance point is that quantile
_WARM_CLIP_N = 10  # during warm-up, residuals are clipped at `clip` sigmas after this many points
_TAIL_START = math.exp(-0.1)  # the quantile starts low: two early 2.8-sigma points widen nothing
_RANGE_MEMORY = 20.0  # the range of values seen fades over this many times memory_days
_RANGE_GAIN = 8.0  # range score per range width outside the range: 0.55 is 7% of the width
_RANGE_SLACK = 0.5  # plus this many (un-widened) sigmas, so white noise rarely scores
_RANGE_YOUNG, _RANGE_GROWN = 1.0, 2000.0  # one more sigma at first, fading out over 2000 points
_RANGE_MIN_N = 30  # points before the range is a reference at all (a young one gets extra slack)
_BEAT = 0.2  # during a hold-off, an alarm needs the score of the last alarm plus this
_HELD = 1e-3  # held points report at most threshold - this
_TOD_COUNT = 2.5  # alarms at an hour of the day (fading) before similar ones there are held
_TOD_MARGIN = 1.5  # ... unless this many times larger than the one seen there
_HM_S = 4.0 * 3600.0  # the hours channel averages about four hours of residuals
_HM_WARM_S = 43200.0  # ... and judges after half a day of its own data
_VERSION = 4  # of the JSON state


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
        Profiles to learn: time of day plus a time-of-week correction, time of
        day only, or none (a plain robust level).
    level_rate : float
        Weight of a new point in the fast level (0 < rate <= 1).
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
    holdoff_h : float
        Hours after an alarm during which only a clearly worse score alarms
        again (0 turns the hold-off off).
    utc_offset_h : float
        Local time offset, so "time of day" and "weekend" are local.

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
    __slots__ = ("params", "threshold", "_zband", "_cusum", "n", "t_first", "t_last", "dt", "level", "slow",
                 "dev", "sdev", "recent", "shift", "tail", "peaks", "hi", "lo", "daily", "weekly", "dayf", "hours",
                 "tod", "tod_n", "hours_mean", "week", "day_sum", "day_n", "day", "quiet_until", "alarm_score")

    def __init__(self, sensitivity: str = "medium", *, seasonality: str = "weekly",
                 level_rate: float = 0.1, season_rate: float = 0.3, dev_rate: float = 0.005,
                 clip: float = 3.0, warmup: int = 30, drift_limit: float = 24.0,
                 memory_days: float = 6.0, holdoff_h: float = 4.0, utc_offset_h: float = 0.0) -> None:
        self.params: dict[str, Any] = {
            "sensitivity": sensitivity, "seasonality": seasonality, "level_rate": level_rate,
            "season_rate": season_rate, "dev_rate": dev_rate, "clip": clip, "warmup": warmup,
            "drift_limit": drift_limit, "memory_days": memory_days, "holdoff_h": holdoff_h,
            "utc_offset_h": utc_offset_h}
        _validate(self.params)
        self.threshold = THRESHOLDS[sensitivity]
        self._zband = z_for_score(self.threshold)
        self._cusum = LevelShift(slack=1.0, limit=float(drift_limit), clip=4.0)
        self.n = 0
        self.t_first = self.t_last = 0.0
        self.dt = 0.0  # typical sampling interval in seconds, 0 until known
        self.level = 0.0  # fast level: the short-term wander
        self.slow = 0.0  # slow level (one day): what the profile is measured against
        self.dev = 0.0  # mean absolute residual against the fast expectation
        self.sdev = 0.0  # the same against the slow one (clips the profile's learning)
        self.recent = 0.0  # fast average of (capped) residuals: small shifts show here first
        self.shift = 0.0  # the same, uncapped: the size of a shift in progress
        self.tail = _TAIL_Z * _TAIL_START  # running 99.5% quantile of |z|: calibrates heavy tails
        # Fading largest deviations: point above, point below, recent mean above, below
        self.peaks = [0.0] * 4
        self.hi = self.lo = 0.0  # fading range of the values seen: far outside it is news
        seasonal, weekly = seasonality != "none", seasonality == "weekly"
        self.daily = _zeros(_KNOTS if seasonal else 0)
        self.hours = array("f", [1.0] * 24) if seasonal else array("f")  # noise scale per hour of the day
        self.weekly = _zeros(_WK_KNOTS if weekly else 0)  # 2-hour correction over the week
        self.dayf = _zeros(7 if weekly else 0)  # level of each day of the week against the week's (0: unknown)
        self.tod = _zeros(24)  # |z| of the last alarm per hour of the day, fading
        self.tod_n = _zeros(24)  # alarms per hour of the day, fading
        # Hours channel, float32 like the knots: mean residual over hours, its mean |.|, its fading
        # peaks above and below, points it has seen (see _HM_*)
        self.hours_mean = _zeros(5)
        self.week = 0.0  # level over about a week (day factors are measured against it)
        self.day_sum = self.day_n = 0.0  # the current day's values so far
        self.day = -1  # the current (local) day number
        self.quiet_until = -math.inf  # alarms are held back until then (unless clearly worse)
        self.alarm_score = 0.0  # score of the last alarm, negative when it was below the expected value

    @classmethod
    def _test_params(cls) -> list[dict[str, Any]]:
        """Configurations the conformance suite runs (see :mod:`detectors.checks`)."""
        return [{}, {"seasonality": "none", "sensitivity": "high"}, {"seasonality": "daily", "holdoff_h": 0}]

    # -- protocol -------------------------------------------------------------------------

    def score_one(self, ts: float, value: float) -> Verdict:
        """Judge one point without learning from it."""
        ts, value = check_point(ts, value)
        verdict, r, _, sigma, _, _ = self._judge(ts, value)
        if verdict.warming_up or not self._cusum.would_fire(r / sigma):
            return verdict
        return _with_drift(verdict)

    def learn_one(self, ts: float, value: float) -> None:
        """Learn from one point."""
        ts, value = check_point(ts, value)
        verdict, r, rc, sigma, season, news = self._judge(ts, value)
        self._learn(verdict, r, rc, sigma, season, news)

    def update(self, ts: float, value: float) -> Verdict:
        """Score one point, then learn from it; return the verdict."""
        ts, value = check_point(ts, value)
        verdict, r, rc, sigma, season, news = self._judge(ts, value)
        if self._learn(verdict, r, rc, sigma, season, news):
            return _with_drift(verdict)
        return verdict

    # -- model ----------------------------------------------------------------------------

    def _season_at(self, ts: float) -> _Season:
        """Seasonal offset at ``ts`` and where it came from (see :data:`_Season`)."""
        local = ts + 3600.0 * self.params["utc_offset_h"]
        sec = local % 86400.0
        hour = int(sec // 3600.0)
        near = (hour + 1 if hour < 23 else 0) if sec - 3600.0 * hour >= 1800.0 else (hour - 1 if hour else 23)
        if not self.daily:
            return 0.0, 0, 0.0, False, 0, 0.0, hour, near
        x = sec / (86400.0 / _KNOTS)
        i = int(x)
        f = x - i
        d = self.daily
        offset = d[i] + f * (d[i + 1 if i < _KNOTS - 1 else 0] - d[i])
        days = local / 86400.0 + 3.0  # 1970-01-01 was a Thursday: days % 7 counts from Monday 00:00
        weekend = int(days) % 7 >= 5
        if not self.weekly:
            return offset, i, f, weekend, 0, 0.0, hour, near
        if self.week != 0.0:  # 0 until the weekly parts start learning
            offset += self._day_factor(int(days) % 7, offset)
        x = (days % 7.0) * _WK_PER_DAY
        wi = int(x)
        wf = x - wi
        w = self.weekly
        offset += w[wi] + wf * (w[wi + 1 if wi < _WK_KNOTS - 1 else 0] - w[wi])
        return offset, i, f, weekend, wi, wf, hour, near

    def _day_factor(self, dow: int, profile: float) -> float:
        """The day-of-week term: the day's level against the week's, scaled with the profile.

        Scaled by (slow level + profile) / week level, so a Sunday at 60% is 60%
        at 3 a.m. and at 3 p.m. alike.  With a week level near zero or negative
        (under 3 sdev) the factor is added as it is.
        """
        fv = self._raw_factor(dow)
        if self.week <= _DAY_MIN * self.sdev:  # near zero or negative: a scale means nothing
            return fv
        scale = (self.slow + profile) / self.week
        return fv * (0.0 if scale < 0.0 else (_DAY_SCALE_MAX if scale > _DAY_SCALE_MAX else scale))

    def _raw_factor(self, dow: int) -> float:
        """The factor of a day of the week; one not seen yet borrows from the days of its kind."""
        fv = self.dayf[dow]
        if fv == 0.0:
            known = [x for x in (self.dayf[:5] if dow < 5 else self.dayf[5:]) if x != 0.0]
            fv = sum(known) / len(known) if known else 0.0
        return fv

    def _judge(self, ts: float, value: float) -> tuple[Verdict, float, float, float, _Season, float]:
        """Verdict plus what learning needs: residual, its capped value, sigma, season, |z| if news."""
        season = self._season_at(ts)
        expected = self.level + season[0]
        r = value - expected
        sigma = _SIGMA_PER_DEV * self.dev
        floor = 1e-3 * abs(self.level) + 1e-9  # a perfectly flat series must not make 0.1% a disaster
        if sigma < floor:
            sigma = floor
        if self.n < self.params["warmup"] or (self.daily and ts - self.t_first < _WARM_S):
            return Verdict(ts, value, 0.0, None, None, None, False, False, True), r, r, sigma, season, 0.0
        if self.hours:  # noisier hours of the day widen sigma (quieter ones do not narrow it)
            hs = 0.5 * (self.hours[season[6]] + self.hours[season[7]])  # this hour and the nearer neighbour
            if hs > 1.0:
                sigma *= hs if hs < _HOUR_MAX else _HOUR_MAX
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
        hm = self.hours_mean
        if hm[4] * self.dt >= _HM_WARM_S:  # the hours channel: a lasting shift of a few hours' mean
            a = self._hm_rate()
            h = hm[0] + a * (rc - hm[0])
            up_h, lo_h = self._hm_scales(sigma)
            hz = h / up_h if r > 0.0 else -h / lo_h
            if hz > z:
                z = hz
            hu = (zb * up_h - (1.0 - a) * hm[0]) / a
            hl = (-zb * lo_h - (1.0 - a) * hm[0]) / a
        else:
            hu, hl = math.inf, -math.inf
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
        # the values that would not alarm: all four channels inside their bands
        upper = min(zb * up_p, (zb * up_m - (1.0 - _MEAN_RATE) * self.recent) / _MEAN_RATE,
                    self.hi + margin - expected, hu)
        lower = max(-zb * lo_p, (-zb * lo_m - (1.0 - _MEAN_RATE) * self.recent) / _MEAN_RATE,
                    self.lo - margin - expected, hl)
        thr = self.threshold
        news = 0.0
        if score >= thr:
            news = abs(r) / sigma
            t = self.tod
            h = season[6] if t[season[6]] > t[season[7]] else season[7]
            seen = t[h] if self.tod_n[h] >= _TOD_COUNT else 0.0
            same = self.alarm_score > 0.0 if r > 0.0 else self.alarm_score < 0.0  # same direction
            if ts < self.quiet_until and same and score < abs(self.alarm_score) + _BEAT:
                score = thr - _HELD  # the incident was announced: held back unless clearly worse
            elif news < _TOD_MARGIN * seen:
                score = thr - _HELD  # like the alarms at this time of day lately (a nightly job)
        verdict = Verdict(ts, value, score, expected, expected + min(lower, 0.0), expected + max(upper, 0.0),
                          score >= thr, False, False)
        return verdict, r, rc, sigma, season, news

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

    def _learn(self, verdict: Verdict, r: float, rc: float, sigma: float, season: _Season, news: float) -> bool:
        """Move the baseline towards the point; return True when a level shift was accepted."""
        p = self.params
        ts, value = verdict.ts, verdict.value
        self._learn_interval(ts)
        self.n += 1
        self._learn_range(value)
        if verdict.warming_up:  # running means first, so the start does not crawl up from zero
            self.level += max(p["level_rate"], 1.0 / self.n) * r
            if self.n > 1:  # the first residual is the value itself (against level 0): no spread
                # r is against the mean of the n - 1 points before: its spread is sqrt(n / (n - 1))
                # times a point's, which would leave a young sigma too wide (and 5-sigma drops quiet)
                k = self.n - 1
                e = abs(r) * math.sqrt(k / self.n)
                if k > _WARM_CLIP_N:  # clipped here too: one early outlier must not set sigma for days
                    e = min(e, p["clip"] * _SIGMA_PER_DEV * self.dev)
                self.dev += max(p["dev_rate"], 1.0 / k) * (e - self.dev)
            if self.daily and self.dt > 0.0 and self.n > p["warmup"]:  # a one-day warm-up learns the profile
                self._learn_profile(value, season)
            return False
        if verdict.is_anomaly:
            self.quiet_until = ts + 3600.0 * p["holdoff_h"]
            self.alarm_score = verdict.score if r > 0.0 else -verdict.score
        c = p["clip"] * sigma
        rh = c if r > c else (-c if r < -c else r)  # Huber step: an outlier moves us a bounded amount
        self.level += p["level_rate"] * rh
        if self.daily and self.dt > 0.0:
            self._learn_profile(value, season)
        if self.hours and self.dev > 0.0:  # mean |residual| at this hour, in units of the overall one
            h = season[6]
            rate = _HOUR_RATE * self.dt / 3600.0
            self.hours[h] += (rate if rate < 1.0 else 1.0) * (min(abs(r), c) / self.dev - self.hours[h])
        self.dev += p["dev_rate"] * (min(abs(r), c) - self.dev)
        self._learn_surprise(r, rc, sigma, season[6], news)
        self.shift += _MEAN_RATE * (r - self.shift)
        if self._cusum.step(r / sigma, r) is None:
            return False
        self.level += self.shift  # jump to the new normal instead of crawling there
        self.slow += self.shift
        if self.week:
            self.week += self.shift
            self.day_sum += self.shift * self.day_n
        self.recent = self.shift = 0.0
        self.hours_mean[0] = 0.0
        return True

    def _learn_profile(self, value: float, season: _Season) -> None:
        """Move the slow level and the profile knots towards the point (clipped, like the rest)."""
        if self.sdev == 0.0:  # first point after warm-up: start from the fast model
            self.slow, self.sdev = self.level, self.dev
        offset, i, f, _, wi, wf, _, _ = season
        rs = value - self.slow - offset
        c = self.params["clip"] * _SIGMA_PER_DEV * self.sdev
        if c > 0.0:
            rs = c if rs > c else (-c if rs < -c else rs)
        self.slow += min(1.0, self.dt / (86400.0 * _SLOW_DAYS)) * rs
        self.sdev += self.params["dev_rate"] * (abs(rs) - self.sdev)
        self._learn_days(self.slow + offset + rs)
        # per-point rate so that a knot moves `season_rate` per day whatever the interval;
        # a young profile is a running mean of the days seen
        age = (self.t_last - self.t_first) / 86400.0
        rate = max(self.params["season_rate"], _YOUNG_RATE / (age + 0.5)) * self.dt / 86400.0
        g = min(0.5, rate * _KNOTS) * rs
        d = self.daily
        d[i] += g * (1.0 - f)
        d[i + 1 if i < _KNOTS - 1 else 0] += g * f
        w = self.weekly
        if w and age >= _WK_START:
            g = min(0.5, rate * _WK_PER_DAY * _WK_SHARE) * rs
            w[wi] += g * (1.0 - wf)
            w[wi + 1 if wi < _WK_KNOTS - 1 else 0] += g * wf

    def _learn_days(self, x: float) -> None:
        """Day bookkeeping: the week level, day factors when a day ends, a centred profile.

        ``x`` is the point clipped to the slow expectation (an outlier counts
        only up to the clip).
        """
        ts = self.t_last
        day = int((ts + 3600.0 * self.params["utc_offset_h"]) // 86400.0)
        if self.dayf:
            if self.week == 0.0:
                self.week = x
            span = ts - self.t_first + self.dt  # a running mean until a week is seen
            self.week += max(self.dt / (_WEEK_DAYS * 86400.0), self.dt / span if span > 0.0 else 1.0) * (
                x - self.week)
        if day != self.day:
            if (self.dayf and self.day >= 0 and self.day_n * self.dt >= 0.5 * 86400.0
                    and ts - self.t_first >= 86400.0 * (_WK_START + 1.0)):
                self._end_day(_weekday(self.day))
            self.day_sum = self.day_n = 0.0
            self.day = day
            # the profile averages zero over the day: the level carries the mean
            d = self.daily
            m = sum(d) / len(d)
            for k in range(len(d)):
                d[k] -= m
            self.slow += m
            self.level += m
        self.day_sum += x
        self.day_n += 1.0

    def _end_day(self, dow: int) -> None:
        """Learn the factor of the day that just ended; re-base the levels that carried it."""
        old = self.dayf[dow]
        used = self._raw_factor(dow)  # what the day was expected with
        dm = self.day_sum / self.day_n - self.week
        self.dayf[dow] = dm if old == 0.0 else old + _DAY_RATE * (dm - old)
        delta = self.dayf[dow] - used  # float32, as stored
        # the levels took up what the old factor missed: give it back to the factor
        self.slow -= delta * (1.0 - math.exp(-1.0 / _SLOW_DAYS))
        self.level -= delta

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

    def _learn_interval(self, ts: float) -> None:
        if self.n == 0:
            self.t_first = ts
        gap = ts - self.t_last
        if self.n > 0 and gap > 0.0:  # repeated or backwards timestamps say nothing about the interval
            self.dt = gap if self.dt == 0.0 else self.dt + 0.05 * (min(gap, 4.0 * self.dt) - self.dt)
        self.t_last = ts

    # -- state ----------------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        """Plain-JSON state (about 2 KB): parameters, the learned numbers, packed knots."""
        params = {k: v for k, v in self.params.items() if v != _DEFAULTS[k]}  # what differs from the defaults
        return {"kind": self.kind, "version": _VERSION, "params": params, "n": self.n,
                "time": [self.t_first, self.t_last, self.dt],
                # level, slow, dev, sdev, recent, shift, tail, week, alarm_score (see _SCALARS)
                "scalars": [getattr(self, name) for name in _SCALARS],
                "peaks": list(self.peaks), "range": [self.hi, self.lo],
                "cusum": self._cusum.to_list(), "day": [self.day, self.day_sum, self.day_n],
                "quiet_until": self.quiet_until if math.isfinite(self.quiet_until) else None,
                "knots": _pack(self.daily + self.weekly + self.dayf + self.hours + self.hours_mean),
                "tod": _pack(self.tod + self.tod_n) if any(self.tod_n) else ""}  # most series never need it

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> SeasonalDetector:
        """Rebuild a detector from :meth:`to_state` output (refuses other state versions)."""
        if isinstance(state, dict) and state.get("version", _VERSION) != _VERSION:
            raise DetectorError(f"not a valid seasonal detector state: version {state['version']!r} is not "
                                f"supported (this is version {_VERSION}; the model changed, start a fresh detector)")
        try:
            det = cls(**state["params"])
            det.n = int(state["n"])
            det.t_first, det.t_last, det.dt = (float(x) for x in state["time"])
            scalars = state["scalars"]
            if len(scalars) != len(_SCALARS):
                raise ValueError(f"scalars must hold {len(_SCALARS)} numbers")
            for name, x in zip(_SCALARS, scalars, strict=True):
                setattr(det, name, float(x))
            det.peaks = [float(x) for x in state["peaks"]]
            if len(det.peaks) != 4:
                raise ValueError("peaks must hold 4 numbers")
            det.hi, det.lo = (float(x) for x in state["range"])
            det._cusum.load_list(state["cusum"])
            day, det.day_sum, det.day_n = state["day"]
            det.day, det.day_sum, det.day_n = int(day), float(det.day_sum), float(det.day_n)
            quiet = state["quiet_until"]
            det.quiet_until = -math.inf if quiet is None else float(quiet)
            sizes = [len(det.daily), len(det.weekly), len(det.dayf), len(det.hours), len(det.hours_mean)]
            knots = _unpack(state["knots"], sum(sizes), "knots")
            parts = []
            at = 0
            for size in sizes:
                parts.append(knots[at:at + size])
                at += size
            det.daily, det.weekly, det.dayf, det.hours, det.hours_mean = parts
            if state["tod"]:
                tod = _unpack(state["tod"], 48, "tod")
                det.tod, det.tod_n = tod[:24], tod[24:]
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise DetectorError(f"not a valid seasonal detector state: {exc!r}") from exc
        return det


# The plain float attributes of the state, in the order of its "scalars" list
_SCALARS = ("level", "slow", "dev", "sdev", "recent", "shift", "tail", "week", "alarm_score")

_DEFAULTS: dict[str, Any] = {
    name: p.default for name, p in inspect.signature(SeasonalDetector.__init__).parameters.items()
    if p.default is not inspect.Parameter.empty}


def _weekday(day: int) -> int:
    """Day of the week of day number ``day`` since 1970-01-01 (a Thursday); Monday = 0."""
    return (day + 3) % 7


def _zeros(count: int) -> array[float]:
    return array("f", bytes(4 * count))


def _pack(knots: array[float]) -> str:
    """Base64 of the knots as little-endian float32 (exact: they are float32 in memory)."""
    if sys.byteorder == "little":
        return base64.b64encode(knots.tobytes()).decode("ascii")
    swapped = array("f", knots)
    swapped.byteswap()
    return base64.b64encode(swapped.tobytes()).decode("ascii")


def _unpack(text: str, count: int, name: str) -> array[float]:
    knots = array("f", base64.b64decode(text.encode("ascii"), validate=True))
    if sys.byteorder != "little":
        knots.byteswap()
    if len(knots) != count:
        raise ValueError(f"{name} must hold {count} knots, got {len(knots)}")
    return knots


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
    if isinstance(p["holdoff_h"], bool) or not isinstance(p["holdoff_h"], (int, float)) or not (
            0.0 <= p["holdoff_h"] < math.inf):
        raise DetectorError(f"holdoff_h must be a number of hours >= 0, got {p['holdoff_h']!r}")
    if not isinstance(p["utc_offset_h"], (int, float)) or not -24.0 < p["utc_offset_h"] < 24.0:
        raise DetectorError(f"utc_offset_h must be within (-24, 24), got {p['utc_offset_h']!r}")
