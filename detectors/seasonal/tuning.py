"""The seasonal detector's fixed tuning: thresholds, knot counts, rates and margins (see the package
docstring for what each part of the model does with them)."""

from __future__ import annotations

import math

__all__ = ["THRESHOLDS"]

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
_TOD_TAUGHT = 2.0 * _TOD_COUNT  # a false alarm taught: its hour counts as this many alarms (held ~4 days)
_HM_S = 4.0 * 3600.0  # the hours channel averages about four hours of residuals
_HM_WARM_S = 43200.0  # ... and judges after half a day of its own data
_SC_SLACK = 1.0  # lag channel: CUSUMs of residuals against a lagging reference, this many sigmas of slack,
_SC_LIMIT = 12.0  # ... a run of at least this many sigmas summed is an incident still running
_SC_REF_S = 3.0 * 3600.0  # ... the reference follows the fast level this far behind
_SC_WARM_S = 6.0 * 86400.0  # ... it counts after six days of the slow level (a young profile's runs are long)
_UNDO_S = 86400.0  # a point back at the normal a drift replaced, within this time, restores that normal
