"""The expected value: fast and slow levels, the daily profile, day-of-week factors and the weekly
correction, and the day and interval bookkeeping they learn from (the package docstring describes
the model)."""

from __future__ import annotations

import math
from array import array
from datetime import date, timedelta

from detectors.seasonal.fields import Fields
from detectors.seasonal.tuning import (
    _DAY_MIN,
    _DAY_RATE,
    _DAY_SCALE_MAX,
    _KNOTS,
    _SIGMA_PER_DEV,
    _SLOW_DAYS,
    _WEEK_DAYS,
    _WK_KNOTS,
    _WK_PER_DAY,
    _WK_SHARE,
    _WK_START,
    _YOUNG_RATE,
    _Season,
)

__all__ = ["Baseline"]

_EPOCH = date(1970, 1, 1)
# what a calendar says a day is (Baseline._day_info): as its weekday, a holiday, an adjusted working day
_PLAIN, _HOLIDAY, _WORKED = 0, 1, 2


class Baseline(Fields):
    """The baseline half of the model: where the expected value comes from and how it learns."""

    __slots__ = ()

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
        cal = _PLAIN if self.calendar is None else self._day_info(int(local // 86400.0))[0]
        if cal == _HOLIDAY:  # a holiday is a day of its own kind, shaped like a Sunday over the week
            weekend = True
            days = 6.0 + days % 1.0
        elif cal == _WORKED:  # a weekend day that is worked: a Monday
            weekend = False
            days = days % 1.0
        if not self.weekly:
            return offset, i, f, weekend, 0, 0.0, hour, near
        if self.week != 0.0:  # 0 until the weekly parts start learning
            offset += self._hol_factor(offset) if cal == _HOLIDAY else self._day_factor(int(days) % 7, offset)
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

    def _hol_factor(self, profile: float) -> float:
        """The holiday's day term, scaled like :meth:`_day_factor`; before a holiday is learned, the weekend's."""
        fv = self._hol_raw()
        if self.week <= _DAY_MIN * self.sdev:
            return fv
        scale = (self.slow + profile) / self.week
        return fv * (0.0 if scale < 0.0 else (_DAY_SCALE_MAX if scale > _DAY_SCALE_MAX else scale))

    def _hol_raw(self) -> float:
        return self.hol if self.hol != 0.0 else self._raw_factor(6)

    def _day_info(self, day: int) -> tuple[int, float]:
        """What the calendar says local day number ``day`` is, and the promotion lift on it (memoised)."""
        if day != self._cal_day:
            cal = self.calendar
            assert cal is not None
            d = _EPOCH + timedelta(days=day)
            kind = cal.kind_of(d)
            what = _HOLIDAY if kind == "holiday" else (_WORKED if kind == "workday" and d.weekday() >= 5 else _PLAIN)
            self._cal_info = (what, cal.lift_of(d))
            self._cal_day = day
        return self._cal_info

    def _raw_factor(self, dow: int) -> float:
        """The factor of a day of the week; one not seen yet borrows from the days of its kind."""
        fv = self.dayf[dow]
        if fv == 0.0:
            known = [x for x in (self.dayf[:5] if dow < 5 else self.dayf[5:]) if x != 0.0]
            fv = sum(known) / len(known) if known else 0.0
        return fv

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
                cal = _PLAIN if self.calendar is None else self._day_info(self.day)[0]
                if cal == _HOLIDAY:
                    self._end_holiday()
                elif cal == _PLAIN:  # an adjusted working day borrows Monday's factor, it does not teach it
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

    def _end_holiday(self) -> None:
        """Learn the holiday factor from the holiday that just ended (like :meth:`_end_day`)."""
        old = self.hol
        used = self._hol_raw()
        dm = self.day_sum / self.day_n - self.week
        self.hol = array("f", [dm if old == 0.0 else old + _DAY_RATE * (dm - old)])[0]  # float32, as stored
        delta = self.hol - used
        self.slow -= delta * (1.0 - math.exp(-1.0 / _SLOW_DAYS))
        self.level -= delta

    def _learn_interval(self, ts: float) -> None:
        if self.n == 0:
            self.t_first = ts
        gap = ts - self.t_last
        if self.n > 0 and gap > 0.0:  # repeated or backwards timestamps say nothing about the interval
            self.dt = gap if self.dt == 0.0 else self.dt + 0.05 * (min(gap, 4.0 * self.dt) - self.dt)
        self.t_last = ts


def _weekday(day: int) -> int:
    """Day of the week of day number ``day`` since 1970-01-01 (a Thursday); Monday = 0."""
    return (day + 3) % 7


def _zeros(count: int) -> array[float]:
    return array("f", bytes(4 * count))
