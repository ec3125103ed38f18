"""Topic names and creation. Topics are created with the partition counts the catalog gives,
because stage 2 waits for a partial from every partition of a source."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from streams.plan import Plan

__all__ = ["Topics", "ensure_topics"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Topics:
    """Names of kpimon's own topics (configurable prefix-free names, defaults as in DESIGN)."""

    partials: str = "kpi.partials"
    values: str = "kpi.values"
    dead_letters: str = "kpi.deadletter"
    anomalies: str = "kpi.anomalies"
    internal_partitions: int = 4

    def with_prefix(self, prefix: str) -> Topics:
        """All of kpimon's own topics under ``prefix`` (e.g. one namespace per deployment or test)."""
        if not prefix:
            return self
        return Topics(prefix + self.partials, prefix + self.values, prefix + self.dead_letters,
                      prefix + self.anomalies, self.internal_partitions)


async def ensure_topics(bootstrap: str, plan: Plan, topics: Topics, *, timeout_s: float = 30.0) -> list[str]:
    """Create every source topic and kpimon topic that does not exist yet; return the created names."""
    wanted = {s.topic: s.partitions for s in plan.sources}
    for name in (topics.partials, topics.values, topics.dead_letters, topics.anomalies):
        wanted.setdefault(name, topics.internal_partitions)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000))
    await asyncio.wait_for(admin.start(), timeout_s)
    created = []
    try:
        existing = set(await admin.list_topics())
        for name, parts in sorted(wanted.items()):
            if name in existing:
                continue
            try:
                await admin.create_topics([NewTopic(name, num_partitions=parts, replication_factor=1)])
                created.append(name)
            except TopicAlreadyExistsError:
                pass
    finally:
        await admin.close()
    if created:
        log.info("created topics: %s", ", ".join(created))
    return created
