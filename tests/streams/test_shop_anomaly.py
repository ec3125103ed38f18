"""Detector wiring end to end: the simulator's outage gives an anomaly verdict on the right series."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.fixtures.kafka_io import read_until

pytestmark = pytest.mark.slow


def test_outage_gives_an_anomaly_verdict_on_the_right_series(broker, shop_run) -> None:  # type: ignore[no-untyped-def]
    def east_zero(records: list[dict[str, Any]]) -> bool:
        return any(r["kpi"] == "paid_orders" and r["labels"] == {"region": "east"} and r["value"] == 0
                   and r["is_anomaly"] for r in records)

    records = asyncio.run(read_until(broker.bootstrap, "shop.kpi.anomalies", east_zero, timeout_s=120))
    hit = next(r for r in records if r["kpi"] == "paid_orders" and r["labels"] == {"region": "east"} and r["value"] == 0)
    assert hit["lower"] > 0 and hit["score"] >= 0.6       # zero is far below the band it expected
    # the outage is regional: no other region's paid orders were flagged as a drop to zero
    assert not any(r["kpi"] == "paid_orders" and r["labels"].get("region") not in (None, "east") and r["value"] == 0
                   for r in records)
    text = shop_run.worker.metrics()
    assert 'kpi_paid_orders_expected{channel="",region="east"}' in text
    assert 'kpi_paid_orders_anomaly_score{channel="",region="east"}' in text
