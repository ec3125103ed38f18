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
from alerting.config import AbsenceRule, AlertingConfig, AlertRuleSpec, AnomalyRule, KpiMeta
from alerting.health import STORE_ERRORS, StoreHealth
from alerting.history import CAP, KEEP_S, record_of
from alerting.incidents import Incident, inside, judge, open_incident
from alerting.lifecycle import AlertState, Transition, advance, fingerprint, new_state
from alerting.notifiers.base import Notifier
from alerting.notifiers.registry import build_notifier
from alerting.outbox import Outbox, RetryPolicy
from alerting.pipeline import Pipeline
from alerting.rules import Condition, baseline_start, evaluate, flagged, history_retention, templated
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
    return kpi + _labels_key(labels)


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


def _raised_on(state: AlertState, sample: Sample) -> bool:
    """Whether ``sample`` revises the window ``state`` fired on, to a different value."""
    raised = state.raised
    return raised is not None and raised["start"] == sample.window_start and raised["value"] != sample.value


def _still_holds(rule: AlertRuleSpec, sample: Sample, state: AlertState, baseline: float | None) -> bool:
    """Would the revised value of the window an alert fired on still have raised it?"""
    if isinstance(rule, AnomalyRule) and state.incident is not None:
        inc = Incident.from_dict(state.incident)  # revisions carry no verdict: judge against the normal band
        return sample.value is None or not inside(sample.value, inc.lower, inc.upper)
    return evaluate(rule, sample, firing=False, baseline=baseline).active


def _correction(state: AlertState, sample: Sample, *, retracted: bool) -> dict[str, Any]:
    seq = int(state.correction["seq"]) + 1 if state.correction else 1
    was = state.raised["value"] if state.raised else None
    return {"seq": seq, "start": sample.window_start, "end": sample.window_end, "was": was, "now": sample.value,
            "raised_at": state.starts_at, "retracted": retracted}


def _retracted(state: AlertState, sample: Sample, now: float) -> AlertState:
    """``state`` resolved because the window it was raised on was revised: told as a correction."""
    return replace(state, state="resolved", ends_at=now, active_since=None, updated_at=now, raised=None,
                   correction=_correction(state, sample, retracted=True))


def _bookkeep(prev: AlertState, state: AlertState, sample: Sample, now: float, incident: Incident | None) -> AlertState:
    """Remember the incident of an anomaly rule and the window an alert fired on."""
    if state.state in ("pending", "firing"):
        state = replace(state, incident=None if incident is None else incident.to_dict())
    elif prev.state in ("pending", "firing") and incident is not None:
        state = replace(state, incident=incident.to_dict())  # resolved: keep how it ended (drift or back)
    if state.state == "firing" and prev.state != "firing":
        raised = {"start": sample.window_start, "end": sample.window_end, "value": sample.value, "at": now}
        state = replace(state, raised=raised, correction=None)
    return state


def _transition(prev: AlertState, state: AlertState, now: float) -> Transition | None:
    if state.state == prev.state:
        return None
    return Transition(
        state.fingerprint, state.kpi, state.rule, state.labels, state.severity, prev.state, state.state, now,
        state.summary,
    )  # fmt: skip


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
        sources_of: Mapping[str, frozenset[str]] | None = None,
        history_keep_s: float = KEEP_S,
        history_cap: int = CAP,
        charted: Mapping[str, float] | None = None,
    ) -> None:
        self._base = config
        self._config = config
        self.store = store
        self.clock = clock
        self._version = -1
        self._applied = 0
        self._published = False
        self._history = (history_keep_s, history_cap)  # bounds of the incident history (alerting.history)
        # KPI -> how long to keep its total series' points (value and band) for the review digest's charts
        self._charted = dict(charted or {})
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
        # sources_of (KPI -> its sources): their freshness holds the KPI's alerts (alerting.freshness)
        self.pipeline = Pipeline(store, self.outbox, lambda: self._config, sources_of=sources_of, wall_clock=wall_clock)

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
        """Evaluate every rule of ``sample.kpi`` on it; persist state; return the state changes.

        Alert state is judged on the series' newest window: a revision of an older window only updates history
        and, when it changes the value an alert was raised on, records a correction (see :meth:`_revise`).
        """
        await self._publish()
        rules = self._config.rules.get(sample.kpi, ())
        meta = self._config.kpis.get(sample.kpi)
        now = self.clock()
        series = series_key(sample.kpi, sample.labels)
        newest = await self.store.note_window(series, sample.window_start) if rules else None
        older = newest is not None and sample.window_start < newest
        out = []
        for rule in rules:
            if older:
                change = await self._revise(rule, sample, meta, series, now)
            else:
                change = await self._evaluate(rule, sample, meta, series, now)
            if change is not None:
                out.append(change)
        keep = self._charted.get(sample.kpi)
        if keep is not None and not sample.labels and sample.value is not None:
            await self.store.record_point(sample.kpi, sample.window_start, sample.value, sample.lower, sample.upper, keep)
        retain = history_retention(rules)
        if retain is not None and sample.value is not None:
            await self.store.record_value(series, sample.window_start, sample.value, retain)
        if any(_watches_missing(r) for r in rules) and not older:
            await self.store.touch_series(sample.kpi, _labels_key(sample.labels), now)
        return out

    async def _baseline(self, rule: AlertRuleSpec, sample: Sample, series: str) -> float | None:
        start = baseline_start(rule, sample)
        return await self.store.get_value(series, start) if start is not None else None

    def _condition(
        self, rule: AlertRuleSpec, sample: Sample, prev: AlertState, baseline: float | None
    ) -> tuple[Condition, bool, Incident | None]:
        """(condition for the lifecycle, whether it really holds on this window, the open incident after it).

        Anomaly rules with an open incident follow the value (:mod:`alerting.incidents`): a firing alert stays
        active until ``resolve_after`` calm windows in a row, keeping the summary it had meanwhile."""
        current = prev.incident if prev.state in ("pending", "firing") else None
        if not (isinstance(rule, AnomalyRule) and rule.enabled and current is not None):
            cond = evaluate(rule, sample, firing=prev.state == "firing", baseline=baseline)
            opened = open_incident(sample) if isinstance(rule, AnomalyRule) and cond.active else None
            return cond, cond.active, opened
        judged, incident = judge(Incident.from_dict(current), sample, flagged=flagged(rule, sample))
        if judged.active:
            return templated(rule, sample, Condition(True, judged.summary)), True, incident
        if prev.state == "firing" and incident.calm < rule.resolve_after:
            return Condition(True, prev.summary), False, incident  # back, but not for long enough yet
        return Condition(False, judged.summary), False, incident

    async def _evaluate(
        self, rule: AlertRuleSpec, sample: Sample, meta: KpiMeta | None, series: str, now: float
    ) -> Transition | None:
        labels = alert_labels(rule, sample, meta)
        stored = await self.store.get_alert(fingerprint(sample.kpi, rule.name, sample.labels))
        prev = stored or new_state(sample.kpi, rule.name, sample.labels, labels, rule.severity)
        cond, holds, incident = self._condition(rule, sample, prev, await self._baseline(rule, sample, series))
        if sample.revision > 0 and prev.state == "firing" and not holds and _raised_on(prev, sample):
            # the newest window itself was revised and the alert raised on it no longer holds: retract it
            state = _retracted(prev, sample, now)
        else:
            state = advance(
                replace(prev, labels=labels, severity=rule.severity),
                cond.active,
                now=now,
                for_s=rule.for_,
                keep_s=rule.keep_firing_for,
            )
            state = _bookkeep(prev, state, sample, now, incident)
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
            holds=holds and state.state != "resolved",
        )
        await self._persist(stored, state)
        await self._remember(prev, state)
        return _transition(prev, state, now)

    async def _revise(
        self, rule: AlertRuleSpec, sample: Sample, meta: KpiMeta | None, series: str, now: float
    ) -> Transition | None:
        """A revision of an older window: never fires or resolves on behalf of the newest window. If the alert
        was raised on that window and the revised value would not have raised it, record a correction; the
        alert is retracted unless the newest window still holds."""
        stored = await self.store.get_alert(fingerprint(sample.kpi, rule.name, sample.labels))
        if stored is None or stored.state != "firing" or not _raised_on(stored, sample):
            return None
        if _still_holds(rule, sample, stored, await self._baseline(rule, sample, series)):
            return None
        if stored.holds:
            state = replace(stored, raised=None, correction=_correction(stored, sample, retracted=False))
        else:
            state = _retracted(stored, sample, now)
        await self._persist(stored, state)
        await self._remember(stored, state)
        return _transition(stored, state, now)

    async def _persist(self, stored: AlertState | None, state: AlertState) -> None:
        if state.state == "inactive":
            if stored is not None:
                await self.store.delete_alert(state.fingerprint)
        else:
            await self.store.put_alert(state)

    async def _remember(self, prev: AlertState, state: AlertState) -> None:
        """Write the incident history when an alert starts firing and when a firing alert resolves."""
        fired = state.state == "firing" and prev.state != "firing"
        ended = state.state == "resolved" and prev.state == "firing"
        if (fired or ended) and state.starts_at is not None:
            keep_s, cap = self._history
            await self.store.record_incident(record_of(state), keep_s=keep_s, cap=cap)

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
        # every rule's (kpi, severity) has a series in both states, 0 when quiet: a board or a Prometheus rule
        # then reads 0, not "no data", and sees the moment an alert ends (a series that vanishes has no last 0)
        zeros: dict[tuple[str, str, str], int] = {
            (kpi, str(rule.severity), state): 0
            for kpi, rules in self._config.rules.items() for rule in rules for state in ("pending", "firing")}
        self.alert_gauge = {**zeros, **counts}
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
