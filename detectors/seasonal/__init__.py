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
carries ``drift=True`` once, instead of flagging every point forever.  The old
normal is remembered for a day: a point that is news against the new level,
nearer the old one and normal for it, is the incident's recovery (held, and the
levels jump back to the normal day) instead of a spike.

Recovery without a drift: the *lag channel* keeps CUSUMs (slack 1 sigma) of the
residuals against a reference that follows the fast level three hours behind.
It never alarms by itself; it tells a drop (or rise) that is still running
after the fast level has followed it.  While one runs (at least 12 sigmas
summed, after a week of data and on a day of the week whose own factor is
learned), a point on the other side that is normal for the slow expectation
(slow level + profile: the normal day) is the way back, not news: held, and the
fast level is set to the normal day.

Zero: a value of exactly 0 that the normal band excludes (the lower edge above
0) is an outage -- orders, payments or revenue stopped -- and is never learned,
however long it lasts: no drift to 0, no band that comes to include it; the
detector keeps the normal day and judges the data against it when it comes
back.  (A zero inside the band, such as a quiet night of a small count, is
learned as usual.)

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
knots plus the hours channel's 5 and the lag channel's 6 numbers as base64 little-endian float32 --
they *are* float32 in memory too, so a restored detector is bit-identical --
plus 48 time-of-day alarm numbers once an hour has alarmed), ``"version": 5``
(version 4 had no lag channel and restores with it fresh; version 3 had no
hours channel); older states (a different model) are refused with a
:class:`DetectorError` that says so.
"""

from __future__ import annotations

from detectors.seasonal.channels import score_from_z, z_for_score
from detectors.seasonal.detector import SeasonalDetector
from detectors.seasonal.tuning import THRESHOLDS

# Where things are: tuning (fixed numbers), fields (the learned numbers), baseline (the expected value),
# channels (what is news), codec (the JSON state), detector (one point: judge, then learn).
__all__ = ["THRESHOLDS", "SeasonalDetector", "score_from_z", "z_for_score"]
