"""The seasonal detector: one point is judged by the channels against the baseline, then learned; the
package docstring describes the model."""

from __future__ import annotations

import inspect
import math
from array import array
from typing import Any

from catalog.calendar import Calendar
from detectors.base import SENSITIVITIES, DetectorError, Verdict, check_point
from detectors.drift import LevelShift
from detectors.seasonal.baseline import Baseline, _weekday, _zeros
from detectors.seasonal.channels import Channels, _widening, score_from_z, z_for_score
from detectors.seasonal.codec import check_version, dump_state, load_state
from detectors.seasonal.tuning import (
    _BEAT,
    _HELD,
    _HM_WARM_S,
    _HOUR_MAX,
    _HOUR_RATE,
    _KNOTS,
    _MEAN_RATE,
    _RANGE_GAIN,
    _RANGE_GROWN,
    _RANGE_SLACK,
    _RANGE_YOUNG,
    _SC_LIMIT,
    _SC_WARM_S,
    _SEASONALITIES,
    _SIGMA_PER_DEV,
    _TAIL_START,
    _TAIL_Z,
    _TOD_COUNT,
    _TOD_MARGIN,
    _TOD_TAUGHT,
    _UNDO_S,
    _WARM_CLIP_N,
    _WARM_S,
    _WK_KNOTS,
    THRESHOLDS,
    _Season,
)

__all__ = ["SeasonalDetector"]


_OUTAGE = 2.0  # |alarm_score| of an announced outage (scores are <= 1): its zeros are held, nothing beats it


def _outage(value: float, lower: float | None) -> bool:
    """A zero the normal band excludes: orders, payments, revenue stopped (never a new normal, always news)."""
    return value == 0.0 and lower is not None and lower > 0.0


class SeasonalDetector(Baseline, Channels):
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
    learns_labels = True
    __slots__ = ()  # all in Fields

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
        # Lag channel: CUSUMs above and below, points seen, its reference level;
        # then the size of the last drift accepted and the seconds since (its old normal, for a day)
        self.lag = _zeros(6)
        self.week = 0.0  # level over about a week (day factors are measured against it)
        self.day_sum = self.day_n = 0.0  # the current day's values so far
        self.day = -1  # the current (local) day number
        self.quiet_until = -math.inf  # alarms are held back until then (unless clearly worse)
        self.alarm_score = 0.0  # score of the last alarm, negative when it was below the expected value
        self.calendar = None  # see with_calendar
        self.hol = 0.0
        self._cal_day, self._cal_info = -(1 << 62), (0, 1.0)

    def with_calendar(self, calendar: Calendar | None) -> SeasonalDetector:
        """Judge days by a business ``calendar`` (shared, not part of the state; give it again on restore).

        A holiday is its own kind of day (a day factor of its own, learned from holidays; before the first one
        ends, the weekend's), shaped like a Sunday; a weekend day that is worked (调休) is a Monday; on a
        promotion day the band's top is raised to ``lift`` times the expected value and the model learns the day
        as if it had stayed at most at the expected value (so the day after is judged against a normal day).
        Days are the detector's local days (``utc_offset_h``). ``None``: as without a calendar."""
        self.calendar = calendar
        self._cal_day = -(1 << 62)
        return self

    @classmethod
    def _test_params(cls) -> list[dict[str, Any]]:
        """Configurations the conformance suite runs (see :mod:`detectors.checks`)."""
        return [{}, {"seasonality": "none", "sensitivity": "high"}, {"seasonality": "daily", "holdoff_h": 0}]

    # -- protocol -------------------------------------------------------------------------

    def score_one(self, ts: float, value: float) -> Verdict:
        """Judge one point without learning from it."""
        ts, value = check_point(ts, value)
        seen, allow = self._promoted(ts, value)
        verdict, r, _, sigma, _, _, _, _ = self._judge(ts, seen)
        if allow:
            verdict = _raised(verdict, value, allow)
        if verdict.warming_up or not self._cusum.would_fire(r / sigma):
            return verdict
        return _with_drift(verdict)

    def learn_one(self, ts: float, value: float) -> None:
        """Learn from one point."""
        ts, value = check_point(ts, value)
        seen, allow = self._promoted(ts, value)
        judged = self._judge(ts, seen)
        if allow:
            self._skip(judged[0])
        else:
            self._learn(*judged)

    def update(self, ts: float, value: float) -> Verdict:
        """Score one point, then learn from it; return the verdict."""
        ts, value = check_point(ts, value)
        seen, allow = self._promoted(ts, value)
        judged = self._judge(ts, seen)
        if allow:
            self._skip(judged[0])
            return _raised(judged[0], value, allow)
        if self._learn(*judged):
            return _with_drift(judged[0])
        return judged[0]

    def learn_label(self, ts: float, value: float, *, normal: bool) -> None:
        """A person's verdict on a point seen before. ``normal=True`` (a false alarm): its hour of the day is
        taught as if it had alarmed lately with this deviation (the *seen before at this time of day* rule), so
        deviations there up to 1.5 x this one are held for a few days (it fades like the alarms it stands for),
        while larger ones and other hours still alarm. The deviation is measured by the model as it is now.
        ``normal=False`` (a true alarm) changes nothing: the model already took the point as news."""
        ts, value = check_point(ts, value)
        if not normal:
            return
        seen, _ = self._promoted(ts, value)
        verdict, r, _, sigma, season, _, _, _ = self._judge(ts, seen)
        if verdict.warming_up:
            return  # nothing judged yet, nothing to correct
        hour, z = season[6], abs(r) / sigma
        if z > self.tod[hour]:
            self.tod[hour] = z
        if self.tod_n[hour] < _TOD_TAUGHT:
            self.tod_n[hour] = _TOD_TAUGHT

    def _skip(self, verdict: Verdict) -> None:
        """A promotion day's point: judged, not learned (the day after is judged against a normal day); only the
        clock and the alarm hold-off move."""
        self._learn_interval(verdict.ts)
        self.n += 1
        if verdict.is_anomaly:
            self.quiet_until = verdict.ts + 3600.0 * self.params["holdoff_h"]
            self.alarm_score = verdict.score if verdict.value > (verdict.expected or 0.0) else -verdict.score

    def _promoted(self, ts: float, value: float) -> tuple[float, float]:
        """On a promotion day (after the warm-up): the point as judged (what it has above the expected value, up to
        ``(lift - 1) x expected``, taken off) and that allowance (> 0); else ``(value, 0.0)``."""
        if self.calendar is None:
            return value, 0.0
        lift = self._day_info(int((ts + 3600.0 * self.params["utc_offset_h"]) // 86400.0))[1]
        if lift <= 1.0 or self.n < self.params["warmup"]:
            return value, 0.0
        expected = self.level + self._season_at(ts)[0]
        allow = (lift - 1.0) * expected if expected > 0.0 else 0.0
        excess = value - expected
        if excess <= 0.0 or allow <= 0.0:
            return value, allow  # allow 0 (an expected value <= 0): learned as any day
        return value - (excess if excess < allow else allow), allow

    # -- one point: judge, then learn (the baseline and channels do the parts) -----------

    def _judge(self, ts: float, value: float) -> tuple[Verdict, float, float, float, _Season, float, float, bool]:
        """Verdict plus what learning needs: residual, its capped value, sigma, season, |z| if news, and the
        residual against the lag channel's reference (in sigmas) and whether the point is a recovery."""
        season = self._season_at(ts)
        expected = self.level + season[0]
        r = value - expected
        sigma = _SIGMA_PER_DEV * self.dev
        floor = 1e-3 * abs(self.level) + 1e-9  # a perfectly flat series must not make 0.1% a disaster
        if sigma < floor:
            sigma = floor
        if self.n < self.params["warmup"] or (self.daily and ts - self.t_first < _WARM_S):
            return (Verdict(ts, value, 0.0, None, None, None, False, False, True), r, r, sigma, season, 0.0, 0.0,
                    False)
        widen = 1.0
        if self.hours:  # noisier hours of the day widen sigma (quieter ones do not narrow it)
            hs = 0.5 * (self.hours[season[6]] + self.hours[season[7]])  # this hour and the nearer neighbour
            if hs > 1.0:
                widen = hs if hs < _HOUR_MAX else _HOUR_MAX
                sigma *= widen
        sigma_raw = sigma  # the range channel's slack: noise, not tails (spiky series keep their spikes)
        widen *= _widening(self.tail)
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
        # the lag channel: CUSUMs of residuals against a reference that follows the fast level hours behind;
        # it does not alarm (as a score it cost more false alarms on real series than it found), it tells a
        # drop or a rise still running, so that the way back is a recovery, not news
        sc = self.lag
        u = 0.0
        if self.sdev > 0.0:
            u = (value - sc[3] - season[0]) / sigma
            u = zb if u > zb else (-zb if u < -zb else u)
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
        recovery = score >= thr and self._recovery(ts, value, r, season[0], zb * _SIGMA_PER_DEV * self.sdev * widen)
        if recovery:  # the incident's recovery, not news (learning restores the normal day)
            score = thr - _HELD
        elif score >= thr:
            news = abs(r) / sigma
            t = self.tod
            h = season[6] if t[season[6]] > t[season[7]] else season[7]
            seen = t[h] if self.tod_n[h] >= _TOD_COUNT else 0.0
            same = self.alarm_score > 0.0 if r > 0.0 else self.alarm_score < 0.0  # same direction
            # a zero the normal band excludes (an outage) is worse than any dip before it: announced even during
            # the hold-off of a lesser alarm (|alarm_score| <= 1), held only after an outage's own announcement
            outage = _outage(value, expected + min(lower, 0.0)) and abs(self.alarm_score) <= 1.0
            if ts < self.quiet_until and same and score < abs(self.alarm_score) + _BEAT and not outage:
                score = thr - _HELD  # the incident was announced: held back unless clearly worse
            elif news < _TOD_MARGIN * seen:
                score = thr - _HELD  # like the alarms at this time of day lately (a nightly job)
        verdict = Verdict(ts, value, score, expected, expected + min(lower, 0.0), expected + max(upper, 0.0),
                          score >= thr, False, False)
        return verdict, r, rc, sigma, season, news, u, recovery

    def _learn(self, verdict: Verdict, r: float, rc: float, sigma: float, season: _Season, news: float,
               u: float, recovery: bool) -> bool:
        """Move the baseline towards the point; return True when a level shift was accepted."""
        p = self.params
        ts, value = verdict.ts, verdict.value
        self._learn_interval(ts)
        self.n += 1
        if _outage(value, verdict.lower):
            # a zero the normal band excludes is an outage (orders, payments, revenue stopped), however
            # long it lasts: never learned, never a new normal; the model waits for the data to come back
            if verdict.is_anomaly:
                self.quiet_until = ts + 3600.0 * p["holdoff_h"]
                self.alarm_score = -_OUTAGE  # an outage was announced: its further zeros are held
            return False
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
        sc = self.lag
        if recovery:  # back at the normal day (before a recent drift, if any): that normal again, at once
            if sc[4] != 0.0 and (r > 0.0) != (sc[4] > 0.0):
                self._jump(-float(sc[4]))
            r += self.level - self.slow  # against the restored level
            self.level = sc[3] = self.slow
            sc[4] = sc[5] = sc[0] = sc[1] = 0.0
            self.recent = self.shift = self.hours_mean[0] = 0.0
            self._cusum.reset()
        elif sc[4] != 0.0:  # a drift's old normal is remembered for a day
            sc[5] += self.dt
            if sc[5] >= _UNDO_S:
                sc[4] = sc[5] = 0.0
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
        if self.sdev > 0.0:
            self._learn_lag(u, self.lag[2] * self.dt >= _SC_WARM_S)
        self.shift += _MEAN_RATE * (r - self.shift)
        if self._cusum.step(r / sigma, r) is None:
            return False
        self._jump(self.shift)  # jump to the new normal instead of crawling there
        sc[4], sc[5] = self.shift, 0.0
        self.recent = self.shift = 0.0
        self.hours_mean[0] = sc[0] = sc[1] = 0.0
        return True

    def _recovery(self, ts: float, value: float, r: float, offset: float, band: float) -> bool:
        """Whether an alarming point is an incident's way back to the normal day (slow level + profile):
        normal for that day (within ``band`` of it) and either back at the normal a drift replaced lately
        (nearer the old normal than the new one) or against a drop (or rise) the lag channel sees running."""
        sc = self.lag
        back = value - self.slow - offset  # the point against the normal day
        if sc[4] != 0.0 and (r > 0.0) != (sc[4] > 0.0) and abs(back + sc[4]) < min(abs(back), band):
            return True
        other = sc[1] if r > 0.0 else sc[0]  # the lag channel on the other side: an incident still running
        return other >= _SC_LIMIT and abs(back) < band and self._sc_ready(ts)

    def _jump(self, shift: float) -> None:
        """Move every level by ``shift``: a drift accepted (or undone)."""
        self.level += shift
        self.slow += shift
        if self.week:
            self.week += shift
            self.day_sum += shift * self.day_n
        self.lag[3] += shift

    def _sc_ready(self, ts: float) -> bool:
        """Whether the lag channel speaks for a point at ``ts``: a week of data, and with a weekly profile
        the day of the week's own factor learned (a day that borrows from its kind can be a day off)."""
        if self.lag[2] * self.dt < _SC_WARM_S:
            return False
        if not self.dayf:
            return True
        day = int((ts + 3600.0 * self.params["utc_offset_h"]) // 86400.0)
        if self.calendar is not None and self._day_info(day)[0] == 1:  # a holiday: the holiday factor learned
            return self.week != 0.0 and self.hol != 0.0
        return self.week != 0.0 and self.dayf[_weekday(day)] != 0.0

    # -- state ----------------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        """Plain-JSON state (about 2 KB): parameters, the learned numbers, packed knots."""
        params = {k: v for k, v in self.params.items() if v != _DEFAULTS[k]}  # what differs from the defaults
        return dump_state(self, params)

    @classmethod
    def from_state(cls, state: dict[str, Any], calendar: Calendar | None = None) -> SeasonalDetector:
        """Rebuild a detector from :meth:`to_state` output (refuses other state versions), with the business
        ``calendar`` it was given (see :meth:`with_calendar`)."""
        check_version(state)
        try:
            det = cls(**state["params"]).with_calendar(calendar)
            load_state(det, state)
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise DetectorError(f"not a valid seasonal detector state: {exc!r}") from exc
        return det


_DEFAULTS: dict[str, Any] = {
    name: p.default for name, p in inspect.signature(SeasonalDetector.__init__).parameters.items()
    if p.default is not inspect.Parameter.empty}


def _raised(v: Verdict, value: float, allow: float) -> Verdict:
    """A promotion day's verdict: the point as it came, the band's top raised by ``allow``."""
    upper = None if v.upper is None else v.upper + allow
    return Verdict(v.ts, value, v.score, v.expected, v.lower, upper, v.is_anomaly, v.drift, v.warming_up)


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
