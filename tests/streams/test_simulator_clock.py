"""The simulator's traffic curve can start at a chosen hour, so tests and the demo do not depend on the clock."""

from __future__ import annotations

import pytest

from streams.simulator import Shop, seasonality

NIGHT = 1_704_081_600.0  # Monday 2024-01-01 04:00 UTC


def _visits(shop: Shop) -> list[dict[str, object]]:
    return [ev for src, ev in shop.tick(NIGHT, 60.0) if src == "visits" and isinstance(ev, dict)]


def test_the_curve_starts_at_the_chosen_hour_and_timestamps_stay_real() -> None:
    night, morning = Shop(start_ts=NIGHT, seed=1), Shop(start_ts=NIGHT, seed=1).at_hour(10)
    assert (NIGHT + morning.clock_shift_s) % 86400 == 10 * 3600
    busy, quiet = _visits(morning), _visits(night)
    expected = seasonality(NIGHT + 6 * 3600) / seasonality(NIGHT)  # 10:00 against 04:00
    assert expected > 3
    assert len(busy) > 0.7 * expected * len(quiet)
    assert all(NIGHT * 1000 <= ev["ts"] < (NIGHT + 60) * 1000 for ev in busy)  # type: ignore[operator]


@pytest.mark.parametrize("hour", [-1.0, 24.0, 30.0])
def test_an_hour_outside_the_day_is_refused(hour: float) -> None:
    with pytest.raises(ValueError, match="hour must be in"):
        Shop(start_ts=NIGHT).at_hour(hour)
