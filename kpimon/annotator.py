"""Grafana annotations for fired/resolved alerts and drift events, sent from a background thread.

The Grafana client is synchronous (grafana-client) with its own retries and timeouts; a thread with a
bounded queue keeps it off the stream's event loop. A full queue drops the oldest work and counts it:
annotations are a convenience, never a reason to slow the stream.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

from catalog import Catalog

__all__ = ["Annotator"]

log = logging.getLogger("kpimon.annotator")


class Annotator:
    def __init__(self, catalog: Catalog, url: str, *, max_queue: int = 1000,
                 client_factory: Callable[[str], Any] | None = None) -> None:
        from grafana.client import GrafanaClient

        self.catalog = catalog
        self.client = (client_factory or GrafanaClient.from_env)(url)   # raises if GRAFANA_TOKEN is unset
        self.queue: queue.Queue[tuple[str, dict[str, Any]] | None] = queue.Queue(max_queue)
        self.counts: dict[str, int] = {}
        self._thread = threading.Thread(target=self._run, name="grafana-annotations", daemon=True)
        self._thread.start()

    def submit(self, kind: str, event: dict[str, Any]) -> None:
        try:
            self.queue.put_nowait((kind, event))
        except queue.Full:
            self._count("dropped")

    def close(self) -> None:
        self.queue.put(None)
        self._thread.join(10)

    def _count(self, outcome: str) -> None:
        self.counts[outcome] = self.counts.get(outcome, 0) + 1

    def _run(self) -> None:
        while (item := self.queue.get()) is not None:
            kind, ev = item
            try:
                if kind == "alert":
                    self.client.annotate_alert(self.catalog, ev["kpi"], ev["labels"], ev["state"], ev["start"],
                                               ev.get("end"), ev["text"], ev["severity"])
                else:
                    self.client.annotate_drift(self.catalog, ev["kpi"], ev["labels"], ev["at"], ev["text"])
                self._count("sent")
            except Exception as exc:  # the client's errors never contain the token
                self._count("failed")
                log.warning("grafana annotation failed: %s", exc)
