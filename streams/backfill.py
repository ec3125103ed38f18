"""Backfill: warm detectors (and the current period's attainment) from history, where a worker restores them.

A new deployment, or a KPI added to the catalog, starts cold: a detector judges nothing until its series spans a
day. :func:`backfill` runs a :class:`~streams.backtest.History` (the events or ``kpi.values`` a backtest reads)
through fresh detectors and attainment, as the worker's stage 2 would, and writes their checkpoints into the
stage-2 changelog of the app (``<app_id>-stage2-changelog``), each in the partition of ``kpi.partials`` that owns
its KPI (the producer's partitioner over the KPI's merge group, as the worker's own sends land). A worker started
afterwards restores them like its own checkpoints and judges the first live window.

Idempotent: a series that already has a checkpoint (a worker ran, or an earlier backfill did) is left alone unless
``replace`` is given, so running it twice writes nothing the second time. It refuses while the app's consumer group
has members (:class:`WorkersRunning`): run it before the workers start (or with them stopped), with
history that ends where the live data begins: a detector takes its points in time order, and a live window older
than the history's last one is refused by it (logged by the worker). Topics are settled and created as a worker
does (:func:`streams.topics.prepare_topics`), the changelog included, so the partition counts agree.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from catalog.calendar import Calendar
from streams.attainment import Attainment, Goal
from streams.backtest import History
from streams.changelog import ATTAINMENT, DETECTORS, namespaced, table_key
from streams.observers import DetectorSpecLite, Observers
from streams.plan import Plan
from streams.topics import COMPACTED, STAGE2_TABLE, Topics, changelog_topic, prepare_topics

__all__ = ["BackfillReport", "WorkersRunning", "backfill", "group_members", "owner_partition"]


@dataclass
class BackfillReport:
    """What a backfill wrote, per KPI."""

    changelog: str
    partitions: int
    warmed: dict[str, int] = field(default_factory=dict)          # KPI -> series written
    kept: dict[str, int] = field(default_factory=dict)            # KPI -> series that had a checkpoint already
    warming: dict[str, int] = field(default_factory=dict)         # KPI -> series still warming up at the end
    attainment: list[str] = field(default_factory=list)           # KPIs whose current period was written
    records: int = 0


def owner_partition(group: str, partitions: int) -> int:
    """The ``kpi.partials`` partition of a merge group: where the worker's producer sends its partials (Kafka's
    default partitioner, murmur2 of the key), so where its detectors and attainment live."""
    from aiokafka.partitioner import DefaultPartitioner

    every = list(range(partitions))
    return int(DefaultPartitioner()(group.encode(), every, every))


async def _existing(bootstrap: str, topic: str, partitions: int) -> set[bytes]:
    """Keys of the live records of the changelog (deleted ones left out)."""
    from faust.types import TP

    from streams.recovery import read_changelog_to_end

    live: dict[bytes, bool] = {}

    def apply(key: bytes, value: bytes | None) -> None:
        live[key] = value is not None

    await read_changelog_to_end(bootstrap, [TP(topic, p) for p in range(partitions)], apply)
    return {k for k, alive in live.items() if alive}


async def _ensure_changelog(bootstrap: str, topic: str, partitions: int) -> None:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import TopicAlreadyExistsError

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        if topic not in set(await admin.list_topics()):
            with contextlib.suppress(TopicAlreadyExistsError):     # a worker created it meanwhile
                await admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1,
                                                    topic_configs=dict(COMPACTED))])
    finally:
        await admin.close()


class WorkersRunning(Exception):
    """The app's consumer group has members: a running worker would not see a backfill and would overwrite it."""


async def group_members(bootstrap: str, group: str) -> int:
    """How many members the consumer group ``group`` has now (0 when the broker cannot tell)."""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.errors import KafkaError

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        found = await admin.describe_consumer_groups([group])
    except KafkaError:
        return 0
    finally:
        await admin.close()
    return sum(len(g[5]) for resp in found for g in getattr(resp, "groups", ()) if g[1] == group)


async def backfill(bootstrap: str, plan: Plan, history: History, *, app_id: str, topics: Topics,
                   detectors: Mapping[str, DetectorSpecLite], goals: Mapping[str, Goal],
                   calendar: Calendar | None = None, replace: bool = False) -> BackfillReport:
    """Warm the detectors and attainment of ``history`` into app ``app_id``'s stage-2 changelog; see the module
    docstring."""
    from aiokafka import AIOKafkaProducer

    members = await group_members(bootstrap, app_id)
    if members:
        raise WorkersRunning(f"{members} worker(s) of app {app_id!r} are running: stop them first (a worker killed "
                             "just now stays a member for its session timeout, about 10 s)")
    layout = await prepare_topics(bootstrap, plan, topics, app_id)
    n = layout.internal_partitions
    topic = changelog_topic(app_id, STAGE2_TABLE)
    await _ensure_changelog(bootstrap, topic, n)
    have = await _existing(bootstrap, topic, n)
    observers = Observers(detectors, calendar=calendar)
    attainment = Attainment(goals)
    where = {kpi: owner_partition(group, n) for kpi, group in plan.groups.items()}
    for _, values in history.steps:
        by_partition: dict[int, list[Any]] = {}
        for val in values:
            part = where.get(val.kpi)
            if part is not None:
                by_partition.setdefault(part, []).append(val)
        for part, vals in by_partition.items():
            observers.detect(part, vals)
            for val in vals:
                attainment.observe(val, part)
    report = BackfillReport(topic, n)
    writes: list[tuple[int, bytes, bytes]] = []
    for part in sorted(set(where.values())):
        for key, doc in observers.take_checkpoints(part):
            kpi = key.partition("|")[0]
            record = table_key(part, namespaced(DETECTORS, key))
            if record in have and not replace:
                report.kept[kpi] = report.kept.get(kpi, 0) + 1
                continue
            if (kpi, key.partition("|")[2]) not in observers.verdicts:      # no verdict out of warm-up yet
                report.warming[kpi] = report.warming.get(kpi, 0) + 1
            writes.append((part, record, doc))
            report.warmed[kpi] = report.warmed.get(kpi, 0) + 1
        for key, doc in attainment.take_checkpoints(part):
            record = table_key(part, namespaced(ATTAINMENT, key))
            if record in have and not replace:
                continue
            writes.append((part, record, doc))
            report.attainment.append(key)
    if writes:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, acks="all")
        await producer.start()
        try:
            for part, record_key, value in writes:
                await producer.send(topic, value, key=record_key, partition=part)
            await producer.flush()
        finally:
            await producer.stop()
    report.records = len(writes)
    return report
