"""The simulator's feed_stop incident: one source's producer stops for the incident, the others go on."""

from __future__ import annotations

from collections import Counter

from streams.simulator import Shop, parse_incident


def _sources(shop: Shop, start: float, minutes: int) -> Counter[str]:
    out: Counter[str] = Counter()
    for k in range(minutes * 10):
        out.update(src for src, _ in shop.tick(start + k * 6.0, 6.0))
    return out


def test_feed_stop_silences_one_source_for_its_duration() -> None:
    start = 1_767_571_200.0
    shop = Shop(visits_per_s=20.0, incidents=(parse_incident("feed_stop:payments@10+5"),), start_ts=start)
    before = _sources(shop, start, 10)
    during = _sources(shop, start + 600, 5)
    after = _sources(shop, start + 900, 5)
    assert before["payments"] > 0 and after["payments"] > 0
    assert during["payments"] == 0
    assert during["visits"] > 0 and during["orders"] > 0         # only that producer stopped
