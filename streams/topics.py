"""Topic names, partition counts and creation.

A table's changelog must have exactly as many partitions as the topic that feeds it: stage 1
writes each source partition's window state to the same partition of its changelog, stage 2
does the same with ``kpi.partials``, and stage 2 waits for a partial from every partition of a
source. Faust creates the changelogs with the counts the worker gives its tables, but never
changes a topic that exists, so a source topic created elsewhere (a producer's auto-create, an
ops team) with another count made the worker crash at its first changelog write
("Unrecognized partition").

So before the worker is built, :func:`prepare_topics` settles the counts: topics that exist win
over the configuration (the catalog's ``sources.<name>.partitions``, ``KPIMON_PARTITIONS``), the
way Kafka Streams sizes its internal topics from the source topics, and existing topics that
disagree with each other stop the start-up with :class:`PartitionMismatchError` (a one-line
message that names the topics, both counts and the fix).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from catalog import defaults
from streams.plan import Plan

__all__ = ["STAGE2_TABLE", "PartitionMismatchError", "TopicLayout", "Topics", "changelog_topic", "ensure_topics",
           "prepare_topics", "stage1_table"]

log = logging.getLogger(__name__)

STAGE2_TABLE = "stage2"
COMPACTED = {"cleanup.policy": "compact"}      # the admission topic keeps the latest record per KPI × dimension


def stage1_table(source: str) -> str:
    """Name of the Faust table holding stage 1's window state of one source."""
    return f"stage1-{source}"


def changelog_topic(app_id: str, table: str) -> str:
    """The changelog topic Faust gives ``table`` of app ``app_id`` (``faust.Table.changelog_topic_name``)."""
    return f"{app_id}-{table}-changelog"


@dataclass(frozen=True, slots=True)
class Topics:
    """Names of kpimon's own topics (configurable prefix-free names, defaults as in DESIGN)."""

    partials: str = "kpi.partials"
    values: str = "kpi.values"
    dead_letters: str = "kpi.deadletter"
    anomalies: str = "kpi.anomalies"
    internal_partitions: int = defaults.PARTITIONS
    series: str = "kpi.series"           # compacted: stage 2's series-cap admissions, followed by stage 1

    def with_prefix(self, prefix: str) -> Topics:
        """All of kpimon's own topics under ``prefix`` (e.g. one namespace per deployment or test)."""
        if not prefix:
            return self
        return Topics(prefix + self.partials, prefix + self.values, prefix + self.dead_letters,
                      prefix + self.anomalies, self.internal_partitions, prefix + self.series)


class PartitionMismatchError(Exception):
    """Existing topics disagree on their partition count; the message is one line and says what to do."""


@dataclass(frozen=True, slots=True)
class TopicLayout:
    """The partition counts a worker must use, as settled against the broker by :func:`prepare_topics`."""

    source_partitions: dict[str, int]                    # source name -> partitions of its topic
    internal_partitions: int                             # kpi.partials and the stage 2 table
    created: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)       # counts taken from existing topics, not the configuration


async def ensure_topics(bootstrap: str, plan: Plan, topics: Topics, *, timeout_s: float = 30.0) -> list[str]:
    """Create every source topic and kpimon topic that does not exist yet; return the created names.

    For producers (the simulator, benchmarks). A worker uses :func:`prepare_topics`, which also checks
    the partition counts of the topics that exist.
    """
    wanted = {s.topic: s.partitions for s in plan.sources}
    for name in (topics.partials, topics.values, topics.dead_letters, topics.anomalies, topics.series):
        wanted.setdefault(name, topics.internal_partitions)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000))
    await asyncio.wait_for(admin.start(), timeout_s)
    try:
        existing = set(await admin.list_topics())
        created = await _create_missing(admin, wanted, existing, {topics.series: COMPACTED})
    finally:
        await admin.close()
    return created


async def prepare_topics(bootstrap: str, plan: Plan, topics: Topics, app_id: str, *,
                         timeout_s: float = 30.0) -> TopicLayout:
    """Settle the partition counts of a worker with app id ``app_id``, then create the missing topics.

    For each source topic and for ``kpi.partials``: the count of the topic if it exists, else the
    count of its table's changelog if that exists, else the configured one. Raises
    :class:`PartitionMismatchError` if a topic and its changelog both exist with different counts,
    or if the sources reading one topic would need different counts.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000))
    await asyncio.wait_for(admin.start(), timeout_s)
    try:
        existing = await _partition_counts(admin)
        notes: list[str] = []
        by_topic: dict[str, list[str]] = {}
        for src in plan.sources:
            by_topic.setdefault(src.topic, []).append(src.name)
        source_partitions: dict[str, int] = {}
        for topic, names in by_topic.items():
            configured = {s.partitions for s in plan.sources if s.topic == topic}
            where = " and ".join(f"sources.{name}.partitions" for name in names)
            n = _settle(topic, [changelog_topic(app_id, stage1_table(name)) for name in names], configured,
                        existing, f"the catalog's {where}", notes)
            source_partitions.update(dict.fromkeys(names, n))
        internal = _settle(topics.partials, [changelog_topic(app_id, STAGE2_TABLE)], {topics.internal_partitions},
                           existing, "KPIMON_PARTITIONS", notes)
        wanted = {plan_topic: source_partitions[names[0]] for plan_topic, names in by_topic.items()}
        for name in (topics.partials, topics.values, topics.dead_letters, topics.anomalies, topics.series):
            wanted.setdefault(name, internal)
        created = await _create_missing(admin, wanted, set(existing), {topics.series: COMPACTED})
    finally:
        await admin.close()
    return TopicLayout(source_partitions, internal, created, notes)


def _settle(topic: str, changelogs: list[str], configured: set[int], existing: Mapping[str, int],
            setting: str, notes: list[str]) -> int:
    """The partition count ``topic`` and its ``changelogs`` must share (see :func:`prepare_topics`)."""
    found = {name: existing[name] for name in (topic, *changelogs) if name in existing}
    counts = set(found.values())
    if len(counts) > 1:
        raise PartitionMismatchError(_mismatch(topic, found))
    if counts:
        (n,) = counts
        if configured != {n}:
            said = f"{setting} says {_counts(configured)}"
            if topic in found:
                notes.append(f"topic '{topic}' has {n} partitions, {said}: the worker uses {n}")
            else:
                notes.append(f"topic '{topic}' is missing and the worker's state topic '{next(iter(found))}' has "
                             f"{n} partitions, {said}: creating '{topic}' with {n}")
        return n
    if len(configured) > 1:
        raise PartitionMismatchError(
            f"topic '{topic}' is read by several sources with different partition counts ({_counts(configured)} "
            f"in {setting}): give them the same count")
    (n,) = configured
    return n


def _mismatch(topic: str, found: Mapping[str, int]) -> str:
    if topic in found:
        n = found[topic]
        bad = {name: m for name, m in found.items() if m != n}
        name, m = next(iter(bad.items()))
        return (f"partition mismatch: topic '{topic}' has {n} partitions but the worker's state topic '{name}' "
                f"has {m} (they must be equal; was '{topic}' recreated or given more partitions?); "
                f"recreate '{topic}' with {m} partitions, or delete '{name}' (the open windows' state is lost) "
                f"and start the worker again")
    listed = ", ".join(f"'{name}' has {m}" for name, m in found.items())
    return (f"partition mismatch: the worker's state topics of '{topic}' disagree ({listed}); "
            f"delete them (the open windows' state is lost) and start the worker again")


def _counts(values: set[int]) -> str:
    return " or ".join(str(v) for v in sorted(values))


async def _partition_counts(admin: AIOKafkaAdminClient) -> dict[str, int]:
    """Partition count of every topic on the broker (topics without partition metadata yet are left out)."""
    out = {}
    for t in await admin.describe_topics():
        if t.get("error_code", 0) == 0 and t.get("partitions"):
            out[t["topic"]] = len(t["partitions"])
    return out


async def _create_missing(admin: AIOKafkaAdminClient, wanted: Mapping[str, int], existing: set[str],
                          configs: Mapping[str, dict[str, str]] | None = None) -> list[str]:
    created = []
    for name, parts in sorted(wanted.items()):
        if name in existing:
            continue
        try:
            await admin.create_topics([NewTopic(name, num_partitions=parts, replication_factor=1,
                                                topic_configs=(configs or {}).get(name, {}))])
            created.append(name)
        except TopicAlreadyExistsError:
            pass
    if created:
        log.info("created topics: %s", ", ".join(created))
    return created
