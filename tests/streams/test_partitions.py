"""Source and state topics whose partition counts differ from the configuration, on the real broker.

A producer that auto-creates a source topic gives it the broker's default count, not the catalog's.
The worker used to build its tables from the catalog and crash at its first changelog write
("Unrecognized partition"). Now the counts of existing topics win, and existing topics that disagree
with each other stop the start-up with one clear line and exit code 2.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from kpimon.embedded import Broker, free_port
from streams.plan import compile_plan
from streams.topics import (
    STAGE2_TABLE,
    PartitionMismatchError,
    Topics,
    changelog_topic,
    prepare_topics,
    stage1_table,
)
from tests.fixtures.kafka_io import produce, read_until
from tests.fixtures.worker import REPO, WorkerFactory
from tests.streams.test_pipeline_e2e import MIN, T0, final_values, has

pytestmark = pytest.mark.slow


def catalog(tmp_path: Path, topic: str, partitions: int) -> Path:
    path = tmp_path / "catalog.yaml"
    path.write_text(f"""version: 1
defaults:
  window: {{type: tumbling, size: 1m, grace: 1m}}
sources:
  src: {{topic: {topic}, partitions: {partitions}, since: 2026-01-01}}
kpis:
  - {{name: p_count, source: src, measure: count}}
  - {{name: p_sum, source: src, measure: sum(amount)}}
""")
    return path


async def create_topics(bootstrap: str, counts: dict[str, int]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, num_partitions=n, replication_factor=1) for name, n in counts.items()])
    finally:
        await admin.close()


def test_worker_adopts_the_partition_count_of_an_existing_source_topic(broker: Broker, worker_factory: WorkerFactory, tmp_path: Path) -> None:
    # The catalog says 1 partition; a producer got there first and the topic has 3.
    asyncio.run(create_topics(broker.bootstrap, {"t.adopt": 3}))
    w = worker_factory(catalog(tmp_path, "t.adopt", 1), "adopt")
    assert "topic 't.adopt' has 3 partitions, the catalog's sources.src.partitions says 1: the worker uses 3" \
        in w.log_path.read_text()
    for p in range(3):          # every partition, also those the catalog does not know of
        events = [{"ts": T0 + 1000 * i, "amount": p + 1} for i in range(10 * (p + 1))]
        asyncio.run(produce(broker.bootstrap, "t.adopt", [orjson.dumps(events)], partition=p))
    records = asyncio.run(read_until(broker.bootstrap, "adopt.kpi.values", has("p_count", T0 + 2 * MIN), timeout_s=30))
    assert final_values(records, "p_count")[(T0 / 1000, "")]["value"] == 10 + 20 + 30
    assert final_values(records, "p_sum")[(T0 / 1000, "")]["value"] == 10 * 1 + 20 * 2 + 30 * 3
    assert w.exit_code() is None, w.log_tail()
    assert "Traceback" not in w.log_path.read_text()


def test_worker_refuses_a_source_topic_that_disagrees_with_its_state_topic(broker: Broker, tmp_path: Path) -> None:
    # State from a run on 2 partitions, then the source topic was recreated with 3.
    state = changelog_topic("clash", stage1_table("src"))
    asyncio.run(create_topics(broker.bootstrap, {"t.clash": 3, state: 2}))
    cmd = [sys.executable, "-m", "kpimon", "worker", "--catalog", str(catalog(tmp_path, "t.clash", 2)),
           "--broker", broker.bootstrap, "--app-id", "clash", "--topic-prefix", "clash.",
           "--listen", f"127.0.0.1:{free_port()}"]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    (line,) = [ln for ln in proc.stderr.splitlines() if "error" in ln]
    assert line.startswith("kpimon worker: error: partition mismatch: topic 't.clash' has 3 partitions")
    assert f"'{state}' has 2" in line
    assert "recreate 't.clash' with 2 partitions" in line and f"delete '{state}'" in line


def test_prepare_topics_settles_counts_from_existing_topics(broker: Broker, tmp_path: Path) -> None:
    """Without a worker: a missing source topic is created with its state topic's count, kpimon's own
    ``kpi.partials`` keeps the count it has, and a partials/state-topic clash is refused."""
    from catalog import load_catalog

    plan = compile_plan(load_catalog(catalog(tmp_path, "t.settle", 2)))
    topics = Topics(internal_partitions=4).with_prefix("settle.")
    asyncio.run(create_topics(broker.bootstrap, {changelog_topic("settle", stage1_table("src")): 5,
                                                 "settle.kpi.partials": 6}))
    layout = asyncio.run(prepare_topics(broker.bootstrap, plan, topics, "settle"))
    assert layout.source_partitions == {"src": 5}
    assert layout.internal_partitions == 6
    assert "t.settle" in layout.created and "settle.kpi.partials" not in layout.created
    assert asyncio.run(partition_counts(broker.bootstrap))["t.settle"] == 5
    assert "topic 'settle.kpi.partials' has 6 partitions, KPIMON_PARTITIONS says 4: the worker uses 6" in layout.notes
    assert plan.with_partitions(layout.source_partitions).sources[0].partitions == 5

    asyncio.run(create_topics(broker.bootstrap, {changelog_topic("settle", STAGE2_TABLE): 4}))
    with pytest.raises(PartitionMismatchError,
                       match=r"topic 'settle.kpi.partials' has 6 partitions but .* 'settle-stage2-changelog' has 4"):
        asyncio.run(prepare_topics(broker.bootstrap, plan, topics, "settle"))


async def partition_counts(bootstrap: str) -> dict[str, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return {t["topic"]: len(t["partitions"]) for t in await admin.describe_topics()}
    finally:
        await admin.close()
