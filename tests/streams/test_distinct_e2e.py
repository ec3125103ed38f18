"""End to end with a real worker: a window with 60,000 distinct users (the shop's `unique_visitors` at scale).

Before bounded distinct states, every value of the window went into one stage-1 changelog record and one
`kpi.partials` message; past 1 MB the producer raised `MessageSizeTooLargeError` and the worker exited.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest

from kpimon.embedded import Broker
from streams.aggregations import DISTINCT_STANDARD_ERROR
from tests.fixtures.kafka_io import produce, read_until
from tests.fixtures.worker import WorkerFactory
from tests.streams.test_pipeline_e2e import final_values, has

CATALOG = Path(__file__).with_name("distinct.yaml")
T0 = 1_767_571_200_000
MIN = 60_000
USERS = 60_000
REGIONS = ("east", "west", "north")

pytestmark = pytest.mark.slow


def test_a_window_with_60k_distinct_users_is_estimated_and_the_worker_stays_up(broker: Broker, worker_factory: WorkerFactory) -> None:
    worker = worker_factory(CATALOG, "dst")
    # Every user visits twice, on both partitions; ids as long as real ones (the old exact set was ~1.9 MB).
    events = [{"ts": T0 + (i * 7919) % MIN, "user": f"user-{i:010d}", "region": REGIONS[i % 3]}
              for i in range(USERS)]
    batches = [orjson.dumps(events[i:i + 2000]) for i in range(0, USERS, 2000)]
    asyncio.run(produce(broker.bootstrap, "t.visits", batches, partition=0))
    asyncio.run(produce(broker.bootstrap, "t.visits", batches[::-1], partition=1))
    # A later window closed by the idle watermark means the big one was merged and published.
    try:
        records = asyncio.run(read_until(broker.bootstrap, "dst.kpi.values", has("d_users", T0 + 2 * MIN),
                                         timeout_s=90))
    except TimeoutError:
        pytest.fail(f"no value; worker exit code {worker.exit_code()}:\n{worker.log_tail(20)}")
    assert worker.exit_code() is None, worker.log_tail()
    vals = final_values(records, "d_users")
    tolerance = 3 * DISTINCT_STANDARD_ERROR
    assert final_values(records, "d_visits")[(T0 / 1000, "")]["value"] == 2 * USERS
    assert abs(vals[(T0 / 1000, "")]["value"] - USERS) <= tolerance * USERS
    for region in REGIONS:
        assert abs(vals[(T0 / 1000, f"region={region}")]["value"] - USERS / 3) <= tolerance * USERS / 3
    assert vals[((T0 + MIN) / 1000, "")]["value"] == 0
    assert "MessageSizeTooLarge" not in worker.log_tail(400)
