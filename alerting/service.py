"""The alerting core's entry point for the streams worker.

The worker creates one :class:`AlertService` over a :class:`~alerting.redis_store.RedisStore`, calls
:meth:`AlertService.observe` for every closed window of every series, and :meth:`AlertService.run_tick`
(overrides, :meth:`AlertService.tick`, gauges; store outages counted, not raised) every tick. The lifecycle
runs on ``clock`` (event time in the worker), delivery on ``wall_clock``. All state lives in the store, so a new service over the
same Redis continues exactly where a stopped one left off (firing alerts stay firing, nothing is re-sent).

Examples
--------
>>> import asyncio
>>> from alerting.config import KpiMeta, build_alerting_config
>>> from alerting.memory_store import MemoryStore
>>> from alerting.samples import Sample
>>> cfg = build_alerting_config({"orders": [{"type": "threshold", "below": 10}]}, [], {},
...                             {"orders": KpiMeta(name="orders", owner="shop")})
>>> svc = AlertService(cfg, MemoryStore(), clock=lambda: 100.0)
>>> [(t.old, t.new) for t in asyncio.run(svc.observe(Sample("orders", {}, 0, 60, 3.0)))]
[('inactive', 'firing')]
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from alerting.admin import apply_overrides, published_rules
from alerting.config import AbsenceRule, AlertingConfig, AlertRuleSpec, KpiMeta
from alerting.health import STORE_ERRORS, StoreHealth
from alerting.lifecycle import AlertState, Transition, advance, fingerprint, new_state
from alerting.notifiers.base import Notifier
from alerting.notifiers.registry import build_notifier
from alerting.outbox import Outbox, RetryPolicy
from alerting.pipeline import Pipeline
from alerting.rules import baseline_start, evaluate, history_retention
from alerting.samples import Sample
from alerting.store import Store
from catalog.channels import ChannelSpec

__all__ = ["AlertService", "alert_labels", "series_key"]

log = logging.getLogger(__name__)


def series_key(kpi: str, labels: Mapping[str, str]) -> str:
    """The store key of one series' value history.

    >>> series_key("orders", {"region": "east"})
    'orders{"region":"east"}'
    """
    return kpi + json.dumps(dict(sorted(labels.items())), separators=(",", ":"))


def alert_labels(rule: AlertRuleSpec, sample: Sample, meta: KpiMeta | None) -> dict[str, str]:
    """An alert's labels: series labels, the rule's labels, ``alertname``, ``kpi``, ``severity``, ``team``."""
    labels = {
        **sample.labels,
        **rule.labels,
        "alertname": rule.name,
        "kpi": sample.kpi,
        "severity": rule.severity,
    }
    if "team" not in labels and meta is not None and meta.owner:
        labels["team"] = meta.owner
    return labels


def _watches_missing(rule: AlertRuleSpec) -> bool:
    return isinstance(rule, AbsenceRule) and rule.missing_after is not None and rule.enabled


def _labels_key(labels: Mapping[str, str]) -> str:
    return json.dumps(dict(sorted(labels.items())), separators=(",", ":"))


class AlertService:
    """Evaluates rules, keeps alert state, and drives grouping and delivery; see the module docstring."""

    def __init__(
        self,
        config: AlertingConfig,
        store: Store,
        *,
        clock: Callable[[], float] = time.time,
        notifier_factory: Callable[[ChannelSpec], Notifier] = build_notifier,
        wall_clock: Callable[[], float] = time.time,
        retry: RetryPolicy | None = None,
        lease_s: float = 60.0,
        send_timeout_s: float = 10.0,
        rng: random.Random | None = None,
    ) -> None:
        self._base = config
        self._config = config
        self.store = store
        self.clock = clock
        self._version = -1
        self._applied = 0
        self._published = False
        self.notifiers = {name: notifier_factory(spec) for name, spec in config.channels.items()}
        #: reachability of the store, for ``kpimon_store_up`` and one log line per outage
        self.health = StoreHealth()
        #: (kpi, severity, state) -> pending/firing alerts and channel -> (outbox depth, oldest age), as of the
        #: last successful :meth:`run_tick` (what the worker exports)
        self.alert_gauge: dict[tuple[str, str, str], int] = {}
        self.outbox_gauge: dict[str, tuple[int, float]] = {}
        # Backoff, leases and ages are wall-clock time: the lifecycle's ``clock`` is event time, which runs
        # 60x faster in a sped-up simulation.
        self.outbox = Outbox(
            store,
            self.notifiers,
            clock=wall_clock,
            policy=retry,
            lease_s=lease_s,
            send_timeout_s=send_timeout_s,
            rng=rng,
        )
        self.pipeline = Pipeline(store, self.outbox, lambda: self._config)

    @property
    def config(self) -> AlertingConfig:
        """The configuration in effect (the catalog's plus threshold overrides)."""
        return self._config

    async def _publish(self) -> None:
        # The API and CLI validate overrides against the rules the service really runs.
        if not self._published:
            await self.store.publish_rules(published_rules(self._base))
            self._published = True

    async def observe(self, sample: Sample) -> list[Transition]:
        """Evaluate every rule of ``sample.kpi`` on it; persist state; return the state changes."""
        await self._publish()
        rules = self._config.rules.get(sample.kpi, ())
        meta = self._config.kpis.get(sample.kpi)
        now = self.clock()
        series = series_key(sample.kpi, sample.labels)
        out = []
        for rule in rules:
            change = await self._evaluate(rule, sample, meta, series, now)
            if change is not None:
                out.append(change)
        retain = history_retention(rules)
        if retain is not None and sample.value is not None:
            await self.store.record_value(series, sample.window_start, sample.value, retain)
        if any(_watches_missing(r) for r in rules):
            await self.store.touch_series(sample.kpi, _labels_key(sample.labels), now)
        return out

    async def _evaluate(
        self, rule: AlertRuleSpec, sample: Sample, meta: KpiMeta | None, series: str, now: float
    ) -> Transition | None:
        labels = alert_labels(rule, sample, meta)
        stored = await self.store.get_alert(fingerprint(sample.kpi, rule.name, sample.labels))
        prev = stored or new_state(sample.kpi, rule.name, sample.labels, labels, rule.severity)
        start = baseline_start(rule, sample)
        baseline = await self.store.get_value(series, start) if start is not None else None
        cond = evaluate(rule, sample, firing=prev.state == "firing", baseline=baseline)
        state = advance(
            replace(prev, labels=labels, severity=rule.severity),
            cond.active,
            now=now,
            for_s=rule.for_,
            keep_s=rule.keep_firing_for,
        )
        # The latest value is always shown; the explanation only changes when it says something new.
        summary = cond.summary if cond.active or state.state != prev.state else prev.summary
        state = replace(
            state,
            value=sample.value,
            expected=sample.expected,
            lower=sample.lower,
            upper=sample.upper,
            window_start=sample.window_start,
            window_end=sample.window_end,
            summary=summary,
        )
        await self._persist(stored, state)
        if state.state == prev.state:
            return None
        return Transition(
            state.fingerprint, state.kpi, state.rule, state.labels, state.severity, prev.state, state.state, now,
            state.summary,
        )  # fmt: skip

    async def _persist(self, stored: AlertState | None, state: AlertState) -> None:
        if state.state == "inactive":
            if stored is not None:
                await self.store.delete_alert(state.fingerprint)
        else:
            await self.store.put_alert(state)

    async def tick(self) -> None:
        """Flush due groups (wait/interval/repeat), escalate, and attempt the due outbox deliveries.

        Bounded: a claim batch (a few more only when entries were dropped, so the next of their stream goes at
        once), each send under the outbox's timeout, all sends concurrent.
        """
        await self._publish()
        await self._check_missing(self.clock())
        await self.pipeline.run(self.clock())
        await self.outbox.deliver_due()

    async def run_tick(self) -> bool:
        """What the worker runs every tick: overrides, :meth:`tick`, the gauges. Never raises for an unreachable
        store: the failure is counted in :attr:`health` (one log line per outage) and the next tick tries again.
        ``True`` when the store answered."""
        try:
            await self.reload_overrides()
            await self.tick()
            await self._refresh_gauges()
        except STORE_ERRORS as exc:
            self.health.failed(exc)
            return False
        self.health.ok()
        return True

    async def _refresh_gauges(self) -> None:
        counts: Counter[tuple[str, str, str]] = Counter(
            (a.kpi, a.severity, a.state) for a in await self.store.list_alerts() if a.state in ("pending", "firing")
        )
        self.alert_gauge = dict(counts)
        self.outbox_gauge = await self.outbox.stats()

    async def _check_missing(self, now: float) -> None:
        """Evaluate ``missing_after`` absence rules on series that stopped producing windows at all."""
        for kpi, rules in self._config.rules.items():
            watching = [r for r in rules if isinstance(r, AbsenceRule) and _watches_missing(r)]
            if not watching:
                continue
            meta = self._config.kpis.get(kpi)
            for labels_key, seen_at in (await self.store.seen_series(kpi)).items():
                labels = json.loads(labels_key)
                sample = Sample(kpi, labels, seen_at, now, None)
                for rule in watching:
                    if now - seen_at >= (rule.missing_after or 0.0):
                        await self._evaluate(rule, sample, meta, series_key(kpi, labels), now)

    async def reload_overrides(self) -> int:
        """Apply the store's threshold overrides if they changed; return how many are in effect.

        Cheap when nothing changed (one counter read), so the worker can call it every second.
        """
        version = await self.store.overrides_version()
        if version == self._version:
            return self._applied
        overrides = await self.store.get_overrides()
        self._config, self._applied, problems = apply_overrides(self._base, overrides)
        self._version = version
        for problem in problems:
            log.warning("threshold override skipped: %s", problem)
        return self._applied

    async def alerts(self) -> list[dict[str, Any]]:
        """Current pending/firing/resolved alerts as dicts (for status pages and the demo)."""
        return [a.to_dict() for a in await self.store.list_alerts()]

    async def alert_counts(self) -> dict[tuple[str, str], int]:
        """(state, severity) -> number of alerts, for the ``kpimon_alerts`` gauge."""
        return dict(Counter((a.state, a.severity) for a in await self.store.list_alerts()))

    @property
    def delivery_counts(self) -> dict[tuple[str, str], int]:
        """(channel, result) -> attempts by this process (delivered|retry|dropped|lease_lost), for metrics."""
        return dict(self.outbox.counts)

    @property
    def dropped_counts(self) -> dict[tuple[str, str], int]:
        """(channel, reason) -> notifications this process dropped (expired|permanent|superseded|...)."""
        return dict(self.outbox.dropped)

    async def aclose(self) -> None:
        """Close notifiers that hold connections."""
        for notifier in self.notifiers.values():
            close = getattr(notifier, "aclose", None)
            if close is not None:
                await close()
